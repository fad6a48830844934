"""All ternary layers of a model ternarized in one autograd call per forward pass.

Why: a small network such as ResNet-20 is dispatch-bound (on a GPU, and on a CPU at small
batches).  Ternarizing layer by layer costs ~20 tensor operations and two Python autograd
calls per layer and step: on an H200 that more than doubled the step time of ResNet-20
(TTQ/FP 2.5 at batch 256, eager).  Here the latent weights of all layers with the
``threshold`` rule are concatenated into one flat vector and every step of TTQ's forward
and backward is a single operation over all of them (per-layer max and sums are
``segment_reduce`` over contiguous segments, which is deterministic):

    forward   Δ_l = t_l · max|w_l|;  w_t = +Wp_l / 0 / -Wn_l by region   (one pass)
    backward  ∂L/∂Wp_l = Σ_{w>Δ} g,  ∂L/∂Wn_l = -Σ_{w<-Δ} g,  ∂L/∂w = (Wp_l | 1 | Wn_l)·g

— exactly :class:`ttq_core.quantize.function.TernaryWeight`, which stays the reference
(the tests check the two agree) and the path for other rules and single-layer calls.

How: :func:`enable_grouped` registers a forward pre-hook on the model that computes the
ternary weights of the group and hands each layer its own (tagged with the version of its
latent weight, so a layer called on its own after an optimizer step recomputes instead of
using a stale weight).  A forward hook drops the handed-out weights afterwards.

Under ``torch.compile`` both hooks do nothing and each layer ternarizes its own weight
(``TernaryLayerMixin.effective_weight``): the grouping exists to save eager dispatch, which
a compiled graph does not pay, and dynamo cannot trace this hand-over.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import TernaryLayerMixin


class GroupedTernaryWeights(torch.autograd.Function):
    """Ternary weights of several layers at once (see module doc).

    ``forward(ctx, plan, *tensors)`` with ``tensors = (w_1..w_n, wp_1..wp_n, wn_1..wn_n)``
    returns the n ternary weight tensors.  ``plan`` carries the per-layer threshold
    factors, segment lengths and gradient-statistics buffers.
    """

    @staticmethod
    def forward(ctx, plan: "GroupPlan", *tensors):
        n = plan.n
        ws = tensors[:n]
        flat = torch.cat([w.reshape(-1) for w in ws])
        wp = torch.stack(tensors[n:2 * n]).to(flat.dtype)
        wn = torch.stack(tensors[2 * n:]).to(flat.dtype)
        lengths, index, factors = plan.on(flat.device, flat.dtype)
        delta = torch.segment_reduce(flat.abs(), "max", lengths=lengths) * factors
        delta_e = delta[index]
        pos = flat > delta_e
        neg = flat < -delta_e
        zero = torch.zeros((), dtype=flat.dtype, device=flat.device)
        w_t = torch.where(pos, wp[index], torch.where(neg, -wn[index], zero))
        ctx.save_for_backward(pos, neg, wp, wn)
        ctx.plan = plan
        plan.last_delta = delta
        return tuple(part.view(w.shape) for part, w in zip(w_t.split(plan.sizes), ws))

    @staticmethod
    def backward(ctx, *grads):
        pos, neg, wp, wn = ctx.saved_tensors
        plan: GroupPlan = ctx.plan
        lengths, index, _ = plan.on(pos.device, wp.dtype)
        g = torch.cat([(gi if gi is not None else torch.zeros(s, dtype=wp.dtype, device=pos.device)
                        ).reshape(-1) for gi, s in zip(grads, plan.shapes)])
        zero = torch.zeros((), dtype=g.dtype, device=g.device)
        g_pos = torch.where(pos, g, zero)
        g_neg = torch.where(neg, g, zero)
        grad_wp = torch.segment_reduce(g_pos, "sum", lengths=lengths)
        grad_wn = -torch.segment_reduce(g_neg, "sum", lengths=lengths)
        if plan.scale_grad:
            one = torch.ones((), dtype=g.dtype, device=g.device)
            grad_w = g * torch.where(pos, wp[index], torch.where(neg, wn[index], one))
        else:
            grad_w = g
        if plan.stats is not None:
            _accumulate_group_stats(plan, g, grad_w, pos, neg, lengths)
        grad_ws = [part.view(s) for part, s in zip(grad_w.split(plan.sizes), plan.shapes)]
        return (None, *grad_ws, *grad_wp.to(wp.dtype).unbind(), *grad_wn.to(wn.dtype).unbind())


def _accumulate_group_stats(plan, g, grad_w, pos, neg, lengths) -> None:
    """Per layer, add Σ|g| and Σ|grad_w| over the +/0/- regions and their counts into the
    layers' 9-number buffers (layout of quantize.function)."""
    zero_region = ~(pos | neg)
    abs_g, abs_w = g.abs().double(), grad_w.abs().double()
    cols = []
    for values in (abs_g, abs_w):
        for mask in (pos, zero_region, neg):
            cols.append(torch.segment_reduce(values * mask, "sum", lengths=lengths))
    for mask in (pos, zero_region, neg):
        cols.append(torch.segment_reduce(mask.double(), "sum", lengths=lengths))
    table = torch.stack(cols, dim=1)  # (n_layers, 9)
    for row, buf in zip(table, plan.stats):
        if buf is not None:
            buf += row


class GroupPlan:
    """What the grouped function needs about its layers; device tensors cached."""

    def __init__(self, layers: list[TernaryLayerMixin], scale_grad: bool):
        self.layers = layers
        self.n = len(layers)
        self.shapes = [tuple(layer.weight.shape) for layer in layers]
        self.sizes = [layer.weight.numel() for layer in layers]
        self.scale_grad = scale_grad
        self.stats: list[torch.Tensor | None] | None = None
        self.last_delta: torch.Tensor | None = None
        self._cache: dict = {}

    def on(self, device: torch.device, dtype: torch.dtype):
        """(segment lengths, layer index per weight, threshold factors) on ``device``;
        rebuilt only when the device, dtype or a layer's factor changes (no per-step
        host-to-device copies)."""
        values = tuple(layer.quantizer.value for layer in self.layers)
        key = (device, dtype, values)
        if key not in self._cache:
            lengths = torch.tensor(self.sizes, device=device)
            index = torch.repeat_interleave(torch.arange(self.n, device=device), lengths)
            self._cache = {key: (lengths, index, torch.tensor(values, dtype=dtype, device=device))}
        return self._cache[key]


def _groupable(layer: TernaryLayerMixin) -> bool:
    """TTQ layers with the threshold rule (other methods of the quantizer family, e.g. a
    ``twn`` layer, quantize their own weight in ``effective_weight``)."""
    return (layer.quantize_enabled and layer.quantizer.method == "ttq"
            and layer.quantizer.rule.name == "threshold")


class GroupedTernarizer:
    """Pre/post forward hooks that ternarize all groupable layers of a model at once."""

    def __init__(self, model: nn.Module):
        self.model = model
        self._layers = [m for m in model.modules() if isinstance(m, TernaryLayerMixin)]
        self._plans: dict = {}
        self.handles = [model.register_forward_pre_hook(self.before),
                        model.register_forward_hook(self.after)]

    def layers(self) -> list[TernaryLayerMixin]:
        return self._layers

    def before(self, module, args):
        if torch.compiler.is_compiling():
            return
        groups: dict[bool, list[TernaryLayerMixin]] = {}
        for layer in self.layers():
            layer._handed_weight = None
            if _groupable(layer):
                groups.setdefault(layer.quantizer.scale_grad, []).append(layer)
        for scale_grad, layers in groups.items():
            plan = self._plan(layers, scale_grad)
            plan.stats = [layer.quantizer.grad_stats for layer in layers]
            if all(s is None for s in plan.stats):
                plan.stats = None
            tensors = ([layer.weight for layer in layers] + [layer.quantizer.wp for layer in layers]
                       + [layer.quantizer.wn for layer in layers])
            outs = GroupedTernaryWeights.apply(plan, *tensors)
            for i, (layer, w_t) in enumerate(zip(layers, outs)):
                layer._handed_weight = (w_t, layer.weight._version)
                layer.quantizer.last_delta = plan.last_delta[i]

    def after(self, module, args, output):
        if torch.compiler.is_compiling():
            return None
        for layer in self.layers():
            layer._handed_weight = None
        return None

    def _plan(self, layers, scale_grad) -> GroupPlan:
        key = (tuple(id(layer) for layer in layers), scale_grad)
        if key not in self._plans:
            self._plans[key] = GroupPlan(layers, scale_grad)
        return self._plans[key]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        for layer in self.layers():
            layer._handed_weight = None


def enable_grouped(model: nn.Module) -> GroupedTernarizer:
    """Ternarize ``model``'s threshold-rule layers in one call per forward (idempotent)."""
    existing = getattr(model, "_ttq_grouped", None)
    if existing is not None:
        return existing
    grouped = GroupedTernarizer(model)
    model._ttq_grouped = grouped
    return grouped
