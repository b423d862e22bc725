"""Constant-memory gradients: rebuild the states backwards instead of storing them.

Plain autograd keeps every layer's states for the backward pass: memory grows with
depth. Because each layer is exactly invertible (eq. 2.9), the backward pass can start
from the last pair (Y_{n-1}, Y_n) and recompute the earlier states layer by layer. This
module is the memory-saving mechanism only; the layers own forward and inverse, and
:class:`~fhn_core.network.HyperbolicNetwork` can switch this mechanism off for comparison.

Backward through one layer (p, c) -> (c', n), c' = W c, p' = W p,
n = 2 c' - p' - h^2 f(c'), f = K^T z, z = relu(K c' + b), with incoming gradients
(g_c', g_n):

    z, f        computed ONCE from c'
    p'          = 2 c' - n - h^2 f                          (eq. 2.9, rebuilds the state)
    g_z         = (K g_n) * [z > 0]                         (<g, K^T z> = <K g, z>)
    g_p'        = -g_n
    g_c'        = g_c' + 2 g_n - h^2 K^T g_z
    g_K        += -h^2 (d<K^T z, g_n>/dK + d<K c', g_z>/dK),  g_b += -h^2 sum(g_z)
    (p, c), (g_p, g_c): W^T applied to states and gradients (W orthonormal: adjoint = inverse)

The vector-Jacobian product of f is written out rather than left to autograd, so that
no graph keeps f, z and their temporaries alive: about 4/3 of plain autograd's work
(one extra K and K^T per layer), and a peak of the pair, its two gradients and one
layer's workspace. Every buffer is freed as soon as it has been used and the results
are written into buffers this module owns (f's, K^T g_z's); the tensors the forward
returned and the incoming gradients are never modified. Parameters enter as inputs of
the Function, so autograd ACCUMULATES their gradients into ``.grad`` (optimisers,
gradient accumulation and DDP rely on it).

The backward frees the output pair it was handed, so it can run once per forward: a
second backward over the same graph (``retain_graph=True``) raises an error.

Drift guard. In float32 the rebuilt states drift from the true ones; the drift grows with
depth, with the size of the weights and with h (measured: 130 layers with weights 3x their
initial scale rebuild X with a relative error of about 3 and parameter gradients 20 %
wrong, while plain autograd is exact). The backward ends at the first layer, whose true
input X is at hand: the state Y_2 = X that the backward rebuilt through every later
layer arrives there, and ||Y_2 rebuilt - X|| / ||X|| is recorded in a
:class:`ReconstructionMonitor` (every rebuild but the first layer's own, which cannot
drift by itself). It costs a difference and a norm, no convolution and no buffer. Past
the monitor's tolerance the gradients of that step cannot be trusted; the trainer stops
(:mod:`fhn_core.training`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from .layers import HyperbolicLayer, State, cpu_axis_order, inverse_order

_convolution_backward = torch.ops.aten.convolution_backward.default

# Relative error of the rebuilt input past which a step's gradients are flagged. Measured
# (130 layers, float32): 3e-2 goes with gradients 0.4 % off, 0.4 with 2 %, 3 with 20 %;
# healthy networks rebuild X to 1e-6..1e-4.
RECONSTRUCTION_TOLERANCE = 1e-2


@dataclass
class ReconstructionMonitor:
    """What the last constant-memory backward measured: how well it rebuilt the input X.

    ``error`` = ||X_rebuilt - X|| / ||X|| for the starting state Y_2 = X, None before any
    backward or when X changed in place in between.
    """

    tolerance: float = RECONSTRUCTION_TOLERANCE
    error: float | None = None

    @property
    def flagged(self) -> bool:
        """True when the last backward's gradients are not to be trusted."""
        return self.error is not None and not self.error <= self.tolerance



def _rebuild_error(layer: HyperbolicLayer, c: torch.Tensor, x: torch.Tensor) -> float | None:
    """||c - W X|| / ||X|| at the first layer: how well the backward rebuilt the input.

    ``c`` is the first layer's output Y_2 = W X (its resampling W of the starting state
    X) as the backward rebuilt it through every later layer; W is orthonormal, so the norm
    is that of the unresampled states. Reduced a slice of channels at a time: no
    state-sized buffer and no convolution.
    """
    target = layer.resample(x)
    scale = float(target.norm())
    if scale == 0:
        return None
    width = max(1, c.shape[1] // 4)
    total = torch.zeros((), dtype=torch.float64, device=c.device)
    for a in range(0, c.shape[1], width):
        part = slice(a, a + width)
        total += (c[:, part] - target[:, part]).square().sum(dtype=torch.float64)
    return float(total.sqrt()) / scale


def run_layers(layers: Sequence[HyperbolicLayer], x: torch.Tensor) -> State:
    """The forward recursion from the starting pair Y_1 = Y_2 = X; returns (Y_{n-1}, Y_n).

    Each state is resampled and rebound one at a time, so without autograd the old one
    is freed before the next is made (a layer's forward() would keep both pairs alive).
    """
    y_prev, y_curr = x, x
    for layer in layers:
        y_prev = layer.resample(y_prev)
        y_curr = layer.resample(y_curr)
        y_prev, y_curr = y_curr, layer.advance(y_prev, y_curr)
    return y_prev, y_curr


def _conv_backward(
    layer: HyperbolicLayer,
    grad_out: torch.Tensor,
    inp: torch.Tensor,
    weight: torch.Tensor,
    input_grad: bool,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(input gradient or None, kernel gradient) of the convolution ``inp`` * ``weight``.

    Computed in the axis order the forward convolution used (layers.cpu_axis_order).
    Under autocast the convolutions ran in low precision; their gradients follow them.
    """
    dtype = inp.dtype
    n = layer.spatial_dims
    order = cpu_axis_order(inp)
    if order is not None:
        grad_out, inp, weight = grad_out.permute(order), inp.permute(order), weight.permute(order)
    g_in, g_weight, _ = _convolution_backward(
        grad_out.to(dtype), inp, weight.to(dtype), None, [1] * n, [layer.padding] * n,
        [1] * n, False, [0] * n, 1, [input_grad, True, False],
    )
    if order is not None:
        back = inverse_order(order)
        g_in = None if g_in is None else g_in.permute(back)
        g_weight = g_weight.permute(back)
    return g_in, g_weight


def _unflip(adjoint_kernel: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Map a gradient for K^T's kernel back to K's (the swap and flip are their own inverse)."""
    return adjoint_kernel.transpose(0, 1).flip(tuple(range(2, 2 + spatial_dims)))


def _adjoint_vjp(
    layer: HyperbolicLayer, z: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(g_z, gradient for K^T's kernel) of f = K^T z, z = relu(K c + b), cotangent g.

    g_z = (K g) * [z > 0] is the cotangent of K c + b. K^T's kernel gradient is taken in
    this orientation (input z, r channels), which CPUs run fast at every level. ``z`` is
    used up: it becomes the relu mask in place.
    """
    g_z, d_adjoint = _conv_backward(layer, g, z, layer.adjoint_weight(), input_grad=True)
    g_z.mul_(z.sign_())  # z >= 0, so sign(z) is the relu mask [z > 0]
    return g_z, d_adjoint


def _kernel_vjp(
    layer: HyperbolicLayer, c: torch.Tensor, g_z: torch.Tensor, input_grad: bool
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(K^T g_z or None, gradient for K's kernel) of K c, cotangent g_z.

    In K's own orientation (input c, C channels) the kernel gradient is cheap only while
    C <= r; otherwise it uses <K c, g_z> = <c, K^T g_z>, the orientation of _adjoint_vjp.
    """
    if layer.channels <= layer.rank:
        return _conv_backward(layer, g_z, c, layer.weight, input_grad)
    d_adjoint = _conv_backward(layer, c, g_z, layer.adjoint_weight(), input_grad=False)[1]
    return (layer.adjoint(g_z) if input_grad else None), _unflip(d_adjoint, layer.spatial_dims)


def _layer_backward(
    layer: HyperbolicLayer, work: list, *, own_grads: bool, rebuild: bool, input_grads: bool,
    guard: tuple[ReconstructionMonitor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step back through one layer; returns (dK, db).

    ``work`` = [c, n, g_c, g_n] at the layer's output (g_c may be None: zero). It is
    emptied on entry, so these tensors die here as soon as they are used, and refilled
    with the earlier pair and its gradients [p, c, g_p, g_c] (None where not asked for).
    ``own_grads``: g_n may be overwritten (it is not autograd's incoming gradient).
    ``rebuild``: compute the earlier pair (not needed below the first layer).
    ``input_grads``: compute the gradients of the earlier pair.
    ``guard``: (monitor, X) at the first layer: record how well the pair (X, X) rebuilds.
    """
    c, n, g_c, g_n = work
    work.clear()
    h2 = layer.h * layer.h
    z = layer.activation(c)
    if guard is not None:
        guard[0].error = _rebuild_error(layer, c, guard[1])
    p = layer.combine_(layer.adjoint(z), c, n) if rebuild else None  # eq. 2.9
    del n
    # n = 2 c - p - h^2 f(c): f's cotangent is -h^2 g_n; the -h^2 is applied afterwards.
    g_z, d_adjoint = _adjoint_vjp(layer, z, g_n)
    del z
    d_bias = g_z.sum(dim=(0, *range(2, g_z.dim())), dtype=layer.bias.dtype)
    k_adj_g, d_kernel = _kernel_vjp(layer, c, g_z, input_grads)
    del g_z
    d_weight = _unflip(d_adjoint, layer.spatial_dims).add_(d_kernel).to(layer.weight.dtype)
    g_p = None
    if input_grads:  # g_c' = g_c + 2 g_n - h^2 K^T g_z, written into K^T g_z's memory
        g_c_new = k_adj_g.to(g_n.dtype).mul_(-h2).add_(g_n, alpha=2.0)
        del k_adj_g
        if g_c is not None:
            g_c_new.add_(g_c)
        g_c = g_c_new
        del g_c_new
        g_p = g_n.neg_() if own_grads else g_n.neg()
    else:
        g_c = None
    del g_n
    if not rebuild:
        c = None
    earlier = [p, c, g_p, g_c]
    del p, c, g_p, g_c
    # One at a time, so that each old tensor is freed before the next is transformed.
    for i, t in enumerate(earlier):
        earlier[i] = None if t is None else layer.unresample(t)
    del t
    work += earlier
    return d_weight.mul_(-h2), d_bias.mul_(-h2)


class ReversibleSequence(torch.autograd.Function):
    """Autograd Function over all layers that keeps only the last pair of states.

    ``forward(ctx, layers, monitor, x, *params)`` returns (Y_{n-1}, Y_n); ``params`` must be the
    layers' (weight, bias) in order, so their gradients flow back through autograd.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, layers: Sequence[HyperbolicLayer], monitor: ReconstructionMonitor | None,
                x: torch.Tensor, *params: torch.Tensor):
        with torch.no_grad():
            y_prev, y_curr = run_layers(layers, x)
        ctx.layers = layers
        ctx.monitor = monitor
        # An alias, not a copy: the caller holds X anyway; its version tells if it changed.
        ctx.x, ctx.x_version = (x.detach(), x._version) if monitor is not None else (None, 0)
        ctx.set_materialize_grads(False)
        # Not save_for_backward: the backward must be able to drop the pair after its
        # first layer. Detached aliases avoid a reference cycle through the outputs'
        # grad_fn and share their version counters, which is checked in backward.
        ctx.pair = (y_prev.detach(), y_curr.detach())
        ctx.versions = (y_prev._version, y_curr._version)
        return y_prev, y_curr

    @staticmethod
    @once_differentiable
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g_prev: torch.Tensor | None, g_curr: torch.Tensor | None):
        if ctx.pair is None:
            raise RuntimeError(
                "the invertible network frees its states during backward, so its graph can "
                "be backpropagated only once; use gradient_mode='checkpoint' or 'autograd' "
                "for retain_graph=True"
            )
        (y_prev, y_curr), ctx.pair = ctx.pair, None
        if (y_prev._version, y_curr._version) != ctx.versions:
            raise RuntimeError(
                "an output of the invertible network was modified in place after the "
                "forward pass; the backward pass rebuilds the states from it, so clone it "
                "before changing it"
            )
        layers = ctx.layers
        need_x = ctx.needs_input_grad[2]
        x, ctx.x = ctx.x, None
        check = x is not None and x._version == ctx.x_version
        own = g_curr is None  # a zero gradient made here may be overwritten
        if g_curr is None:  # the loss did not use Y_n; Y_{n-1}'s gradient may still be set
            g_curr = torch.zeros_like(y_curr)
        work = [y_prev, y_curr, g_prev, g_curr]
        del y_prev, y_curr, g_prev, g_curr
        param_grads: list[torch.Tensor] = []
        for i in reversed(range(len(layers))):
            below = i == 0  # the first layer: its input pair (X, X) needs no rebuilding
            d_weight, d_bias = _layer_backward(
                layers[i], work, own_grads=own, rebuild=not below,
                input_grads=need_x or not below,
                guard=(ctx.monitor, x) if below and check else None,
            )
            own = True
            param_grads += [d_bias, d_weight]
        param_grads.reverse()
        if ctx.monitor is not None and not (check and layers):
            ctx.monitor.error = None
        del x
        g_x = None
        if need_x:
            # The starting pair is (X, X): X feeds both slots, so its gradient is the sum.
            _, _, g_p, g_c = work
            if g_p is None or g_c is None:
                g_x = g_c if g_p is None else g_p
            else:
                g_x = g_c.add_(g_p) if own and layers else g_c + g_p
        return (None, None, g_x, *param_grads)


def reversible_forward(
    layers: Sequence[HyperbolicLayer], x: torch.Tensor,
    monitor: ReconstructionMonitor | None = None,
) -> State:
    """Run the layers with constant-memory gradients; returns (Y_{n-1}, Y_n).

    With ``monitor``, the backward records how well it rebuilt ``x`` (the drift guard).
    """
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    return ReversibleSequence.apply(layers, monitor, x, *params)
