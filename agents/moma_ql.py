"""Moment Matching Q-Learning (MoMa QL): Liang, Liu, Zhang, ICML 2026 (arXiv 2605.29033). Unofficial reimplementation.

No official code is public. The method as published (read through the papernotes.org summary of the paper and its
abstract; the PDF's appendix was not available, see ../shared/reference/METHODS.md §1) is a BRAC-style actor-critic whose
behaviour-cloning term is a moment-matching loss between two few-step samplers on a stochastic interpolant, in the
manner of Inductive Moment Matching (IMM; Zhou, Ermon, Song, ICML 2025, arXiv 2503.07565):

* interpolant ``x_t = (1 - t) a + t σ_d ε`` between a dataset action ``a`` (``t = 0``) and noise (``t = 1``);
* sampler ``f_θ(x_t, s, t)``: the network predicts a clean action ``x̃ = G_θ(obs, x_t, t, s)`` and the jump to ``s < t``
  is the DDIM step ``x_s = x̃ + (s / t) (x_t - x̃)``; so ``f_θ(x_t, t, t) = x_t`` (a jump of length zero is the identity);
* moment-matching loss ``L_D(θ) = E_{s<r<t} MMD²(p^{θ⁻}_{s|r}, p^θ_{s|t})``: a *short* jump ``r → s`` by the target
  network ``θ⁻`` ("EMA/stop-grad"; no gradient) and a *long* jump ``t → s`` by the online network ``θ``, compared by the
  unbiased MMD² (Gretton et al. 2012) with an RBF kernel of adaptive bandwidth; ``x_r`` is the interpolant at ``r`` with
  the same ``(a, ε)`` as ``x_t`` (the DDIM step from ``x_t`` toward the data ``a``), which makes the pair
  marginal-preserving;
* critic (TD3/BRAC double Q): ``L(φ) = E[(r + γ m min_i Q_{φ_i^T}(s', a') - Q_{φ_i}(s, a))²]`` with ``a'`` from the EMA
  actor ``θ^T``'s few-step sampler;
* actor: ``L_π(θ) = -η E[Q_φ(s, a^π)] + L_D(θ)``, where ``a^π`` comes from the recursive few-step sampler (the paper's
  Algorithm 2: ``a_{t_N} ~ N(0, σ_d² I)``, ``a_{t_{i-1}} = f_θ(a_{t_i}, t_{i-1}, t_i)``) and the Q gradient flows
  back through every step of it;
* EMA targets ``θ^T ← α θ^T + (1 - α) θ`` and likewise for ``φ^T``.

``η = 0`` is the paper's "BC setting" (the moment-matching term alone; the critic is then not trained).

The paper is silent on the kernel bandwidth rule, the particles per state, the ``(s, r, t)`` distribution, the step
count, ``η`` per task and the networks. Every such choice is a constructor argument of :class:`MoMaQL`, listed with
its reason in :attr:`MoMaQL.choices` (which the model card prints under "Choices made where the paper is silent").
The three that shape the loss most:

* **Particles.** An offline dataset has one action per state, so the ``M`` particles of a state are ``M`` independent
  noises ``ε`` around the same dataset action (IMM's groups are ``M`` different data points; here different rows have
  different states, and an action-only kernel would compare actions of unrelated states). The MMD² then compares the
  two samplers' distributions given ``(state, a)``. Where the sampler's output does not depend on ``a`` (large ``t``)
  this is the MMD² to the behaviour policy's marginal up to a constant; where ``x_t`` reveals ``a`` it adds a pull
  toward the dataset action, the support-seeking behaviour a BRAC regulariser is there for.
* **Estimator.** The long- and short-jump particles ``i`` share ``ε_i``, so they are paired; the estimator is the
  U-statistic over ``i ≠ j`` (Gretton et al. 2012, Lemma 6), which stays unbiased for paired samples, where the
  version with all cross pairs ``k(x_i, y_i)`` would not.
* **Short-jump network and gap.** The paper's ``θ⁻`` is an "EMA/stop-grad" network and its TD-target actor ``θ^T`` an
  EMA with the critics' rate; here one EMA actor (rate ``tau``) serves both (``short_jump_net="ema"``), and
  ``short_jump_net="online"`` gives IMM's stop-gradient copy of ``θ``. An EMA delays every induction hop ``r → t`` by
  ~1/tau steps, so it needs large hops: on the two-mode toy of the tests (1500 steps) the EMA trained the 1-step
  sampler for ``r_gap_k`` ≤ 8 (11-19% of samples left between the modes) but not at 10 (94%), where the
  stop-gradient target still did (18%).

Under a constant Q pull the zoo's default loss has no equilibrium: on a toy with a fixed linear critic the sampler's
actions drift toward the action box at a rate that grows with ``η`` whatever the kernel, short-jump network or grounded
fraction, where Diffusion-QL's and Consistency-AC's BC terms hold an offset that grows with ``η``
(experiments/q_pull_toy.py, experiments/RESULTS-q-pull.md). That is why a fixed ``η`` either leaves the policy at the
BC setting's level or, given enough steps, takes it off the data (experiments/RESULTS-moma-eta.md). The cause is the
``(s, t)`` law: the jumps the Q term moves (``T → 0`` for one step) have probability zero under it. With a share of
the draws on those jumps, matched to the data (``sampler_jump_fraction``), the 1-step sampler holds an offset as near
the data as Diffusion-QL's; a 4-step chain settles far out and the 1/2/4/8 mix still drifts, more slowly. The zoo's
tasks therefore train MoMa QL with half the draws on the 1-step jump and the Q term, TD targets and acting through
one step (zoo/hyperparams/momaql.yaml; the 30k-step sweeps in experiments/RESULTS-moma-eta.md stayed on the data up to
η = 1 on cube-single and hopper, where the default law left it from η 0.7 or lost half the score; over 200k steps η 1
still collapsed at ~125k through the critic's extrapolation; η 0.3 and 0.5 stayed on the data at the BC setting's
level, and the cube family takes η 0.5, hopper η 0.3); the constructor
keeps the paper-shaped defaults (4 sampling steps, the Q term through 1-8 steps, no jump draws).

The MMD² is always computed in fp32 with autocast disabled (the networks may run in bf16): the kernel is an exponential
of squared distances, whose bf16 rounding (8 bits of mantissa) would swamp the differences the U-statistic subtracts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces

from agents.core.base import GenerativeAgent, GenerativePolicy
from agents.core.critics import CriticEnsemble, aggregate
from agents.core.networks import MLP
from agents.core.samplers import candidate_actions

# ---------------------------------------------------------------------------------------------------- MMD² and kernel


def pairwise_sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x_i - y_j||²`` for ``x`` of shape ``(..., n, d)`` and ``y`` of shape ``(..., m, d)``; returns ``(..., n, m)``.

    Computed from differences, not ``|x|² + |y|² - 2 x·y``, so near-equal particles get exact small distances (the
    expanded form cancels catastrophically, and the U-statistic lives on those differences).
    """
    return (x.unsqueeze(-2) - y.unsqueeze(-3)).square().sum(-1)


def median_bandwidth2(x: torch.Tensor, y: torch.Tensor, min_bandwidth: float = 0.0) -> torch.Tensor:
    """The median heuristic (Gretton et al. 2012): ``σ² = median_{i<j} ||z_i - z_j||²`` over the pooled particles
    ``z = x ∪ y`` of each group, detached, floored at ``d · min_bandwidth²``. Returns ``(..., 1, 1)``.

    Pooling both samples makes ``σ`` a symmetric function of the pooled set, so under equal distributions the estimator
    keeps zero mean; detaching it stops the generator from inflating its own spread to soften the kernel. Scaling every
    particle by ``c`` scales ``σ`` by ``c`` (MMD² is then scale-invariant) down to the floor, which bounds the kernel's
    gradients (``∝ 1 / σ``) when a group's particles collapse onto one point, as the short jump does at ``s = r → 0``.
    """
    z = torch.cat([x, y], dim=-2).detach()
    n = z.shape[-2]
    iu = torch.triu_indices(n, n, offset=1, device=z.device)
    d2 = pairwise_sq_dists(z, z)[..., iu[0], iu[1]]
    median = d2.median(dim=-1).values
    return median.clamp_min(z.shape[-1] * min_bandwidth**2)[..., None, None]


def mmd2_unbiased(
    x: torch.Tensor, y: torch.Tensor, bandwidth: float | str = "median", min_bandwidth: float = 0.0,
    kernel: str = "rbf",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unbiased MMD² between paired particle sets, RBF kernel ``k(x, y) = exp(-||x - y||² / (2σ²))``.

    ``x``, ``y``: ``(..., M, d)``, ``M >= 2`` particles per group (row ``i`` of ``x`` and of ``y`` may be dependent).
    Gretton et al. 2012 (JMLR), Lemma 6:
    ``MMD²_u = 1 / (M (M-1)) Σ_{i≠j} [k(x_i, x_j) + k(y_i, y_j) - k(x_i, y_j) - k(x_j, y_i)]``.
    ``bandwidth``: ``"median"`` (:func:`median_bandwidth2`) or a fixed ``σ`` in action units.
    ``kernel="energy"`` uses ``k(x, y) = -||x - y||`` instead (the energy distance, Székely & Rizzo 2004; Sejdinovic
    et al. 2013 show it is an MMD): scale-equivariant with no bandwidth, and its pull on a particle is a unit vector
    however far the groups drift apart, where the RBF's fades like ``1/D``. Distances are ``sqrt(d² + 1e-8)`` so the
    gradient at coinciding particles is defined. Returns ``σ = 0`` for it.
    Returns ``(mmd2 of shape (...), σ of shape (...))``, both fp32, computed with autocast disabled.
    """
    if kernel not in ("rbf", "energy"):
        raise ValueError(f"kernel must be 'rbf' or 'energy', got {kernel!r}")
    if x.shape != y.shape or x.shape[-2] < 2:
        raise ValueError(f"need two (..., M, d) particle sets with M >= 2 of equal shape, got {tuple(x.shape)}, {tuple(y.shape)}")
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.float(), y.float()
        m = x.shape[-2]
        off_diagonal = 1.0 - torch.eye(m, device=x.device)
        if kernel == "energy":
            def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
                return (pairwise_sq_dists(a, b) + 1e-8).sqrt()

            kxy = -dist(x, y)
            h = (-dist(x, x) - dist(y, y) - kxy - kxy.transpose(-1, -2)) * off_diagonal
            return h.sum((-1, -2)) / (m * (m - 1)), torch.zeros(x.shape[:-2], device=x.device)
        if bandwidth == "median":
            bw2 = median_bandwidth2(x, y, min_bandwidth)
        elif isinstance(bandwidth, (int, float)) and not isinstance(bandwidth, bool) and bandwidth > 0:
            bw2 = torch.full((*x.shape[:-2], 1, 1), float(bandwidth) ** 2, device=x.device)
        else:
            raise ValueError(f"kernel bandwidth must be 'median' or a positive number, got {bandwidth!r}")
        kxx = torch.exp(-pairwise_sq_dists(x, x) / (2 * bw2))
        kyy = torch.exp(-pairwise_sq_dists(y, y) / (2 * bw2))
        kxy = torch.exp(-pairwise_sq_dists(x, y) / (2 * bw2))
        h = (kxx + kyy - kxy - kxy.transpose(-1, -2)) * off_diagonal
        return h.sum((-1, -2)) / (m * (m - 1)), bw2.sqrt()[..., 0, 0]


# ---------------------------------------------------------------------------------------------------- times


def eta(t: torch.Tensor) -> torch.Tensor:
    """IMM's ``η_t = σ_t / α_t`` for the linear interpolant (``α_t = 1 - t``, ``σ_t = t``, up to the constant ``σ_d``)."""
    return t / (1 - t)


def eta_inv(e: torch.Tensor) -> torch.Tensor:
    return e / (1 + e)


def sample_training_times(
    n: int, t_max: float, r_gap_k: float, device: torch.device | str = "cpu", grounded_fraction: float = 0.0,
    sampler_jump_fraction: float = 0.0, sampler_steps: Sequence[int] = (1,),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw ``(s, r, t)``, each ``(n, 1)``, with ``0 <= s <= r < t <= t_max``.

    ``t ~ U(0, t_max)``, ``s ~ U(0, t)``, and ``r = max(s, η⁻¹(η_t - η_{t_max} / 2^k))``: IMM's mapping by a constant
    decrement of ``η`` (``k = r_gap_k``). ``r = s`` happens when ``t`` is already within one decrement of ``s``; the short
    jump is then the identity and the long jump is matched to the interpolant itself, which grounds the induction in
    the data. Larger ``k`` gives shorter gaps ``t - r`` (closer to consistency training, slower to propagate).
    A ``grounded_fraction`` of the draws, at every ``t``, take ``r = s`` whatever the mapping says: near ``t_max``
    the mapping's gaps are tiny (``t - r ≈ 1e-4`` at ``t_max`` for ``k = 6``), so without them the jumps a sampler
    starts with are tied only to the lagging EMA network's own output, never to the data.

    A ``sampler_jump_fraction`` of the draws instead take ``(t, s)`` from the jumps of the few-step samplers with
    ``sampler_steps`` steps (a step count uniformly, then one of its jumps uniformly: the weights the Q term gives
    them) and ``r = s``, so that the jumps the Q term moves are the ones matched to the data's interpolant. From the
    continuous ``(s, t)`` law alone, a sampler's own jumps (``t_max → 0`` for one step) have probability zero and are
    held to the data only through the network's smoothness (experiments/RESULTS-q-pull.md).
    """
    t = t_max * torch.rand(n, 1, device=device)
    s = t * torch.rand(n, 1, device=device)
    decrement = t_max / (1 - t_max) / 2.0**r_gap_k  # η_{t_max} / 2^k, in Python floats (no graph break)
    r = torch.maximum(s, eta_inv((eta(t) - decrement).clamp_min(0.0)))
    if grounded_fraction > 0:
        r = torch.where(torch.rand(n, 1, device=device) < grounded_fraction, s, r)
    if sampler_jump_fraction > 0:
        jumps, weights = sampler_jumps(sampler_steps, t_max, device)
        pick = torch.searchsorted(weights.cumsum(0), torch.rand(n, device=device) * weights.sum(), right=True)
        jump = jumps[pick.clamp_max(len(weights) - 1)]  # (n, 2): (t, s)
        on_jump = torch.rand(n, 1, device=device) < sampler_jump_fraction
        t, s = torch.where(on_jump, jump[:, :1], t), torch.where(on_jump, jump[:, 1:], s)
        r = torch.where(on_jump, s, r)
    return s, r, t


def sampler_jumps(steps: Sequence[int], t_max: float, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Every jump ``(t_i, t_{i+1})`` of the samplers with ``steps`` steps, ``(J, 2)``, and its weight ``(J,)``: each
    step count ``1 / len(steps)``, shared equally by its jumps (a pair two counts share appears once per count)."""
    jumps, weights = [], []
    for k in steps:
        grid = sampling_times(k, t_max, device)
        jumps.append(torch.stack([grid[:-1], grid[1:]], dim=1))
        weights.append(torch.full((k,), 1.0 / (k * len(steps)), device=device))
    return torch.cat(jumps), torch.cat(weights)


def sampling_times(steps: int, t_max: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """The few-step sampler's grid ``t_max = t_K > ... > t_0 = 0``, uniform in ``t`` (IMM's "uniform" pushforward)."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"sampling_steps must be an integer >= 1, got {steps!r}")
    return torch.linspace(t_max, 0.0, steps + 1, device=device)


# ---------------------------------------------------------------------------------------------------- policy


class MoMaQLPolicy(GenerativePolicy):
    """MoMa QL's networks (clean-action predictor ``G_θ``, its EMA ``G_θ^T``, twin critics and their EMA) and sampler."""

    target_networks: ClassVar[dict[str, str]] = {"target_actor": "actor", "target_critic": "critic"}

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        action_horizon: int = 1,
        actor_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        value_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        layer_norm: bool = True,
        actor_layer_norm: bool = False,
        activation: str = "gelu",
        sampling_steps: int = 4,
        sigma_data: float = 0.5,
        t_max: float = 0.994,
    ) -> None:
        super().__init__(observation_space, action_space, action_horizon)
        obs_dim, act_dim = self.obs_dim, self.act_dim * action_horizon
        self.chunk_dim = act_dim
        self.sampling_steps = sampling_steps
        self.sigma_data = sigma_data
        self.t_max = t_max
        # G_θ(obs, x_t, t, s): both times enter as raw scalars (as FQL's time input), so one network serves every jump.
        self.actor = MLP(obs_dim + act_dim + 2, actor_hidden_dims, act_dim, activation, actor_layer_norm)
        self.target_actor = MLP(obs_dim + act_dim + 2, actor_hidden_dims, act_dim, activation, actor_layer_norm)
        self.critic = CriticEnsemble(obs_dim, act_dim, value_hidden_dims, 2, layer_norm, activation)
        self.target_critic = CriticEnsemble(obs_dim, act_dim, value_hidden_dims, 2, layer_norm, activation)

    def jump(self, obs: torch.Tensor, x_t: torch.Tensor, s: torch.Tensor, t: torch.Tensor, target: bool = False) -> torch.Tensor:
        """``f_θ(x_t, s, t)``: predict the clean action, then take the DDIM step of the interpolant from ``t`` to ``s``.

        ``target=True`` uses the EMA actor ``θ^T``. For ``x_t = (1 - t) a + t σ_d ε`` the DDIM step with ``a`` replaced
        by the prediction ``x̃`` is ``x̃ + (s / t)(x_t - x̃)``; at ``s = t`` it is the identity whatever the network says.
        """
        net = self.target_actor if target else self.actor
        clean = net(torch.cat([obs, x_t, t, s], dim=-1)).float()
        ratio = torch.where(t > s, s / t.clamp_min(1e-12), torch.ones_like(t))
        return clean + ratio * (x_t.float() - clean)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor, steps: int, target: bool = False) -> torch.Tensor:
        """The recursive few-step sampler (the paper's Algorithm 2), differentiable, clipped to the action box at the end.

        ``noise`` is standard normal (zeros for deterministic acting); the sampler starts from ``σ_d · noise`` at
        ``t_max`` and jumps along :func:`sampling_times`.
        """
        times = sampling_times(steps, self.t_max, obs.device)
        x = self.sigma_data * noise
        shape = (obs.shape[0], 1)
        for i in range(steps):
            t, s = times[i].expand(shape), times[i + 1].expand(shape)
            x = self.jump(obs, x, s, t, target)
        return x.clamp(-1.0, 1.0)

    def sample_actions(self, obs: torch.Tensor, deterministic: bool = False, sampling_steps: int | None = None,
                       candidates: int | None = None, **sampler: Any) -> torch.Tensor:
        """Actions from ``sampling_steps`` jumps (default: the checkpoint's ``sampling_steps``) of the online network.

        The paper acts with one sample. ``candidates=K`` draws ``K`` per observation and keeps one with probability
        ``softmax(min(Q_1, Q_2))``, Diffusion-QL's and Consistency-AC's selection: not MoMa QL's, but it separates what
        the critic knows from what the Q term taught the sampler (experiments/sampling_steps.py ``--candidates``).
        """
        if sampler:
            raise TypeError(f"MoMa QL's sampler takes only sampling_steps= and candidates=, got {sorted(sampler)}")
        steps = self.sampling_steps if sampling_steps is None else sampling_steps
        k = 1 if deterministic or candidates is None else int(candidates)
        return candidate_actions(self, obs, k, lambda o, noise: self.sample(o, noise(), steps), deterministic,
                                 self.chunk_dim)


# ---------------------------------------------------------------------------------------------------- agent


class MoMaQL(GenerativeAgent):
    """Moment Matching Q-Learning (Liang, Liu, Zhang, ICML 2026); unofficial. See the module docstring for the method.

    Args (method-specific; the rest are :class:`GenerativeAgent`'s). Every default marked *choice* is one the paper
    leaves open; :attr:`choices` gives the reason for each.
        eta: weight ``η`` of the Q term; 0 is the paper's BC setting (per task family in ``zoo/hyperparams/momaql.yaml``).
        normalize_q_loss: divide the Q term by ``sg(mean |Q|)`` (Diffusion-QL's normalisation), so one ``η`` transfers
            across reward scales. *choice*: True. False gives the paper's literal ``-η E[Q]``.
        sampling_steps: steps of the few-step sampler for the TD targets and the default of
            ``predict(..., sampling_steps=k)``. *choice*: 4.
        q_sampling_steps: step counts the Q term trains, one drawn uniformly per batch (the gradient flows
            through that many jumps); None trains only ``sampling_steps``. *choice*: (1, 2, 4, 8).
        num_particles: particles ``M`` per state in the MMD² (noises around the state's dataset action). *choice*: 4.
        kernel_bandwidth: ``"median"`` (median heuristic per group) or a fixed RBF ``σ``. *choice*: ``"median"``.
        kernel: ``"rbf"`` (the paper's, as summarised) or ``"energy"`` (``-||x - y||``: no bandwidth, a pull that does
            not fade with distance; see :func:`mmd2_unbiased`). *choice*: ``"rbf"``.
        min_bandwidth: per-dimension floor of the adaptive ``σ`` (action units). *choice*: 0.1.
        r_gap_k: ``k`` of the ``r(s, t)`` mapping (constant decrement ``η_{t_max} / 2^k`` of ``η_t``). *choice*: 6.
        grounded_fraction: share of the draws, at every ``t``, with ``r = s`` (the long jump matched to the
            interpolant itself). *choice*: 0 (the mapping alone).
        sampler_jump_fraction: share of the draws placed on the jumps of the samplers the Q term trains
            (``q_sampling_steps``), with ``r = s`` (:func:`sample_training_times`). *choice*: 0.
        sigma_data: std ``σ_d`` of the interpolant's noise and of the sampler's start. *choice*: 0.5.
        t_max: largest time ``T`` (the sampler's start; ``η_T`` is finite). *choice*: 0.994.
        short_jump_net: network ``θ⁻`` of the short jump: ``"ema"`` (the EMA actor ``θ^T``) or ``"online"``
            (a stop-gradient copy of ``θ``, IMM's). *choice*: ``"ema"``.
        actor_tau: Polyak rate of the EMA actor ``θ^T`` (short jump and TD-target actions); None uses ``tau``.
        q_agg: aggregation of the two target Q values, ``"min"`` (the paper's TD3/BRAC target) or ``"mean"``.
        max_grad_norm: clip the actor's and the critics' gradient norms, each on its own (one Adam holds both).
            *choice*: None (no clipping).
        actor_hidden_dims, value_hidden_dims: MLP widths. *choice*: 4×512 (zoo budget: 4×256).
        layer_norm, actor_layer_norm: LayerNorm in critics (True) / actor (False). activation: ``"gelu"``.
    """

    policy_aliases: ClassVar[dict[str, type]] = {"MlpPolicy": MoMaQLPolicy}
    policy: MoMaQLPolicy
    unofficial: ClassVar[bool] = True
    # Checkpoints written before the key existed trained the Q term through `sampling_steps` alone.
    checkpoint_defaults: ClassVar[dict[str, Any]] = {"q_sampling_steps": None, "sampler_jump_fraction": 0.0}
    paper: ClassVar[dict[str, str]] = {
        "short": "Liang, Liu & Zhang, ICML 2026",
        "title": "Moment Matching Q-Learning",
        "arxiv": "2605.29033",
        "setting": "D4RL; network sizes, step budget and seeds not public in any source read",
        "bibtex": "@inproceedings{liang2026moment,\n  title={Moment Matching Q-Learning},\n  author={Liang, Yiyan (Edgar) and "
                  "Liu, Sifei and Zhang, Weitong},\n  booktitle={Proceedings of the 43rd International Conference on Machine "
                  "Learning (ICML)},\n  series={PMLR},\n  volume={306},\n  pages={27627--27649},\n  year={2026}\n}",
    }
    # The paper's own setting (widths, steps, seeds, checkpoint rule) was not found: nothing to compare a config with.
    paper_setting: ClassVar[dict[str, Any]] = {}
    implementation_notes: ClassVar[list[str]] = [
        "unofficial reimplementation from the paper's equations as summarised by a third party (no official code; the "
        "paper's appendix was not available): see the table of choices made where the paper is silent",
        "exact (erf) GELU networks of the zoo's other methods; the paper's architecture is not known",
    ]
    choices: ClassVar[list[dict[str, str]]] = [
        {"name": "interpolant and sampler parameterisation",
         "value": "x_t = (1-t) a + t σ_d ε (t=1 is noise); network predicts the clean action from (obs, x_t, t, s), "
                  "jump = DDIM step x̃ + (s/t)(x_t - x̃)",
         "why": "the paper's sampler predicts a clean sample and interpolates by DDIM; the linear (flow-matching) "
                "schedule is IMM's and FQL's, and it makes a zero-length jump the identity"},
        {"name": "noise scale σ_d (`sigma_data`)", "value": "0.5",
         "why": "IMM's σ_d; actions normalised to [-1, 1] have per-dimension spreads of the same order"},
        {"name": "largest time T (`t_max`)", "value": "0.994",
         "why": "IMM's value for this schedule: keeps η_T = T/(1-T) finite for the r(s, t) mapping"},
        {"name": "(s, t) distribution", "value": "t ~ U(0, T), s ~ U(0, t), one draw per state, shared by its particles",
         "why": "the simplest distribution covering every (s, t) pair the 1-8 step samplers use, so one model serves "
                "all step counts; sharing the times within a state's group follows IMM's groups sharing (s, r, t)"},
        {"name": "r(s, t) mapping (`r_gap_k`)", "value": "r = max(s, η⁻¹(η_t - η_T / 2^k)), k = 6",
         "why": "IMM's constant-decrement-in-η family. k = 6 grounds every t < 0.72 directly on the interpolant (r = s) "
                "and takes inductive hops above (r(0.9) = 0.87). On the state-conditional two-mode toy at 20k steps "
                "(experiments/moma_gap_toy.py, RESULTS-moma-gap.md) k = 4-6 are equally good and every sampler gets "
                "worse from k = 8 on (1 step: 9% of samples between the modes at k = 6, 25% at 10, 49% at 12): 6 is the "
                "largest k on the plateau"},
        {"name": "grounded draws (`grounded_fraction`)", "value": "0: only the mapping decides r",
         "why": "k = 6 leaves t − r ≈ 1e-4 near T, where every sampler's first jump starts, so there the long jump is "
                "compared only with the lagging EMA's output, never with the data. Grounding half the draws at every t "
                "changed nothing measurable (η = 1, 3k steps on cube-single: 85% of action components on the box "
                "either way, experiments/RESULTS-moma-eta.md); at η = 0.3 over 200k steps on cube-single it postponed "
                "the collapse from ~87k to ~156k steps but not past it (0% at 170k). Grounding all of them (= k = 0) "
                "drops the paper's inductive s < r < t hops. Kept as an option, off"},
        {"name": "draws on the Q term's jumps (`sampler_jump_fraction`)", "value": "0 (zoo default; a checkpoint's "
         "own value is in its hyperparameters)",
         "why": "that share of the (s, r, t) draws takes (t, s) from the jumps of the samplers the Q term trains, with "
                "r = s. Under the continuous (s, t) law those jumps have probability zero, and on a toy with a fixed "
                "linear critic the Q term then drifts every sampler to the action box; with half the draws on the "
                "1-step sampler's jump (T → 0) its actions hold an offset as near the data as Diffusion-QL's, a 4-step "
                "chain settles far out (a₀ +0.55 at η 0.3) and the 1/2/4/8 mix still drifts "
                "(experiments/RESULTS-q-pull.md, 2026-12-07). On the zoo's tasks 0.5, with the Q term and acting "
                "through 1 step: the 30k-step sweeps stayed on the data up to η 1 (cube-single 16%, hopper medium-v0 "
                "67.7, against the default law's 2% at η 0.1 and 8.6 at η 1; experiments/RESULTS-moma-eta.md, "
                "2026-12-07). It removes "
                "the constant-pull drift, not a learned critic's extrapolation: at η 1 the cube-single run held 40% "
                "from 60k to 120k steps and collapsed at ~125k, hence η 0.5 there (hopper 0.3). The constructor default stays 0 "
                "(the continuous law alone, as written)"},
        {"name": "particles per state M (`num_particles`)", "value": "4 noise draws around the state's dataset action",
         "why": "one action per state in offline data, and particles of different states cannot share an action-only "
                "kernel; M = 4 gives 12 ordered pairs per U-statistic at 4x the actor rows of the MMD term"},
        {"name": "MMD² estimator", "value": "U-statistic over i ≠ j (Gretton et al. 2012, Lemma 6), averaged over states",
         "why": "long- and short-jump particle i share their noise, so pairs (i, i) are dependent; the i ≠ j form stays "
                "unbiased; uniform weights because the adaptive bandwidth already makes each MMD² dimensionless"},
        {"name": "kernel (`kernel`)", "value": "RBF; 'energy' (-‖x - y‖) as an option",
         "why": "RBF is what the paper's summary reports. With the median bandwidth its restoring pull peaks at a drift "
                "of about one kernel width and then falls like 1/D, and on cube-single η went from no effect (0.5) to "
                "collapse (0.7). The energy distance's pull does not fade, but it did not soften that edge: at η = 1 "
                "it left the data faster than the RBF (3k-step probes, experiments/RESULTS-moma-eta.md), so it stays "
                "an option"},
        {"name": "kernel bandwidth (`kernel_bandwidth`, `min_bandwidth`)",
         "value": "RBF, σ² = median squared distance of the group's pooled 2M particles, detached, ≥ d·0.1²",
         "why": "'adaptive bandwidth' read as the standard median heuristic: scale-free across times and tasks; detached "
                "so the generator cannot widen its own kernel. The floor (0.1, the behaviour noise of OGBench play data "
                "in normalised units) turns tight groups (small s) into mean-and-spread matching: without it their "
                "1/σ gradients dominate Adam's normaliser; on the two-mode toy (default settings, 1500 steps) the "
                "1-step sampler left 22% of its samples between the modes with a 0.01 floor, 12% with 0.1, 9% with 0.3"},
        {"name": "short-jump network θ⁻ (`short_jump_net`)", "value": "the EMA actor θ^T (the TD-target actor)",
         "why": "the paper's short jump runs an 'EMA/stop-grad' network; one EMA serves both roles. 'online' (IMM's "
                "stop-gradient copy) is more tolerant of small gaps (large k) and is kept as the alternative"},
        {"name": "EMA rates (`tau`, `actor_tau`)", "value": "0.005 for the critics and the actor",
         "why": "the paper writes one EMA coefficient α for θ^T and φ^T; 0.005 is TD3's and FQL's"},
        {"name": "sampling steps (`sampling_steps`)", "value": "constructor 4, uniform grid T → 0 (predict's default, "
         "TD targets); zoo tasks 1",
         "why": "the paper samples offline with 'multi-step DDIM' and says 1 step suffices online; 4 is the middle of "
                "the 1-8 range evaluated. The zoo's tasks act and bootstrap with the one step the Q term trains "
                "(`sampler_jump_fraction` row); predict(sampling_steps=k) still samples any k"},
        {"name": "steps the Q term trains (`q_sampling_steps`)", "value": "1, 2, 4 or 8, drawn uniformly per batch "
         "(the default since 2026-11-27; a checkpoint's own value is in its hyperparameters: null = sampling_steps "
         "only, as every checkpoint trained before); zoo tasks since 2026-12-07: 1 only",
         "why": "the moment-matching term trains every (s, t), but the Q gradient reaches only the jumps of the sampler "
                "it flows through: trained through 4 steps alone, an η = 1 model's 4-step sampler put 90% of the action "
                "components on the box and its 1-step sampler 4% (the data's 7%), so 1 step was the BC policy. One "
                "model that is to be sampled with 1-8 steps has its Q term trained through each"},
        {"name": "Q term (`normalize_q_loss`, `eta`)",
         "value": "-η · mean_i Q_i(s, a^π) / sg(mean abs(Q)); constructor default η = 1, per task family below",
         "why": "normalising by mean abs(Q) (Diffusion-QL, TD3+BC) lets one η serve tasks with different reward scales; the "
                "mean of the twin critics as in FQL; η = 1 is Diffusion-QL's locomotion value"},
        {"name": "η per task family",
         "value": "0.5 with the 1-step jump-draw setting (cube, scene, puzzle), 0.3 (MuJoCo hopper; 0.1 under the "
                  "default law before 2026-12-07), 1 (other MuJoCo, default law, untested): zoo/hyperparams/momaql.yaml",
         "why": "set by 30k-step sweeps on seed 0 (experiments/RESULTS-moma-eta.md), as FQL set its per-task α. With "
                "the 1-step jump-draw setting (2026-12-07): cube-single η 0.3 / 1 / 3 → 8 / 16 / 0% (η 3 off the "
                "data), hopper medium-v0 → 69.6 / 67.7 / 64.1 (all on the data). η 1 then held 40% on cube-single from "
                "60k to 120k steps and collapsed at ~125k (the critic inflated on the data's actions too, -103 to "
                "-25), so ties between 30k arms go to the smaller η (hopper: 0.3), and on cube-single two more arms ran "
                "200k: η 0.3 4% [0, 10] and η 0.5 6% [0, 14], both on the data at the BC setting's level (10% [2, 18]); "
                "the better final score, η 0.5, is the cube family's. Under the default law before: on cube-single "
                "η 0.3 / 0.5 / 0.7 / 1 scored 10 / 6 / 0 / 0% at 30k (from 0.7 on, the actions run to the box); at "
                "200k η 0.3 climbed to 50% by 70k and then collapsed the same way at ~100k (mean Q -98 to -14, 91% "
                "of the action components on the box), so the cube family took a "
                "third of that pull (0.1). On hopper medium-v0 (near-expert data) every η > 0 scored below the BC setting "
                "at 30k (η 0 / 0.1 / 0.3 / 1: 64 and 55 over two seeds / 39 / 40 / 9; FQL 17): 0.1 ties 0.3. Scene "
                "and cube-double take the cube value untested, puzzle the same (FQL's α ratio to cube), walker2d and "
                "halfcheetah the constructor default. No η is safe for long with the default (s, t) law: under a "
                "constant Q pull (a fixed linear critic) the actions drift toward the box at a rate that grows with η, "
                "with every kernel, short-jump network and grounded fraction tried, where Diffusion-QL and "
                "Consistency-AC settle at an offset that grows with η; draws on the Q term's own jump give the "
                "1-step sampler such an offset (`sampler_jump_fraction`, experiments/RESULTS-q-pull.md)"},
        {"name": "TD target (`q_agg`)", "value": "min of the twin target critics",
         "why": "the paper's critic equation (TD3/BRAC double Q)"},
        {"name": "networks", "value": "4×512 GELU MLPs (zoo budget 4×256), LayerNorm on critics only, raw time inputs",
         "why": "the same networks as the zoo's FQL and QAM, so the method comparison isolates the loss. Under bf16 "
                "the raw times resolve only 2⁻⁸ near t = 1, below many of the mapping's gaps t − r there, but the "
                "jump's s/t ratio that carries those gaps is fp32: bf16 moves a trained policy's actions by 1% of its "
                "sampling spread (experiments/RESULTS-precision.md), and the zoo's runs since 2026-12-07 train in bf16 "
                "(a checkpoint's own precision is in its hyperparameters). The critic matters more than this implies: "
                "on cube-single at η 0.1 it stayed ~9x flatter in the action than Diffusion-QL's Mish critic (and than "
                "FQL's, of this architecture), so the normalised Q term was 1% of the actor's pull at 30k steps; with "
                "Diffusion-QL's networks (Mish, no LayerNorm) the critic was 2x steeper and the policy still at BC "
                "level, 4% against 2% "
                "(experiments/RESULTS-baseline-eta.md)"},
        {"name": "optimiser (`max_grad_norm`)", "value": "one Adam, lr 3e-4, batch 256, no gradient clipping",
         "why": "the zoo's shared default (FQL); the actor and critic parameter sets are disjoint. `max_grad_norm` "
                "clips the actor's and the critics' gradients apart (their scales differ), as Diffusion-QL clips each"},
        {"name": "BC setting (η = 0)", "value": "moment-matching loss only; the critic is not trained",
         "why": "the paper's BC comparison (vs Diffusion-BC and Consistency-BC) has no Q term"},
        {"name": "deterministic acting", "value": "predict(deterministic=True) starts the sampler from ε = 0",
         "why": "the zoo's convention for every noise-driven policy; deterministic=False samples ε ~ N(0, I)"},
    ]

    def __init__(
        self,
        policy: str | type[MoMaQLPolicy] = "MlpPolicy",
        env: Any = None,
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        gamma: float = 0.99,
        tau: float = 0.005,
        eta: float = 1.0,
        normalize_q_loss: bool = True,
        sampling_steps: int = 4,
        q_sampling_steps: Sequence[int] | None = (1, 2, 4, 8),
        num_particles: int = 4,
        kernel_bandwidth: float | str = "median",
        kernel: str = "rbf",
        min_bandwidth: float = 0.1,
        r_gap_k: float = 6.0,
        grounded_fraction: float = 0.0,
        sampler_jump_fraction: float = 0.0,
        sigma_data: float = 0.5,
        t_max: float = 0.994,
        short_jump_net: str = "ema",
        actor_tau: float | None = None,
        q_agg: str = "min",
        max_grad_norm: float | None = None,
        actor_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        value_hidden_dims: Sequence[int] = (512, 512, 512, 512),
        layer_norm: bool = True,
        actor_layer_norm: bool = False,
        activation: str = "gelu",
        **base_kwargs: Any,
    ) -> None:
        if q_agg not in ("mean", "min"):
            raise ValueError(f"q_agg must be 'mean' or 'min', got {q_agg!r}")
        if short_jump_net not in ("online", "ema"):
            raise ValueError(f"short_jump_net must be 'online' (stop-gradient) or 'ema', got {short_jump_net!r}")
        if eta < 0:
            raise ValueError(f"eta must be >= 0 (0 is the BC setting), got {eta}")
        if not 0.0 <= grounded_fraction <= 1.0:
            raise ValueError(f"grounded_fraction must lie in [0, 1], got {grounded_fraction}")
        if not 0.0 <= sampler_jump_fraction <= 1.0:
            raise ValueError(f"sampler_jump_fraction must lie in [0, 1], got {sampler_jump_fraction}")
        if num_particles < 2:
            raise ValueError(f"the unbiased MMD² needs num_particles >= 2, got {num_particles}")
        if not 0.0 < t_max < 1.0:
            raise ValueError(f"t_max must lie in (0, 1), got {t_max}")
        if kernel not in ("rbf", "energy"):
            raise ValueError(f"kernel must be 'rbf' or 'energy', got {kernel!r}")
        if kernel_bandwidth != "median" and not (isinstance(kernel_bandwidth, (int, float)) and kernel_bandwidth > 0):
            raise ValueError(f"kernel_bandwidth must be 'median' or a positive number, got {kernel_bandwidth!r}")
        sampling_times(sampling_steps, t_max)  # validates the step count
        if isinstance(q_sampling_steps, int) and not isinstance(q_sampling_steps, bool):
            q_sampling_steps = [q_sampling_steps]
        if q_sampling_steps is not None and (isinstance(q_sampling_steps, str) or not q_sampling_steps or not all(
                isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in q_sampling_steps)):
            raise ValueError(f"q_sampling_steps must be step counts >= 1 (e.g. [1, 2, 4, 8]) or None for "
                             f"sampling_steps only, got {q_sampling_steps!r}")
        if kernel_bandwidth == "median" and not (isinstance(min_bandwidth, (int, float)) and min_bandwidth > 0):
            raise ValueError(f"min_bandwidth must be > 0 with the median bandwidth (a collapsed group has median 0), "
                             f"got {min_bandwidth}")
        if base_kwargs.get("action_horizon", 1) != 1:
            raise ValueError("MoMa QL acts one step at a time (action_horizon=1)")
        self.eta = eta
        self.normalize_q_loss = normalize_q_loss
        self.sampling_steps = sampling_steps
        self.q_sampling_steps = None if q_sampling_steps is None else list(q_sampling_steps)
        self.num_particles = num_particles
        self.kernel_bandwidth = kernel_bandwidth
        self.kernel = kernel
        self.min_bandwidth = min_bandwidth
        self.r_gap_k = r_gap_k
        self.grounded_fraction = grounded_fraction
        self.sampler_jump_fraction = sampler_jump_fraction
        self.sigma_data = sigma_data
        self.t_max = t_max
        self.short_jump_net = short_jump_net
        self.actor_tau = actor_tau
        self.q_agg = q_agg
        self.max_grad_norm = max_grad_norm
        self.actor_hidden_dims = list(actor_hidden_dims)
        self.value_hidden_dims = list(value_hidden_dims)
        self.layer_norm = layer_norm
        self.actor_layer_norm = actor_layer_norm
        self.activation = activation
        super().__init__(policy, env, learning_rate=learning_rate, batch_size=batch_size, gamma=gamma, tau=tau,
                         **base_kwargs)

    def sampler_settings(self) -> dict[str, Any]:
        return {"sampler": "moment-matching few-step", "sampling_steps": self.sampling_steps}

    def make_policy(self) -> MoMaQLPolicy:
        return self.policy_class(
            self.observation_space,
            self.action_space,
            self.action_horizon,
            actor_hidden_dims=self.actor_hidden_dims,
            value_hidden_dims=self.value_hidden_dims,
            layer_norm=self.layer_norm,
            actor_layer_norm=self.actor_layer_norm,
            activation=self.activation,
            sampling_steps=self.sampling_steps,
            sigma_data=self.sigma_data,
            t_max=self.t_max,
        )

    # ------------------------------------------------------------------ losses
    def critic_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Double-Q TD loss: ``(Q_{φ_i}(s, a) - r - γ m min_i Q_{φ_i^T}(s', a'))²``, ``a'`` from the EMA actor's sampler."""
        pi = self.policy
        next_obs = batch["next_observations"]
        with torch.no_grad():
            next_actions = pi.sample(next_obs, torch.randn_like(batch["actions"]), self.sampling_steps, target=True)
            next_q = aggregate(pi.target_critic(next_obs, next_actions).float(), self.q_agg)
            target_q = batch["rewards"] + self.gamma * batch["masks"] * next_q
        q = pi.critic(batch["observations"], batch["actions"]).float()
        loss = (q - target_q).square().mean()
        return loss, {"critic_loss": loss.detach(), "q_mean": q.mean().detach()}

    def moment_matching_loss(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_D = E_{s<r<t} MMD²(p^{θ⁻}_{s|r}, p^θ_{s|t})`` over ``M`` particles per state, averaged over the batch."""
        pi, m = self.policy, self.num_particles
        b, d = actions.shape
        s, r, t = sample_training_times(b, self.t_max, self.r_gap_k, actions.device, self.grounded_fraction,
                                        self.sampler_jump_fraction, self.q_sampling_steps or [self.sampling_steps])
        # M particles per state: the state's times and dataset action, independent noises.
        obs_p, a_p, s_p, r_p, t_p = (x.repeat_interleave(m, dim=0) for x in (obs, actions, s, r, t))
        eps = torch.randn_like(a_p)
        x_t = (1 - t_p) * a_p + t_p * self.sigma_data * eps
        # x_r: the DDIM step of the interpolant from x_t toward the data a, i.e. the same (a, ε) at time r.
        x_r = (1 - r_p) * a_p + r_p * self.sigma_data * eps
        long_jump = pi.jump(obs_p, x_t, s_p, t_p)
        with torch.no_grad():  # θ⁻: the EMA actor, or a stop-gradient copy of θ
            short_jump = pi.jump(obs_p, x_r, s_p, r_p, target=self.short_jump_net == "ema")
        mmd2, bandwidth = mmd2_unbiased(long_jump.view(b, m, d), short_jump.view(b, m, d), self.kernel_bandwidth,
                                        self.min_bandwidth, self.kernel)
        loss = mmd2.mean()
        return loss, {"mmd_loss": loss.detach(), "kernel_bandwidth": bandwidth.mean().detach()}

    def q_loss(self, obs: torch.Tensor, steps: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``-E[Q_φ(s, a^π)]`` with ``a^π`` from the online ``steps``-step sampler; the gradient flows through every jump
        to θ and not into the critic (its weights are held as constants)."""
        pi = self.policy
        noise = torch.randn((obs.shape[0], pi.chunk_dim), device=obs.device)
        actions = pi.sample(obs, noise, steps)
        q = pi.critic(obs, actions, detach_params=True).float().mean(0)
        loss = -q.mean()
        if self.normalize_q_loss:
            loss = loss / q.abs().mean().detach().clamp_min(1e-8)
        return loss, {"q_loss": loss.detach()}

    def actor_loss(self, batch: dict[str, torch.Tensor], q_steps: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_π = -η E[Q] + L_D``, the Q term through ``q_steps`` jumps; with ``η = 0`` only ``L_D`` is computed."""
        mmd_loss, info = self.moment_matching_loss(batch["observations"], batch["actions"])
        loss = mmd_loss
        if self.eta > 0:
            q_loss, q_info = self.q_loss(batch["observations"], q_steps)
            loss = loss + self.eta * q_loss
            info |= q_info
        return loss, {"actor_loss": loss.detach(), **info}

    def total_loss(self, batch: dict[str, torch.Tensor], q_steps: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``critic_loss + actor_loss`` (disjoint parameters, one Adam); the BC setting (η = 0) skips the critic."""
        with self.autocast():
            actor_loss, info = self.actor_loss(batch, q_steps)
            if self.eta == 0:
                return actor_loss, info
            critic_loss, critic_info = self.critic_loss(batch)
        return critic_loss + actor_loss, critic_info | info

    # ------------------------------------------------------------------ step
    def update_targets(self) -> None:
        """Polyak updates: critics at ``tau``, the EMA actor at ``actor_tau`` (``tau`` when None)."""
        pi = self.policy
        with torch.no_grad():
            torch._foreach_lerp_(list(pi.target_critic.parameters()), list(pi.critic.parameters()), self.tau)
            rate = self.tau if self.actor_tau is None else self.actor_tau
            torch._foreach_lerp_(list(pi.target_actor.parameters()), list(pi.actor.parameters()), rate)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One Adam step on the total loss (the Q term through a step count drawn from ``q_sampling_steps``), then the
        EMA updates."""
        options = self.q_sampling_steps if self.q_sampling_steps and self.eta > 0 else [self.sampling_steps]
        q_steps = options[int(torch.randint(len(options), ()))] if len(options) > 1 else options[0]
        # One compiled graph per step count (the sampler's loop is unrolled): Dynamo tells them apart by guards on
        # the partial's q_steps, in the one cache of total_loss's code (agents/core/base.py raises its size limit).
        total_loss = functools.partial(self.total_loss, q_steps=q_steps)
        total_loss.__name__ = f"total_loss_q{q_steps}"
        loss, info = self.compiled(total_loss)(batch)
        self.optimize(loss, self.optimizers["all"], self.max_grad_norm, clip_apart=(self.policy.actor, self.policy.critic))
        self.update_targets()
        return info
