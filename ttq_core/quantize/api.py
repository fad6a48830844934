"""``ternarize``: swap a model's conv/linear layers for ternary ones; ``export_ternary``.

Layer selection uses PyTorch module names (``layer2.0.conv1``) and shell-style globs
(``layer3.*``).  By default the first conv and the last linear layer (in module order)
stay full precision, as in TTQ.

The quantization of a model is described by a plain, JSON-able dict (its *record*), which
a checkpoint stores under ``quant`` and :func:`apply_quant_record` replays::

    {"rule": "threshold",              # threshold rule name (see ttq_core.quantize.rules)
     "threshold": 0.05,                # what the user asked for: a number or {glob: number}
     "layers": {"layer1.0.conv1": {"rule": "threshold", "value": 0.05}, ...},
     "fp_layers": ["conv1", "linear"], # conv/linear layers kept in full precision
     "scale_grad": true,               # TTQ's per-region gradient scaling on/off
     "min_scale": 0.0001,
     "scale_init": "one"}              # how Wp, Wn started: "one", "least-squares"
                                       # (records before scale_init existed: least-squares)
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .grouped import enable_grouped
from .layers import MIN_SCALE, SCALE_INITS, TERNARY_LAYER_TYPES, TernaryLayerMixin, TernaryQuantizer
from .rules import get_rule

FIRST_LAST = "first-last"


def _quantizable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules()
            if type(m) in TERNARY_LAYER_TYPES or isinstance(m, TernaryLayerMixin)]


def ternary_layers(model: nn.Module) -> Iterator[tuple[str, TernaryLayerMixin]]:
    """(name, layer) for every ternary layer of ``model``, in module order."""
    for name, m in model.named_modules():
        if isinstance(m, TernaryLayerMixin):
            yield name, m


def default_fp_layers(model: nn.Module) -> list[str]:
    """Names of the first conv layer and the last linear layer (module order)."""
    layers = _quantizable(model)
    convs = [n for n, m in layers if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in layers if isinstance(m, nn.Linear)]
    return [n for n in (convs[:1] + linears[-1:])]


def _match(name: str, pattern: str) -> bool:
    return name == pattern or fnmatch.fnmatchcase(name, pattern)


def _resolve_fp(model: nn.Module, keep_fp) -> list[str]:
    names = [n for n, _ in _quantizable(model)]
    if keep_fp is None or keep_fp == FIRST_LAST:
        return default_fp_layers(model)
    if isinstance(keep_fp, str):
        keep_fp = [keep_fp]
    fp = []
    for pattern in keep_fp:
        hits = [n for n in names if _match(n, pattern)]
        if not hits:
            raise ConfigError(f"keep_fp pattern {pattern!r} matches no conv/linear layer; "
                              f"layers are: {', '.join(names)}")
        fp += hits
    return [n for n in names if n in set(fp)]


def _resolve_values(names: Sequence[str], threshold, rule) -> dict[str, float]:
    """Per-layer rule values: one number for all, or a {name-or-glob: number} mapping.

    In a mapping an exact layer name wins over globs; among globs the first match (in the
    mapping's order) wins; ``"*"`` is a catch-all.  Every pattern must match some layer,
    and every layer must get a value.
    """
    if not isinstance(threshold, Mapping):
        v = rule.check(threshold)
        return {n: v for n in names}
    values, used = {}, set()
    for n in names:
        if n in threshold:
            values[n] = rule.check(threshold[n], f" for {n}")
            used.add(n)
            continue
        for pattern, v in threshold.items():
            if _match(n, pattern):
                values[n] = rule.check(v, f" for {n}")
                used.add(pattern)
                break
        else:
            raise ConfigError(f"no {rule.name} value for ternary layer {n!r}: add it, a glob "
                              f"matching it, or '*' to the per-layer mapping")
    unused = [p for p in threshold if p not in used]
    if unused:
        raise ConfigError(f"per-layer {rule.name} pattern(s) {', '.join(map(repr, unused))} "
                          f"match no ternary layer; ternary layers are: {', '.join(names)}")
    return values


def _swap(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def ternarize(model: nn.Module, threshold: float | Mapping[str, float] = 0.05,
              keep_fp: Sequence[str] | str | None = None, rule: str = "threshold",
              scale_grad: bool = True, init_scales: bool = True,
              min_scale: float = MIN_SCALE, grouped: bool = True,
              scale_init: str = "least-squares") -> nn.Module:
    """Swap ``model``'s conv/linear layers in place for ternary ones; return ``model``.

    Args:
        threshold: the rule's value, one number for all layers or a mapping from layer
            name or glob to number (see :func:`_resolve_values`).  For ``rule="threshold"``
            it is the factor t in Δ = t·max|w|; for ``rule="sparsity"`` the target fraction
            of zero weights r.
        keep_fp: names or globs of conv/linear layers to keep in full precision; ``None``
            keeps the first conv and the last linear layer; ``[]`` ternarizes all.
        rule: threshold rule name, ``"threshold"`` or ``"sparsity"``.
        scale_grad: TTQ's per-region scaling of the latent gradient (False: plain STE).
        init_scales: set Wp, Wn as ``scale_init`` says.  Pass False when a state_dict
            with trained scales will be loaded next.
        scale_init: ``"least-squares"`` (this function's default: the ternary model closest
            to the float one, right for untrained what-if estimates) or ``"one"``
            (Wp = Wn = 1, the authors' choice and ``ttq-train``'s default for training;
            re-estimate batch-norm statistics afterwards).  See ``quantize.layers``.
        grouped: ternarize all threshold-rule layers in one autograd call per model
            forward (same numbers, far fewer operations; see quantize.grouped).  False
            keeps the per-layer reference path.
    """
    rule_obj = get_rule(rule)
    if scale_init not in SCALE_INITS:
        raise ConfigError(f"scale_init must be one of {', '.join(SCALE_INITS)}, got {scale_init!r}")
    if any(True for _ in ternary_layers(model)):
        raise ConfigError("model is already ternarized")
    fp = set(_resolve_fp(model, keep_fp))
    targets = [(n, m) for n, m in _quantizable(model) if n not in fp]
    if not targets:
        raise ConfigError("no conv/linear layer left to ternarize (all are kept in FP)")
    values = _resolve_values([n for n, _ in targets], threshold, rule_obj)
    for name, float_layer in targets:
        q = TernaryQuantizer(rule_obj.name, values[name], scale_grad, min_scale)
        q.to(float_layer.weight.device)
        new = TERNARY_LAYER_TYPES[type(float_layer)].from_float(float_layer, q)
        if init_scales:
            q.init_scales_(new.weight, scale_init)
        _swap(model, name, new)
    model._ttq_request = {"threshold": _plain(threshold), "scale_init":
                          scale_init if init_scales else "loaded"}
    if grouped:
        enable_grouped(model)
    return model


def _plain(threshold):
    return dict(threshold) if isinstance(threshold, Mapping) else float(threshold)


def quant_record(model: nn.Module) -> dict | None:
    """The JSON-able record describing how ``model`` is ternarized (None if it is not)."""
    layers = list(ternary_layers(model))
    if not layers:
        return None
    quantizers = [m.quantizer for _, m in layers]
    rules = sorted({q.rule.name for q in quantizers})
    request = getattr(model, "_ttq_request", {})
    return {
        "rule": rules[0] if len(rules) == 1 else "mixed",
        "threshold": request.get("threshold"),
        "layers": {n: {"rule": m.quantizer.rule.name, "value": m.quantizer.value}
                   for n, m in layers},
        "fp_layers": [n for n, m in _quantizable(model) if not isinstance(m, TernaryLayerMixin)],
        "scale_grad": all(q.scale_grad for q in quantizers),
        "min_scale": quantizers[0].min_scale,
        "scale_init": request.get("scale_init", "least-squares"),
    }


def apply_quant_record(model: nn.Module, record: Mapping) -> nn.Module:
    """Ternarize a freshly built ``model`` exactly as ``record`` describes (scales not
    initialised: load the state_dict that holds them next)."""
    try:
        layers = record["layers"]
        rules = {spec["rule"] for spec in layers.values()}
        if len(rules) != 1:
            raise ConfigError("quant record mixes threshold rules, which is not supported")
        ternarize(model, threshold={n: spec["value"] for n, spec in layers.items()},
                  keep_fp=list(record.get("fp_layers", [])), rule=rules.pop(),
                  scale_grad=bool(record.get("scale_grad", True)), init_scales=False,
                  min_scale=float(record.get("min_scale", MIN_SCALE)))
    except (KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"malformed quantization record ({type(e).__name__}: {e})") from None
    model._ttq_request = {"threshold": record.get("threshold"),
                          "scale_init": record.get("scale_init", "least-squares")}
    return model


@dataclass(frozen=True)
class TernaryExport:
    """One ternary layer as deployed.

    ``weight``: float32 tensor with values in {-wn, 0, +wp} (the ternary weights, not the
    latent ones); ``codes``: int8 tensor in {-1, 0, +1} with ``weight == wp*(codes==1) -
    wn*(codes==-1)``; ``delta``: the absolute threshold used; ``rule``/``value``: how Δ
    was chosen.
    """

    weight: torch.Tensor
    codes: torch.Tensor
    wp: float
    wn: float
    delta: float
    rule: str
    value: float


@torch.no_grad()
def export_ternary(model: nn.Module) -> dict[str, TernaryExport]:
    """Per ternary layer (module order), the actual ternary weights and compact codes."""
    out = {}
    for name, layer in ternary_layers(model):
        q = layer.quantizer
        codes = layer.ternary_codes().cpu()
        wp, wn = float(q.wp), float(q.wn)
        weight = torch.zeros(codes.shape, dtype=torch.float32)
        weight[codes == 1] = wp
        weight[codes == -1] = -wn
        out[name] = TernaryExport(weight, codes, wp, wn, float(q.delta(layer.weight)),
                                  q.rule.name, q.value)
    return out


@torch.no_grad()
def layer_weight_stats(model: nn.Module) -> dict[str, dict[str, float]]:
    """Per ternary layer: fractions of +, 0, - weights, Wp, Wn and Δ (one device sync)."""
    names, rows = [], []
    for name, layer in ternary_layers(model):
        w = layer.weight.detach()
        d = layer.quantizer.delta(w)
        n = w.numel()
        pos = (w > d).sum() / n
        neg = (w < -d).sum() / n
        rows.append(torch.stack([pos, 1 - pos - neg, neg, layer.quantizer.wp.detach().float(),
                                 layer.quantizer.wn.detach().float(), d.float()]).double())
        names.append(name)
    if not rows:
        return {}
    table = torch.stack(rows).cpu().tolist()
    keys = ("frac_pos", "frac_zero", "frac_neg", "wp", "wn", "delta")
    return {n: dict(zip(keys, vals)) for n, vals in zip(names, table)}
