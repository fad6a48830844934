"""``analyze``: one object holding every number a report or paper table needs.

All counts and energies are **per inference of one input** (measured ones averaged over
the images seen), as in the TTQ paper's tables.  :class:`Analysis` holds

``layers``   a DataFrame, one row per conv/linear layer in module order (columns below);
``network``  a :class:`ttq_analysis.results.NetworkResult`: totals and averages with
             named fields (counts, sizes, sparsity, energy per scenario in µJ, accuracy);
``meta``     what was analysed and how: architecture, checkpoint facts (accuracy,
             quantization, history), input shape, data, cost model (every number with its
             source), memory level, counting conventions, fvcore's other and unsupported
             operators;
``histograms`` per-image activation-sparsity distributions (fixed bins on [0, 1]).

``to_json()``/``Analysis.from_json()`` round-trip exactly (missing values are JSON
``null``), so reports never rerun a model.

Per-layer columns: ``layer``, ``kind`` (conv/linear), ``ternary`` (weight format ternary),
``weight_format`` (fp, binary, ternary, int4, int8: :mod:`ttq_analysis.weight_formats`),
``params`` (weights + biases), ``macs`` (dense, fvcore), ``output_positions`` (outputs per
filter per image), ``weight_sparsity`` (fraction of zero weights, of the quantized weights
in a quantized layer), ``frac_pos``, ``frac_neg``, ``wp``, ``wn`` (ternary layers),
``weight_bits`` (storage in this network, per weight format: 2 per ternary weight + 64 for
Wp/Wn, 32 for a symmetric layer's one α; 1 per binary or n per int-n weight + 32 per output channel; + 32 per bias; 32 per
FP parameter), ``fp_weight_bits`` (32 per parameter), ``act_sparsity``
(mean over images of the fraction of zeros in the layer's input), ``act_sparsity_std``,
``act_sparsity_p05`` … ``_p95``, ``ternary_adds``/``ternary_mults`` (additions and scale
multiplications of an add-only layer, ternary or binary, dense activations),
``effective_adds``/``effective_mults`` (measured), ``effective_macs`` (MACs with a
nonzero input), ``in_elements``/``out_elements`` (activations read/written per image),
``out_act_sparsity`` (fraction of zeros of the layer's output before batch norm or ReLU,
over all images), and ``{scenario}_{compute,memory,act_memory,total}_pJ`` for the four scenarios of
:mod:`ttq_analysis.energy` (``ttq_*``: the quantized network, any weight format).
Not-applicable values are NaN (ternary columns of FP and integer layers, measured columns
without data).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from ttq_core import distributed
from ttq_core.checkpoint import load_model
from ttq_core.data.device import batch_block
from ttq_core.devices import resolve_device
from ttq_core.errors import ConfigError
from ttq_core.models import list_models, model_spec
from ttq_core.quantize import TernaryLayerMixin

from .activations import ActivationProbe, RunResult, gather_over_ranks, run_batches
from .energy import (DEFAULT_ENERGY_MODEL, SCENARIOS, EnergyModel, check_energy_options,
                     derived_ops, energy_columns, load_energy_model, scenario_totals)
from .macs import LAYER_TYPES, count_dense_macs
from .precision import full_float32
from .ternary_detect import DEFAULT_TOLERANCE, check_tolerance
from .results import (PJ_PER_UJ, Accuracy, EnergyTotals, NetworkResult, OpCounts, Sizes,
                      Sparsity)
from .ternary_ops import PARTIAL_SUMS, dense_ternary_ops
from .weight_formats import (ADD_ONLY_FORMATS, LayerFormat, detect_formats, format_of_layers,
                             formats_meta, ternary_detection_meta)

FORMAT = "ttq-analysis"
FORMAT_VERSION = 1
PERCENTILES = (5, 25, 50, 75, 95)
HIST_BINS = 50
DEFAULT_BATCH = 256

CONVENTIONS = {
    "per_inference": "All counts and energies are per inference of one input; measured "
                     "values are averaged over the images seen.",
    "macs": "Dense MACs of conv and linear operators from fvcore, which counts one "
            "multiply-add as one flop (torch.utils.flop_counter counts 2).",
    "ternary_ops": "Output = Wp·Σ(inputs under +) − Wn·Σ(inputs under −): per output with n "
                   "nonzero terms, additions = max(n−1, 0), multiplications = number of "
                   "signs present (0–2). Dense: every input (padding too) nonzero. "
                   "Measured: n = exact nonzero weight × nonzero input pairs on real inputs; "
                   "partial_sums 'window' (default): an output whose receptive field holds a "
                   "nonzero input costs n−1 additions and one multiplication per sign of its "
                   "filter, other outputs nothing (differs from the per-output count only "
                   "where such an output's sum or one sign's partial sum is empty); 'exact': "
                   "per output, max(n−1, 0) and one per non-empty partial sum.",
    "effective_macs": "MACs whose input is nonzero (zero inputs, padding included, skipped), "
                      "weights treated as dense.",
    "act_sparsity": "Fraction of exact zeros in a layer's input, per image, averaged.",
    "weight_bits": "Ternary: 2 bits per weight + 2×32 for Wp, Wn (32 for a symmetric layer's one α) + 32 per bias; FP: 32 per "
                   "parameter. Each weight is read once per inference. Batch-norm "
                   "parameters (folded into the layers at inference) are not counted.",
    "energy": "A MAC = one multiplication at the activation precision + one accumulator "
              "addition (fp32, fp16: the same precision; int8: int32). Ternary layers: "
              "accumulator additions and activation-precision Wp/Wn multiplications. The "
              "baseline keeps its weights at the activation precision. Activation memory, "
              "when counted: each conv/linear layer reads its input and writes its output "
              "(as produced, before batch norm or ReLU) once; dense scenarios store every "
              "element, measured ones a 1-bit zero map plus the nonzero values.",
}

FORMAT_CONVENTIONS = {
    "weight_formats": "Each layer's weight format (meta['weight_formats']): a toolkit layer's "
                      "from its quantizer's method, a plain layer's from its values per output "
                      "channel. Binary (±α_c): additions as for ternary, max(n−1, 0) per output, "
                      "and one α_c multiplication per computed output; 1 bit per weight + 32 "
                      "per output channel. Int4/int8 (s_c·k): MACs (dense: macs, measured: "
                      "effective_macs), the step s_c applied with the requantization and not "
                      "counted; n bits per weight + 32 per output channel. The ttq_* scenarios "
                      "and TTQ columns are the quantized network in every format.",
    "int_energy": "An int4/int8 layer's MAC: with fp32/fp16 activations a multiplication and "
                  "addition at that precision (integer weights convert exactly, saving memory "
                  "only); with int8 activations int8_mult (int8 weights) or int4xint8_mult "
                  "(int4 weights, DERIVED: int8_mult × (4·8)/(8·8), an array multiplier's "
                  "energy grows with the product of its operand widths; flagged in "
                  "meta['derived_energies']) + int32_add.",
}
"""Conventions added to ``meta["conventions"]`` when a layer is binary or int4/int8 (a
ternary analysis keeps exactly :data:`CONVENTIONS`)."""

SYMMETRIC_CONVENTIONS = {
    "symmetric_ternary": "A ternary layer with one scale α for both signs (a twn layer; a "
                         "plain layer whose |Wp − Wn| is within the ternary tolerance) "
                         "computes α·(Σ(inputs under +) − Σ(inputs under −)): additions as "
                         "above and one multiplication per computed output, not one per "
                         "sign (meta['weight_formats'] says which layers).",
}
"""Added to ``meta["conventions"]`` when a ternary layer is symmetric (a TTQ analysis,
Wp ≠ Wn, keeps exactly :data:`CONVENTIONS`)."""


@dataclass
class Analysis:
    layers: pd.DataFrame
    network: NetworkResult
    meta: dict[str, Any] = field(default_factory=dict)
    histograms: dict[str, Any] = field(default_factory=dict)

    # ----- JSON
    def to_dict(self) -> dict[str, Any]:
        cols = list(self.layers.columns)
        data = [[_json_value(v) for v in row] for row in self.layers.itertuples(index=False)]
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": self.meta,
                "network": {k: _json_value(v) for k, v in self.network.to_flat_dict().items()},
                "histograms": self.histograms,
                "layers": {"columns": cols,
                           "dtypes": {c: str(self.layers[c].dtype) for c in cols},
                           "data": data}}

    def to_json(self, path: str | os.PathLike | None = None, indent: int | None = 1) -> str:
        """The analysis as strict JSON (NaN written as null); also written to ``path``."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            from ttq_core.io import atomic_write_text
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> "Analysis":
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            try:
                text = Path(text_or_path).read_text()
            except OSError as e:
                raise ConfigError(f"cannot read analysis JSON {text_or_path}: {e.strerror}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"analysis JSON is malformed: {e}") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ConfigError("not a ttq analysis JSON (no \"format\": \"ttq-analysis\")")
        if d.get("format_version", 0) > FORMAT_VERSION:
            raise ConfigError(f"analysis JSON format_version {d['format_version']} is newer than "
                              f"this toolkit reads ({FORMAT_VERSION})")
        spec = d["layers"]
        df = pd.DataFrame(spec["data"], columns=spec["columns"])
        for col, dtype in spec["dtypes"].items():
            if dtype == "float64":
                df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
            else:  # int64, bool, str (pandas' string dtype) or object
                df[col] = df[col].astype(dtype)
        return cls(df, NetworkResult.from_flat_dict(d["network"]), d.get("meta", {}),
                   d.get("histograms", {}))


def _json_value(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return None if math.isnan(v) else v
    if isinstance(v, np.bool_):
        return bool(v)
    return v


# ----- inputs
CHECKPOINT_FACTS = ("dataset", "normalization", "quant", "metrics", "history", "train_config",
                    "data_source", "device", "software", "distributed", "bn_refresh")


def checkpoint_info(loaded, source) -> dict[str, Any]:
    """What a loaded checkpoint says about itself (for ``Analysis.meta["checkpoint"]``)."""
    info: dict[str, Any] = {"source": str(source), "source_format": loaded.source_format}
    for key in CHECKPOINT_FACTS:
        if loaded.checkpoint and key in loaded.checkpoint:
            info[key] = loaded.checkpoint[key]
    if getattr(loaded, "notes", None):  # repairs made while loading (ttq_core.legacy_state_dict)
        info["load_notes"] = list(loaded.notes)
    return info


def _resolve_model(obj, arch: str | None) -> tuple[nn.Module, str | None, dict]:
    if isinstance(obj, nn.Module):
        return obj, getattr(obj, "arch_name", arch), {"source": "module"}
    if isinstance(obj, (str, os.PathLike)):
        loaded = load_model(obj, arch=arch)
        return loaded.model, loaded.arch, checkpoint_info(loaded, obj)
    raise ConfigError(f"analyze() takes an nn.Module or a checkpoint path, got {type(obj).__name__}")


def _input_batches(data, batches: int | None,
                   shard: tuple[int, int] = (0, 1)) -> tuple[Iterator[tuple], int | None]:
    """(inputs, targets or None) pairs from any supported ``data``, and their count.

    ``shard=(rank, world)``: only this rank's contiguous block of the batches a single
    process would use (``batch_block``), the very same tensors."""
    skip, limit = 0, batches  # yield items skip <= i < limit of ``chunks``
    if isinstance(data, torch.Tensor):
        chunks: Iterable = data.split(DEFAULT_BATCH)
        total = math.ceil(data.shape[0] / DEFAULT_BATCH)
    elif hasattr(data, "batches") and callable(data.batches):  # DeviceData, LoaderData
        chunks = data.batches(DEFAULT_BATCH)
        total = data.num_batches(DEFAULT_BATCH)
    else:
        chunks = data
        total = len(data) if hasattr(data, "__len__") else None
    if batches is not None:
        total = min(total, batches) if total is not None else batches
    if shard[1] > 1:
        if total is None:
            raise ConfigError("data without len() cannot be split over ranks; pass a tensor, "
                              "a DeviceData, or a DataLoader over a sized dataset")
        lo, hi = batch_block(total, shard)
        if isinstance(data, torch.Tensor):
            chunks, limit = data.split(DEFAULT_BATCH)[lo:hi], None
        elif hasattr(data, "batches") and callable(data.batches):
            chunks, limit = data.batches(DEFAULT_BATCH, batch_range=(lo, hi)), None
        else:
            skip, limit = lo, hi  # a plain iterable: step over the other ranks' batches
        total = hi - lo

    def gen():
        for i, item in enumerate(chunks):
            if limit is not None and i >= limit:
                break
            if i < skip:
                continue
            x, y = (item[0], item[1] if len(item) > 1 else None) \
                if isinstance(item, (tuple, list)) else (item, None)
            if not isinstance(x, torch.Tensor):
                raise ConfigError(f"data must yield tensors or (inputs, targets) pairs, got "
                                  f"{type(x).__name__}")
            yield x, (y if isinstance(y, torch.Tensor) else None)
    return gen(), total


@dataclass(frozen=True)
class _LayerShape:
    """Per image: outputs per filter (conv: H_out·W_out; linear: rows), input elements
    read and output elements written by the layer."""

    positions: int
    in_elements: int
    out_elements: int


@torch.no_grad()
def _layer_shapes(model: nn.Module, layers: dict[str, nn.Module], input_shape,
                  device) -> dict[str, _LayerShape]:
    """One forward pass of a zero image: the :class:`_LayerShape` of every layer."""
    out: dict[str, _LayerShape] = {}
    handles = []
    try:
        for name, m in layers.items():
            def hook(module, args, y, name=name):
                per_filter = y.shape[1] if isinstance(module, nn.Conv2d) else y.shape[-1]
                out[name] = _LayerShape(int(y[0].numel() // per_filter), int(args[0][0].numel()),
                                        int(y[0].numel()))
            handles.append(m.register_forward_hook(hook))
        was_training = model.training
        model.eval()
        model(torch.zeros((1, *input_shape), device=device))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return out


def _percentile_cols(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"act_sparsity": math.nan, "act_sparsity_std": math.nan,
                **{f"act_sparsity_p{p:02d}": math.nan for p in PERCENTILES}}
    pct = np.percentile(values, PERCENTILES)
    return {"act_sparsity": float(values.mean()), "act_sparsity_std": float(values.std()),
            **{f"act_sparsity_p{p:02d}": float(v) for p, v in zip(PERCENTILES, pct)}}


@full_float32()
def analyze(model_or_checkpoint, data=None, input_shape: tuple[int, ...] | None = None,
            energy_model: str | os.PathLike | EnergyModel = DEFAULT_ENERGY_MODEL,
            batches: int | None = None, device: str | torch.device | None = None, *,
            memory: str = "sram", precision: str = "fp32", act_memory: str = "none",
            arch: str | None = None,
            count_ops: bool = True, partial_sums: str = "window", progress: bool = True,
            split_over_ranks: bool | None = None,
            ternary_tolerance: float = DEFAULT_TOLERANCE) -> Analysis:
    """Measure a model: dense MACs, ternary operations, weight and activation sparsity, energy.

    Args:
        model_or_checkpoint: an ``nn.Module`` (FP or ternarized) or a checkpoint path
            (toolkit format, or a plain state_dict with ``arch``).
        data: inputs to measure activations on, already normalised as the model expects:
            a DataLoader (or any iterable) yielding ``(inputs, targets)`` or inputs, a tensor
            of inputs, or a :class:`ttq_core.data.DeviceData`.  ``None``: everything that
            needs no data (measured columns NaN).
        input_shape: (C, H, W) of one input; default from the architecture registry.
        energy_model: a shipped cost model name, a JSON/TOML path, or an EnergyModel.
        batches: use at most this many batches of ``data``.
        device: where to run (default: CUDA if available, else CPU).
        memory: level weights are read from, ``"sram"`` or ``"dram"``.
        precision: activation precision, ``"fp32"`` (default), ``"fp16"`` or ``"int8"``
            (:data:`ttq_analysis.energy.ACTIVATION_PRECISIONS`: the arithmetic, and the
            baseline's weight and every activation's storage width).
        act_memory: where activations are read and written, ``"none"`` (not counted,
            default), ``"sram"`` or ``"dram"``.
        count_ops: stream measured operation counts (exact Σ n and effective MACs).
        partial_sums: which outputs the measured additions and multiplications treat as
            computed: ``"window"`` (default; an output whose receptive field holds a nonzero
            input, a linear-time count) or ``"exact"`` (per output and sign, one extra
            indicator convolution per layer, about doubling the cost); see
            :mod:`ttq_analysis.ternary_ops`.  Recorded in ``meta["partial_sums"]``.
        split_over_ranks: under torchrun (a process group of several ranks is
            initialised, e.g. by ``ttq_core.distributed.session()``), each rank measures a
            contiguous block of the batches and the per-image values and integer counters
            are gathered, so every rank returns the Analysis a single process computes on
            all the data (every rank must call it, with the whole ``data``).  ``None``
            (default): split whenever such a group is active; ``False``: never.
        ternary_tolerance: the relative tolerance of weight-format recognition in plain
            layers (:mod:`ttq_analysis.weight_formats`): one magnitude per output channel
            counts as binary, at most three values {−a, 0, +b} per layer (values closer
            than this fraction of max|w| merged) as ternary
            (:mod:`ttq_analysis.ternary_detect`), at most 16/256 values per channel on a
            uniform grid as int4/int8; verdicts per layer in ``meta["weight_formats"]``
            (and the ternary rule's in ``meta["ternary_detection"]``).

    Any ``nn.Module`` works (give ``input_shape`` outside the registry): its
    ``nn.Conv2d`` (any groups, kernel, stride) and ``nn.Linear`` (inputs of any rank)
    layers are the rows; other operators fvcore counts are in ``meta["other_ops"]`` and
    those it cannot count in ``meta["unsupported_ops"]``.

    Runs in full float32 (TF32 off for CUDA matrix products and cuDNN, the caller's
    settings restored afterwards: :func:`ttq_analysis.precision.full_float32`), so a CPU and
    a CUDA analysis count the same zeros.
    """
    if partial_sums not in PARTIAL_SUMS:
        raise ConfigError(f"partial_sums must be one of {', '.join(PARTIAL_SUMS)}, "
                          f"got {partial_sums!r}")
    model, arch_name, info = _resolve_model(model_or_checkpoint, arch)
    em = load_energy_model(energy_model)
    check_energy_options(em, memory, precision, act_memory)  # before any model work
    if input_shape is None:
        if arch_name is None or arch_name not in list_models():
            raise ConfigError("input_shape is required for a model outside the registry")
        input_shape = tuple(model_spec(arch_name).input_size)
    input_shape = tuple(int(s) for s in input_shape)
    device = resolve_device(device)
    model.to(device).eval()

    layers = {n: m for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)}
    if not layers:
        raise ConfigError("the model has no conv or linear layer to analyse")
    tolerance = check_tolerance(ternary_tolerance)
    formats = detect_formats(layers, tolerance)
    dense = count_dense_macs(model, input_shape, device)
    shapes = _layer_shapes(model, layers, input_shape, device)
    records, run = _measure(model, layers, formats, data, batches, device, count_ops, progress,
                            split_over_ranks, partial_sums)

    rows = [_layer_row(name, m, formats[name], dense.layer_macs[name], shapes[name],
                       records[name] if records is not None else None)
            for name, m in layers.items()]
    df = pd.DataFrame(rows)
    energy = energy_columns(df, em, memory=memory, precision=precision, act_memory=act_memory)
    df = pd.concat([df, energy], axis=1)
    network = _network(df, energy, arch_name, info, run.images,
                       _params_without_scales(model, layers), run.accuracy)
    meta = {
        "arch": arch_name, "input_shape": list(input_shape), "device": str(device),
        "images": run.images, "batches_limit": batches,
        "count_ops": bool(count_ops and data is not None),
        "partial_sums": partial_sums if count_ops and data is not None else None,
        "energy_model": em.raw, "memory": memory, "precision": precision,
        "act_memory": act_memory,
        "other_ops": dense.other_ops, "unsupported_ops": dense.unsupported_ops,
        "conventions": CONVENTIONS, "checkpoint": info,
        "ternary_detection": ternary_detection_meta(formats, tolerance),
        "torch": str(torch.__version__),
        "weight_formats": formats_meta(formats, tolerance),
    }
    present = {v.format for v in formats.values()}
    if present - {"fp", "ternary"}:  # a ternary analysis keeps its conventions unchanged
        meta["conventions"] = {**CONVENTIONS, **FORMAT_CONVENTIONS}
    if any(v.format == "ternary" and v.scale_mults == "per_output" for v in formats.values()):
        meta["conventions"] = {**meta["conventions"], **SYMMETRIC_CONVENTIONS}
    derived = derived_ops(em, present)
    if derived:  # flagged: numbers no cost model lists (energy.DERIVED_OPS)
        meta["derived_energies"] = {n: {**d, "used": n in derived_ops(em, present, [precision])}
                                    for n, d in derived.items()}
    per_image = {name: (records[name].per_image_sparsity() if records is not None else np.zeros(0))
                 for name in layers}
    return Analysis(df, network, meta, _histograms(per_image))


def _measure(model, layers, formats: dict[str, LayerFormat], data, batches, device,
             count_ops: bool, progress: bool, split_over_ranks: bool | None,
             partial_sums: str = "window") -> tuple[dict | None, RunResult]:
    """Run ``data`` through ``model`` with the activation probe: the per-layer records
    (None without data) and the images/accuracy seen, gathered over ranks when split."""
    if data is None:
        return None, RunResult()
    split = distributed.active() if split_over_ranks is None else (
        split_over_ranks and distributed.active())
    shard = (distributed.rank(), distributed.world_size()) if split else (0, 1)
    inputs, total = _input_batches(data, batches, shard)
    probed = {n: (m, formats[n].codes, formats[n].scale_mults or "per_sign")
              for n, m in layers.items()}
    with ActivationProbe(probed, count_ops, partial_sums) as probe:
        run = run_batches(model, inputs, device, total, progress and shard[0] == 0)
    if split:
        run = gather_over_ranks(probe.records, run)
    if run.images == 0:
        raise ConfigError("data yielded no inputs")
    return probe.records, run


def _layer_row(name: str, m: nn.Module, fmt: LayerFormat, macs: float,
               shape: _LayerShape, record) -> dict[str, Any]:
    """One row of ``Analysis.layers`` (the columns of the module doc) before energy."""
    positions = shape.positions
    n_weight = m.weight.numel()
    n_bias = m.bias.numel() if m.bias is not None else 0
    params = n_weight + n_bias
    c = fmt.codes
    spec = fmt.spec
    row: dict[str, Any] = {"layer": name, "kind": "conv" if isinstance(m, nn.Conv2d) else "linear",
                           "ternary": fmt.format == "ternary", "weight_format": fmt.format,
                           "params": params, "macs": float(macs), "output_positions": positions}
    bits = spec.weight_bits(n_weight, int(m.weight.shape[0]), n_bias,
                            one_scale=fmt.format == "ternary" and fmt.scale_mults == "per_output")
    if fmt.format == "ternary":
        adds, mults = dense_ternary_ops(m, c, positions, scale_mults=fmt.scale_mults)
        row.update(weight_sparsity=float((c == 0).sum()) / n_weight,
                   frac_pos=float((c == 1).sum()) / n_weight,
                   frac_neg=float((c == -1).sum()) / n_weight,
                   wp=fmt.wp, wn=fmt.wn, weight_bits=bits,
                   ternary_adds=float(adds), ternary_mults=float(mults))
    else:
        counted = (dense_ternary_ops(m, c, positions, scale_mults=fmt.scale_mults)
                   if spec.add_only else (math.nan, math.nan))
        row.update(weight_sparsity=float((fmt.weight == 0).sum()) / n_weight,
                   frac_pos=math.nan, frac_neg=math.nan, wp=math.nan, wn=math.nan,
                   weight_bits=bits, ternary_adds=float(counted[0]),
                   ternary_mults=float(counted[1]))
    row["fp_weight_bits"] = float(32 * params)
    row.update(_percentile_cols(record.per_image_sparsity() if record is not None else np.zeros(0)))
    row.update(in_elements=float(shape.in_elements), out_elements=float(shape.out_elements),
               out_act_sparsity=record.out_sparsity() if record is not None else math.nan)
    ops = record.ops if record is not None else None
    if ops is not None and ops.images:
        per = ops.per_image()
        row["effective_macs"] = float(per["effective_macs"])
        row["effective_adds"] = math.nan if not spec.add_only else float(per["effective_adds"])
        row["effective_mults"] = math.nan if not spec.add_only else float(per["effective_mults"])
    else:
        row.update(effective_macs=math.nan, effective_adds=math.nan, effective_mults=math.nan)
    return row


def _params_without_scales(model: nn.Module, layers: dict[str, nn.Module]) -> int:
    """All parameters of ``model`` but the toolkit quantizers' (Wp/Wn, integer steps:
    whatever lives under ``<layer>.quantizer.``; batch norm included)."""
    scale_ids = {id(p) for m in layers.values() if isinstance(m, TernaryLayerMixin)
                 for p in m.quantizer.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in scale_ids)


def _histograms(per_image: dict[str, np.ndarray]) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    layers = {n: np.histogram(v, bins=edges)[0].tolist() for n, v in per_image.items() if v.size}
    if not layers:
        return {}
    stacked = np.stack([v for v in per_image.values() if v.size])
    network_mean = stacked.mean(axis=0)  # per image, unweighted over layers
    return {"bin_edges": edges.tolist(), "layers": layers,
            "network_mean": np.histogram(network_mean, bins=edges)[0].tolist()}


def _sum(series: pd.Series) -> float | None:
    if series.empty or series.isna().any():
        return None
    return float(series.sum())


def _network(df: pd.DataFrame, energy: pd.DataFrame, arch, info, images,
             model_params: int, measured_acc: float | None) -> NetworkResult:
    tern = df[df["ternary"]]
    fp = df[df["weight_format"] == "fp"]
    quant = df[df["weight_format"] != "fp"]           # every non-FP format
    add_only = df[df["weight_format"].isin(ADD_ONLY_FORMATS)]  # ternary and binary
    is_ternary = not tern.empty
    adds = not add_only.empty
    counts = OpCounts(
        macs=float(df["macs"].sum()), fp_layer_macs=float(fp["macs"].sum()),
        ternary_adds=_sum(add_only["ternary_adds"]) if adds else None,
        ternary_mults=_sum(add_only["ternary_mults"]) if adds else None,
        effective_adds=_sum(add_only["effective_adds"]) if adds and images else None,
        effective_mults=_sum(add_only["effective_mults"]) if adds and images else None,
        effective_macs=_sum(df["effective_macs"]) if images else None)
    sizes = Sizes(params=int(model_params), conv_linear_params=int(df["params"].sum()),
                  weight_bits=float(df["weight_bits"].sum()),
                  fp_weight_bits=float(df["fp_weight_bits"].sum()))
    weight_sparsity = (float((quant["weight_sparsity"] * quant["params"]).sum()
                             / quant["params"].sum()) if not quant.empty else None)
    if images:
        sparsity = Sparsity(weight_sparsity, float(df["act_sparsity"].mean()),
                            float((df["act_sparsity"] * df["macs"]).sum() / df["macs"].sum()))
    else:
        sparsity = Sparsity(weight_sparsity)
    metrics = info.get("metrics") or {}
    return NetworkResult(
        arch=arch, ternary=is_ternary, layers=int(len(df)), ternary_layers=int(len(tern)),
        images=int(images), counts=counts, sizes=sizes, sparsity=sparsity,
        energy=EnergyTotals.from_pJ(scenario_totals(energy)),
        accuracy=Accuracy(test_acc=metrics.get("test_acc"), measured_acc=measured_acc),
        quantized_layers=int(len(quant)), weight_format=format_of_layers(df["weight_format"]))


__all__ = ["Analysis", "analyze", "checkpoint_info", "SCENARIOS", "CONVENTIONS", "NetworkResult",
           "PJ_PER_UJ"]
