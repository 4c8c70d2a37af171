"""MLPs shared by every method, with ensembles as one batched matmul per layer.

Layout follows the FQL/QAM JAX code (``utils/networks.py``): Dense → activation → (LayerNorm) on hidden layers,
a linear output layer, weights initialised with variance scaling 1.0 over fan-avg, uniform (Glorot uniform), zero
biases. An ensemble of ``K`` members keeps its weights as ``(K, in, out)`` tensors so a forward pass is one
``baddbmm`` per layer instead of a Python loop over members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU (Hendrycks & Gimpel), the exact erf form.

    The JAX reference code uses ``flax.linen.gelu``'s default tanh approximation; the two differ by < 1e-3
    everywhere, and the tanh form is ~4x slower in torch's CPU kernels (benchmarks/activations.py: 89 vs 20 us
    on 256x256, fp32, one thread).
    """
    return F.gelu(x)


_MISH_SMALL = 4096  # up to this many elements F.mish's single kernel wins (the composed form pays ~8 launches)
_MISH_BLOCK = 1 << 16  # elements per block of the composed form without autograd: its temporaries stay in L2


def _mish_gate(s: torch.Tensor) -> torch.Tensor:
    """``tanh(softplus(x))`` from ``s = sigmoid(x)``: ``s (2 - s) / (1 + (1 - s)^2)``.

    With ``u = 1 + e^x = 1 / (1 - s)``, ``tanh(log u) = (u^2 - 1) / (u^2 + 1)``, which is the expression above. Written
    in ``s`` (not ``1 - s``) it has no cancellation in the negative tail, so its relative error stays ~1e-6 in fp32
    everywhere (the ``1 - t^2`` form loses all digits below x = -15). In-place ops: ``s`` is not modified.
    """
    return torch.rsub(s, 2).mul_(s).div_(torch.rsub(s, 1).square_().add_(1))


class _Mish(torch.autograd.Function):
    """Mish with a hand-written backward: ``d/dx [x g(x)] = g + x (1 - g^2) sigmoid(x)``, ``g = tanh(softplus(x))``.

    Autograd through the composed forward would record ~8 elementwise ops and replay their backward one by one;
    this backward is 5 kernels on tensors saved by the forward.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(x)
        g = _mish_gate(s)
        ctx.save_for_backward(x, s, g)
        return x * g

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
        x, s, g = ctx.saved_tensors
        return torch.addcmul(g, g.square().neg_().add_(1).mul_(x), s).mul_(grad_out)


def _mish_no_grad(x: torch.Tensor) -> torch.Tensor:
    """The composed forward in blocks of ``_MISH_BLOCK`` elements: on a large input (e.g. 50 candidates x 256 rows)
    each of its passes would otherwise stream the whole tensor through memory."""
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    for xs, ys in zip(x.reshape(-1).split(_MISH_BLOCK), out.view(-1).split(_MISH_BLOCK)):
        torch.mul(_mish_gate(torch.sigmoid(xs)), xs, out=ys)
    return out


def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish (Misra 2019), ``x tanh(softplus(x))``: the activation of Diffusion-QL's and Consistency-AC's networks.

    ``F.mish`` is ~10x slower than SiLU in this torch build on this CPU (its kernel is not vectorised; it took 44% of
    a training step of the official Diffusion-QL code). Here it is built from ``sigmoid`` (a vectorised kernel) and a
    few elementwise ops, with an analytic backward (``_Mish``), and equals ``F.mish`` to fp32 rounding (relative error
    ~1e-6); ``benchmarks/activations.py`` measures it (about 3-4x cheaper on a 256x256 batch, forward and backward).
    Tiny inputs (batch-1 acting) keep ``F.mish``, whose single kernel beats the composed form's launch overhead.
    Reduced-precision inputs (bf16 under autocast) are computed in fp32 and rounded once, as ``F.mish`` does.
    """
    if x.numel() <= _MISH_SMALL:
        return F.mish(x)
    dtype = x.dtype
    xf = x.float() if dtype in (torch.float16, torch.bfloat16) else x
    out = _Mish.apply(xf) if torch.is_grad_enabled() and x.requires_grad else _mish_no_grad(xf)
    return out.to(dtype)


ACTIVATIONS = {"gelu": gelu, "relu": F.relu, "silu": F.silu, "mish": mish, "tanh": torch.tanh}


class MLP(nn.Module):
    """A (possibly ensembled) multi-layer perceptron.

    Args:
        in_dim: input size.
        hidden_dims: hidden layer sizes.
        out_dim: output size.
        activation: a key of :data:`ACTIVATIONS`.
        layer_norm: LayerNorm (learnable scale and bias, as flax's) after each hidden activation (FQL/QAM critics).
        ensemble: number of members ``K``; with ``K > 1`` the input may be ``(B, in)`` (shared by all members)
            or ``(K, B, in)``, and the output is ``(K, B, out)``.
        init: ``"glorot"`` (Glorot uniform weights, zero biases: the JAX code of FQL/QAM) or ``"torch"`` (what
            ``nn.Linear`` does: weights and biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, the init of the PyTorch
            code of Diffusion-QL and Consistency-AC).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        activation: str = "gelu",
        layer_norm: bool = False,
        ensemble: int = 1,
        init: str = "glorot",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        if init not in ("glorot", "torch"):
            raise ValueError(f"init must be 'glorot' or 'torch', got {init!r}")
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]
        self.layer_norm = layer_norm
        self.ensemble = ensemble
        dims = [in_dim, *hidden_dims, out_dim]
        shape = (lambda i, o: (ensemble, i, o)) if ensemble > 1 else (lambda i, o: (o, i))
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.ln_scales = nn.ParameterList()
        self.ln_biases = nn.ParameterList()
        vec = (lambda o: (ensemble, 1, o)) if ensemble > 1 else (lambda o: (o,))
        for i, o in zip(dims[:-1], dims[1:]):
            w, b = torch.empty(shape(i, o)), torch.zeros(vec(o))
            if init == "glorot":
                bound = math.sqrt(6.0 / (i + o))  # Glorot uniform = variance_scaling(1, fan_avg, uniform)
                nn.init.uniform_(w, -bound, bound)
            else:  # nn.Linear's kaiming_uniform_(a=sqrt(5)) reduces to this bound, for weights and biases alike
                bound = 1.0 / math.sqrt(i)
                nn.init.uniform_(w, -bound, bound)
                nn.init.uniform_(b, -bound, bound)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))
        if layer_norm:
            for h in hidden_dims:
                self.ln_scales.append(nn.Parameter(torch.ones(vec(h))))
                self.ln_biases.append(nn.Parameter(torch.zeros(vec(h))))
        self.hidden_dims = list(hidden_dims)

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Apply the network; ``detach_params`` treats the weights as constants (gradients reach ``x`` only),
        which is how an actor loss differentiates through a critic without updating it."""
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if detach_params:
                w, b = w.detach(), b.detach()
            if i == n - 1 and torch.is_autocast_enabled(x.device.type):
                # The output layer stays fp32 under bf16 autocast: Q-values of magnitude ~100 would otherwise be
                # rounded to ~0.5, swamping the TD errors; the layer is tiny, so this costs nothing measurable.
                with torch.autocast(x.device.type, enabled=False):
                    return self._linear(x.float(), w, b)
            x = self._linear(x, w, b)
            if i < n - 1:
                x = self.activation(x)
                if self.layer_norm:
                    g, c = self.ln_scales[i], self.ln_biases[i]
                    if detach_params:
                        g, c = g.detach(), c.detach()
                    x = torch.addcmul(c, F.layer_norm(x, x.shape[-1:]), g)
        return x

    def _linear(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.ensemble == 1:
            return F.linear(x, w, b)
        if x.dim() == 2:  # shared input: one matmul against all members' weights at once
            return torch.baddbmm(b, x.unsqueeze(0).expand(self.ensemble, -1, -1), w)
        return torch.baddbmm(b, x, w)


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B,)`` noise levels or step indices -> ``(B, dim)`` features ``[sin(t w_k), cos(t w_k)]``,
    ``w_k = 10000^(-k / (dim/2 - 1))``: the ``SinusoidalPosEmb`` of the Diffusion-QL and Consistency-AC code."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000.0) / (half - 1)))
    args = t.float()[:, None] * freqs
    return torch.cat([args.sin(), args.cos()], dim=-1)


class LNResNet(nn.Module):
    """The LayerNorm ResNet of Consistency-AC's code (``agents/model.py::LN_Resnet``; defined there but commented out
    in ``ql_consistency.py``, so an ablation switch here).

    ``Linear(in, h) -> ReLU -> n_blocks x [x + Linear(4h, h)(ReLU(Linear(h, 4h)(LayerNorm(Dropout(x)))))] -> ReLU ->
    Linear(h, out)``, with ``nn.Linear``'s default init as in that code. Dropout is active in training mode only.
    """

    def __init__(self, in_dim: int, hidden: int, n_blocks: int, out_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.input = nn.Linear(in_dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Dropout(dropout),
                nn.LayerNorm(hidden),
                nn.Linear(hidden, 4 * hidden),
                nn.ReLU(),
                nn.Linear(4 * hidden, hidden),
            )
            for _ in range(n_blocks)
        )
        self.output = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.input(x))
        for block in self.blocks:
            x = x + block(x)
        return self.output(F.relu(x))


class DenoiserNet(nn.Module):
    """The noise-conditioned network of Diffusion-QL (``ε_θ(x_t, t, s)``) and Consistency-AC (``F_θ(x, τ, s)``).

    As in both official codes (``agents/model.py::MLP``): the noise level goes through a 16-d sinusoidal embedding and
    ``Linear(16, 32) -> Mish -> Linear(32, 16)``; the trunk reads ``[x ‖ t_emb ‖ s]`` and is an MLP with Mish
    (paper: 3x256) or, for the consistency ablation, :class:`LNResNet` (width ``hidden_dims[0]``, one block per
    entry of ``hidden_dims``). ``nn.Linear``'s default init throughout, as in that code.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_dims: Sequence[int],
        t_dim: int = 16,
        backbone: str = "mlp",
        activation: str = "mish",
    ) -> None:
        super().__init__()
        self.t_dim = t_dim
        self.time_mlp = MLP(t_dim, [2 * t_dim], t_dim, activation="mish", init="torch")
        in_dim = act_dim + t_dim + obs_dim
        if backbone == "mlp":
            self.trunk: nn.Module = MLP(in_dim, hidden_dims, act_dim, activation=activation, init="torch")
        elif backbone == "ln_resnet":
            self.trunk = LNResNet(in_dim, hidden_dims[0], len(hidden_dims), act_dim)
        else:
            raise ValueError(f"backbone must be 'mlp' or 'ln_resnet', got {backbone!r}")

    def time_embedding(self, t: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
        """``(batch, t_dim)``; a scalar ``t`` (one level for the whole batch, as in sampling) is embedded once."""
        if isinstance(t, torch.Tensor):
            return self.time_mlp(sinusoidal_embedding(t.reshape(-1), self.t_dim))
        return self.time_mlp(sinusoidal_embedding(torch.full((1,), float(t), device=device), self.t_dim)).expand(batch, -1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, obs: torch.Tensor) -> torch.Tensor:
        temb = self.time_embedding(t, x.shape[0], x.device)
        return self.trunk(torch.cat([x, temb.to(x.dtype), obs.to(x.dtype)], dim=-1))
