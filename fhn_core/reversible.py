"""Constant-memory gradients: rebuild the states backwards instead of storing them.

Plain autograd keeps every layer's states for the backward pass: memory grows with
depth. Because each layer is exactly invertible (eq. 2.9), the backward pass can start
from the last pair (Y_{n-1}, Y_n) and recompute the earlier states layer by layer. This
module is the memory-saving mechanism only; the layers own forward and inverse, and
:class:`~fhn_core.network.HyperbolicNetwork` can switch this mechanism off for comparison.

Backward through one layer (p, c) -> (c', n), c' = W c, p' = W p,
n = 2 c' - p' - h^2 f(c'), f = K^T relu(K . + b), with incoming gradients (g_c', g_n):

    f           computed ONCE, with grad enabled, from c'
    p'          = 2 c' - n - h^2 f                          (eq. 2.9, rebuilds the state)
    g_p'        = -g_n
    g_c'        = g_c' + 2 g_n - h^2 (df/dc')^T g_n
    g_theta    += -h^2 (df/dtheta)^T g_n                     (theta = K, b)
    (p, c), (g_p, g_c): W^T applied to states and gradients (W orthonormal: adjoint = inverse)

So the backward costs one forward of f plus one backward through it per layer: about 4/3
of plain autograd. Parameters enter as inputs of the Function, so autograd ACCUMULATES
their gradients into ``.grad`` (optimisers, gradient accumulation and DDP rely on it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

from .layers import HyperbolicLayer, State


def run_layers(layers: Sequence[HyperbolicLayer], x: torch.Tensor) -> State:
    """The forward recursion from the starting pair Y_1 = Y_2 = X; returns (Y_{n-1}, Y_n)."""
    y_prev, y_curr = x, x
    for layer in layers:
        y_prev, y_curr = layer(y_prev, y_curr)
    return y_prev, y_curr


def _layer_backward(
    layer: HyperbolicLayer, pair: State, grads: State
) -> tuple[State, State, tuple[torch.Tensor, torch.Tensor]]:
    """Step back through one layer: the earlier pair, its gradients, and dK, db."""
    c_out, n_out = pair
    g_c, g_n = grads
    c_leaf = c_out.detach().requires_grad_(True)
    with torch.enable_grad():
        f = layer.residual(c_leaf)
    h2 = layer.h * layer.h
    g_f_c, g_weight, g_bias = torch.autograd.grad(
        f, (c_leaf, layer.weight, layer.bias), grad_outputs=-h2 * g_n
    )
    p_out = layer.leapfrog(n_out, c_out, f.detach())
    earlier = (layer.unresample(p_out), layer.unresample(c_out))
    earlier_grads = (layer.unresample(-g_n), layer.unresample(g_c + 2.0 * g_n + g_f_c))
    return earlier, earlier_grads, (g_weight, g_bias)


class ReversibleSequence(torch.autograd.Function):
    """Autograd Function over all layers that keeps only the last pair of states.

    ``forward(ctx, layers, x, *params)`` returns (Y_{n-1}, Y_n); ``params`` must be the
    layers' (weight, bias) in order, so their gradients flow back through autograd.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, layers: Sequence[HyperbolicLayer], x: torch.Tensor, *params: torch.Tensor):
        with torch.no_grad():
            y_prev, y_curr = run_layers(layers, x)
        ctx.layers = layers
        ctx.save_for_backward(y_prev, y_curr)
        return y_prev, y_curr

    @staticmethod
    @once_differentiable
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g_prev: torch.Tensor, g_curr: torch.Tensor):
        pair: State = tuple(t.detach() for t in ctx.saved_tensors)  # type: ignore[assignment]
        grads: State = (g_prev, g_curr)
        param_grads: list[torch.Tensor] = []
        for layer in reversed(ctx.layers):
            pair, grads, (g_weight, g_bias) = _layer_backward(layer, pair, grads)
            param_grads += [g_bias, g_weight]
        param_grads.reverse()
        # The starting pair is (X, X): X feeds both slots, so its gradient is the sum.
        return (None, grads[0] + grads[1], *param_grads)


def reversible_forward(layers: Sequence[HyperbolicLayer], x: torch.Tensor) -> State:
    """Run the layers with constant-memory gradients; returns (Y_{n-1}, Y_n)."""
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    return ReversibleSequence.apply(layers, x, *params)
