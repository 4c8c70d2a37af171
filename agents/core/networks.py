"""MLPs shared by every method, with ensembles as one batched matmul per layer.

Layout follows the FQL/QAM JAX code (``utils/networks.py``): Dense → activation → (LayerNorm) on hidden layers,
a linear output layer, weights initialised with variance scaling 1.0 over fan-avg, uniform (Glorot uniform), zero
biases. An ensemble of ``K`` members keeps its weights as ``(K, in, out)`` tensors so a forward pass is one
``baddbmm`` per layer instead of a Python loop over members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


def mish(x: torch.Tensor) -> torch.Tensor:
    return F.mish(x)


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
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        activation: str = "gelu",
        layer_norm: bool = False,
        ensemble: int = 1,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
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
            w = torch.empty(shape(i, o))
            bound = math.sqrt(6.0 / (i + o))  # Glorot uniform = variance_scaling(1, fan_avg, uniform)
            nn.init.uniform_(w, -bound, bound)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(vec(o))))
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
