"""``ternarize``: swap a model's conv/linear layers for quantized ones; ``export_ternary``.

The method is one of the quantizer family (:data:`ttq_core.quantize.family.QUANTIZERS`:
``ttq``, the default, ``twn``, ``bwn``, ``int4``, ``int8``); every quantized layer is a
``TernaryConv2d``/``TernaryLinear`` whatever the method (the names are historical) with
its method's quantizer as ``.quantizer``.

Layer selection uses PyTorch module names (``layer2.0.conv1``) and shell-style globs
(``layer3.*``).  By default the first conv and the last linear layer (in module order)
stay full precision, as in TTQ.

The quantization of a model is described by a plain, JSON-able dict (its *record*), which
a checkpoint stores under ``quant`` and :func:`apply_quant_record` replays::

    {"method": "ttq",                  # quantizer family name (records without it: ttq)
     "rule": "threshold",              # threshold rule name (see ttq_core.quantize.rules)
     "threshold": 0.05,                # what the user asked for: a number or {glob: number}
     "layers": {"layer1.0.conv1": {"rule": "threshold", "value": 0.05}, ...},
     "fp_layers": ["conv1", "linear"], # conv/linear layers kept in full precision
     "scale_grad": true,               # TTQ's per-region gradient scaling on/off
     "min_scale": 0.0001,
     "scale_init": "one"}              # how Wp, Wn started: "one", "least-squares"
                                       # (records before scale_init existed: least-squares)

For the other methods the record keeps the same keys where they mean something::

    {"method": "int4", "rule": "int4", "threshold": None,
     "layers": {"layer1.0.conv1": {"rule": "int4", "value": 4}, ...},
     "fp_layers": ["conv1", "linear"],
     "min_scale": 1e-08,               # int only: lower bound of the learned steps
     "scale_init": "lsq"}              # int: "lsq" (2·mean|w_c|/sqrt(Q)); twn, bwn: "recomputed"

where each layer's ``rule`` is the method name and ``value`` the method's one per-layer
number: twn its threshold factor (0.7 in Δ = 0.7·mean|w|), bwn and intN their bits per
weight (1, N).  ``scale_grad`` (TTQ's gradient multipliers) appears for ttq only.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .family import get_quantizer
from .grouped import enable_grouped
from .layers import MIN_SCALE, SCALE_INITS, TERNARY_LAYER_TYPES, TernaryLayerMixin, TernaryQuantizer
from .rules import get_rule
from .twn import DELTA_FACTOR as TWN_DELTA_FACTOR

FIRST_LAST = "first-last"


def _quantizable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules()
            if type(m) in TERNARY_LAYER_TYPES or isinstance(m, TernaryLayerMixin)]


def ternary_layers(model: nn.Module) -> Iterator[tuple[str, TernaryLayerMixin]]:
    """(name, layer) for every quantized layer of ``model`` (any method of the family:
    the name is historical), in module order."""
    for name, m in model.named_modules():
        if isinstance(m, TernaryLayerMixin):
            yield name, m


def quantized_layers(model: nn.Module) -> Iterator[tuple[str, TernaryLayerMixin]]:
    """(name, layer) for every quantized layer of ``model``, any method, in module order
    (the same as :func:`ternary_layers`, under the name that says so)."""
    return ternary_layers(model)


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
              min_scale: float | None = None, grouped: bool = True,
              scale_init: str = "least-squares", method: str = "ttq") -> nn.Module:
    """Swap ``model``'s conv/linear layers in place for quantized ones; return ``model``.

    Args:
        method: the quantizer family member (:data:`~ttq_core.quantize.family.QUANTIZERS`):
            ``"ttq"`` (default), ``"twn"``, ``"bwn"``, ``"int4"``, ``"int8"``.  The
            options ``threshold``, ``rule``, ``scale_grad`` and ``scale_init`` are TTQ's;
            given another value than their default with another method they are refused.
        threshold: the rule's value, one number for all layers or a mapping from layer
            name or glob to number (see :func:`_resolve_values`).  For ``rule="threshold"``
            it is the factor t in Δ = t·max|w|; for ``rule="sparsity"`` the target fraction
            of zero weights r.
        keep_fp: names or globs of conv/linear layers to keep in full precision; ``None``
            keeps the first conv and the last linear layer; ``[]`` quantizes all (the
            same for every method).
        rule: threshold rule name, ``"threshold"`` or ``"sparsity"``.
        scale_grad: TTQ's per-region scaling of the latent gradient (False: plain STE).
        init_scales: set the learned scales from the starting weights (TTQ: as
            ``scale_init`` says; int4/int8: LSQ's 2·mean|w_c|/sqrt(Q)).  Pass False when a
            state_dict with trained scales will be loaded next.
        min_scale: lower bound kept on the learned scales (None: the method's default,
            TTQ 1e-4, LSQ steps 1e-8).
        scale_init: ``"least-squares"`` (this function's default: the ternary model closest
            to the float one, right for untrained what-if estimates) or ``"one"``
            (Wp = Wn = 1, the authors' choice and ``ttq-train``'s default for training;
            re-estimate batch-norm statistics afterwards).  See ``quantize.layers``.
        grouped: TTQ: ternarize all threshold-rule layers in one autograd call per model
            forward (same numbers, far fewer operations; see quantize.grouped).  False
            keeps the per-layer reference path.  Other methods always run per layer.
    """
    spec = get_quantizer(method)
    if spec.name != "ttq":
        if any(True for _ in ternary_layers(model)):
            raise ConfigError("model is already quantized")
        _refuse_ttq_options(spec.name, threshold, rule, scale_grad, scale_init)
        return _quantize_other(model, spec, keep_fp, init_scales, min_scale)
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
    min_scale = MIN_SCALE if min_scale is None else min_scale
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


def _refuse_ttq_options(method: str, threshold, rule, scale_grad, scale_init) -> None:
    given = [name for name, differs in (
        ("threshold", isinstance(threshold, Mapping) or threshold != 0.05),
        ("rule", rule != "threshold"), ("scale_grad", not scale_grad),
        ("scale_init", scale_init != "least-squares")) if differs]
    if given:
        raise ConfigError(f"{', '.join(given)}: TTQ options, which {method} does not take "
                          f"(it sets its own threshold and scales); drop them or use "
                          f"method='ttq'")


def _quantize_other(model: nn.Module, spec, keep_fp, init_scales: bool,
                    min_scale: float | None) -> nn.Module:
    """:func:`ternarize` for a method other than ttq (no threshold rules, per-layer path)."""
    fp = set(_resolve_fp(model, keep_fp))
    targets = [(n, m) for n, m in _quantizable(model) if n not in fp]
    if not targets:
        raise ConfigError("no conv/linear layer left to quantize (all are kept in FP)")
    options = {} if min_scale is None or not spec.learned else {"min_scale": min_scale}
    for name, float_layer in targets:
        q = spec.factory(float_layer.weight, **options)
        q.to(float_layer.weight.device)
        new = TERNARY_LAYER_TYPES[type(float_layer)].from_float(float_layer, q)
        if init_scales:
            q.init_from_(new.weight)
        _swap(model, name, new)
    scale_init = ("recomputed" if not spec.learned else "lsq" if init_scales else "loaded")
    model._ttq_request = {"threshold": None, "scale_init": scale_init}
    return model


def _plain(threshold):
    return dict(threshold) if isinstance(threshold, Mapping) else float(threshold)


def _record_value(q) -> float:
    """A non-TTQ layer's ``value`` in the record (module doc)."""
    return TWN_DELTA_FACTOR if q.method == "twn" else q.spec.bits


def quant_record(model: nn.Module) -> dict | None:
    """The JSON-able record describing how ``model`` is quantized (None if it is not)."""
    layers = list(ternary_layers(model))
    if not layers:
        return None
    quantizers = [m.quantizer for _, m in layers]
    methods = list(dict.fromkeys(q.method for q in quantizers))
    if len(methods) != 1:
        raise ConfigError(f"model mixes quantizers ({', '.join(methods)}), which a record "
                          f"cannot describe")
    request = getattr(model, "_ttq_request", {})
    fp_layers = [n for n, m in _quantizable(model) if not isinstance(m, TernaryLayerMixin)]
    if methods[0] != "ttq":
        method = methods[0]
        record = {"method": method, "rule": method, "threshold": None,
                  "layers": {n: {"rule": method, "value": _record_value(m.quantizer)}
                             for n, m in layers},
                  "fp_layers": fp_layers}
        if quantizers[0].spec.learned:
            record["min_scale"] = quantizers[0].min_scale
        record["scale_init"] = ("recomputed" if not quantizers[0].spec.learned
                                else request.get("scale_init", "loaded"))
        return record
    rules = sorted({q.rule.name for q in quantizers})
    return {
        "method": "ttq",
        "rule": rules[0] if len(rules) == 1 else "mixed",
        "threshold": request.get("threshold"),
        "layers": {n: {"rule": m.quantizer.rule.name, "value": m.quantizer.value}
                   for n, m in layers},
        "fp_layers": fp_layers,
        "scale_grad": all(q.scale_grad for q in quantizers),
        "min_scale": quantizers[0].min_scale,
        "scale_init": request.get("scale_init", "least-squares"),
    }


def record_method(record: Mapping | None) -> str | None:
    """The quantizer method a quant record describes: its ``method``, ``"ttq"`` for a
    record written before methods existed, None for no record (an FP model)."""
    if not record:
        return None
    return record.get("method") or "ttq"


def apply_quant_record(model: nn.Module, record: Mapping) -> nn.Module:
    """Quantize a freshly built ``model`` exactly as ``record`` describes (learned scales
    not initialised: load the state_dict that holds them next)."""
    method = record_method(record) if isinstance(record, Mapping) else None
    if not isinstance(method, str):
        raise ConfigError(f"malformed quantization record (method {method!r} is not a name)")
    spec = get_quantizer(method)
    if spec.name != "ttq":
        return _apply_other(model, record, spec)
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


def _apply_other(model: nn.Module, record: Mapping, spec) -> nn.Module:
    try:
        wanted = list(record["layers"])
        min_scale = record.get("min_scale")
        ternarize(model, keep_fp=list(record.get("fp_layers", [])), init_scales=False,
                  min_scale=None if min_scale is None else float(min_scale), method=spec.name)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ConfigError(f"malformed quantization record ({type(e).__name__}: {e})") from None
    got = [n for n, _ in ternary_layers(model)]
    if got != wanted:
        raise ConfigError(f"quantization record lists layers {', '.join(wanted)} but its "
                          f"fp_layers leave {', '.join(got)} to quantize")
    model._ttq_request = {"threshold": None, "scale_init": record.get("scale_init", "loaded")}
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
    """Per ternary layer (module order), the actual ternary weights and compact codes.

    ttq: ``wp``, ``wn`` the trained scales; twn: ``wp = wn = α``, ``rule = "twn"``,
    ``value`` 0.7 (Δ = 0.7·mean|w|).  A model quantized with a binary or integer method
    raises :class:`~ttq_core.quantize.base.NotTernaryError`."""
    out = {}
    for name, layer in ternary_layers(model):
        q = layer.quantizer
        if not q.spec.is_ternary:
            raise q.not_ternary("export_ternary()")
        codes = layer.ternary_codes().cpu()
        if q.method == "twn":
            wp = wn = float(q.alpha(layer.weight))
            rule, value = "twn", TWN_DELTA_FACTOR
        else:
            wp, wn = float(q.wp), float(q.wn)
            rule, value = q.rule.name, q.value
        weight = torch.zeros(codes.shape, dtype=torch.float32)
        weight[codes == 1] = wp
        weight[codes == -1] = -wn
        out[name] = TernaryExport(weight, codes, wp, wn, float(q.delta(layer.weight)),
                                  rule, value)
    return out


@torch.no_grad()
def layer_weight_stats(model: nn.Module) -> dict[str, dict[str, float]]:
    """Per quantized layer: fractions of +, 0, - weights, the scales ``wp``/``wn`` and the
    zero threshold ``delta`` (one device sync).  ttq: Wp, Wn, Δ.  Other methods, measured
    on the quantized weights: twn α for both scales and Δ = 0.7·mean|w|; bwn the mean of
    α_c over output channels for both and Δ = 0 (no zero region); int4/int8 the mean
    step s_c for both (the grid spacing, not a weight level) and half of it (the mean |w|
    below which a weight rounds to 0)."""
    names, rows = [], []
    for name, layer in ternary_layers(model):
        rows.append(layer.quantizer.history_stats(layer.weight.detach()))
        names.append(name)
    if not rows:
        return {}
    table = torch.stack(rows).cpu().tolist()
    keys = ("frac_pos", "frac_zero", "frac_neg", "wp", "wn", "delta")
    return {n: dict(zip(keys, vals)) for n, vals in zip(names, table)}
