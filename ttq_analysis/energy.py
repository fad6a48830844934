"""Energy per inference under a stated cost model (a data file with a citation per number).

A cost model is a JSON or TOML file, chosen by name (a file shipped in
``ttq_analysis/energy_models``, e.g. ``"horowitz45"``) or by path::

    {
      "name": "horowitz45",
      "description": "45 nm CMOS, 0.9 V ...",
      "ops":    {"fp32_add": {"pJ": 0.9, "source": "Horowitz, ISSCC 2014, ..."}, ...},
      "memory": {"sram": {"pJ_per_32bit": 5.0, "source": "..."},
                 "dram": {"pJ_per_32bit": 640.0, "source": "..."}},
      "cache_pJ_per_64bit": {"8KB": {"pJ": 10, "source": "..."}, ...}   (optional, informational)
    }

``ops`` must hold at least ``fp32_add`` and ``fp32_mult``; ``memory`` at least ``sram`` and
``dram``.  Every number is finite and > 0 and every entry carries a non-empty ``source``.
No energy constant lives in this module: :func:`energy_columns` only multiplies counts
by the model's numbers.

Counting convention of :func:`energy_columns` (all figures per inference of one image, pJ),
for an activation precision P (:data:`ACTIVATION_PRECISIONS`: fp32, fp16, int8):

* one multiply-accumulate (MAC) = one multiplication at P (``P_mult``) + one addition at
  the accumulator precision (fp32 and fp16: the same as P, ``fp32_add``/``fp16_add``, a
  choice kept from earlier versions; FP32 accumulation of fp16 products, as on tensor
  cores, would cost more; int8: ``int32_add``);
* a ternary layer's additions and subtractions are accumulator additions, its per-output
  Wp/Wn multiplications are P multiplications (only the weights are ternary; activations
  stay at P); a binary layer likewise, with one α_c multiplication per output, and a
  symmetric ternary layer (TWN: one α for both signs) with one α multiplication per
  output (:mod:`ttq_analysis.weight_formats`);
* an int4/int8 layer does MACs (``macs``, measured ``effective_macs``) at the weight ×
  activation precision (:func:`mac_ops`): with float activations (fp32, fp16) the
  multiplication is at P (integer weights convert exactly: they save memory only); with
  int8 activations an int8 × int8 multiplication is ``int8_mult`` and int4 × int8 is
  the **derived** ``int4xint8_mult`` (:data:`DERIVED_OPS`: an array multiplier's energy
  grows with the product of its operand widths, int8_mult × (4·8)/(8·8); 0.1 pJ at 45 nm),
  accumulated in ``int32_add``.  A cost model that lists ``int4xint8_mult`` itself (with a
  source) is used instead; a derived number is flagged wherever it is shown
  (:func:`derived_ops`, ``Analysis.meta["derived_energies"]``, the report's cost table);
* the baseline network (the ``fp32_*`` scenarios, named for the default) keeps its
  weights at P too (32, 16 or 8 bits each: an int8 baseline is an int8 network); the
  quantized network stores each layer in its weight format
  (:meth:`ttq_analysis.weight_formats.WeightFormat.weight_bits`: 2 bits per ternary
  weight + 32 per Wp, Wn; 1 bit per binary weight, n per int-n weight, + 32 per output
  channel for α_c or the step s_c; + 32 per bias), and its FP layers at P;
* every weight is read once per inference from the chosen memory level (``"sram"`` or
  ``"dram"``): weight-memory energy = weight bits x (pJ per 32-bit word / 32);
* activation memory (``act_memory`` ``"sram"``/``"dram"``; default ``"none"``: not
  counted): every conv/linear layer reads its input once and writes its output once, P
  bits per element.  Dense scenarios store activations densely; measured scenarios
  (zero-skipping hardware) store them as a bitmap (1 bit per element) plus the nonzero
  values, at the measured zero fraction of the layer's input (reads) and of its output as
  the layer produces it, before batch norm or ReLU (writes);
* bias additions, batch norm and activation functions are not counted.

Scenario names: ``ttq_dense`` and ``ttq_measured`` are **the quantized network** of the
analysis, whatever its weight format (ternary, binary, int4, int8 or a mix); the names
are kept from when ternary was the only format (the report, the sweep, the README and
``analysis.json`` read them).

Worked example (horowitz45, SRAM, fp32): an FP layer with 1,000 MACs and 100 weights costs
1000 x (3.7 + 0.9) = 4,600 pJ compute + 3,200 bits x 5/32 pJ = 500 pJ memory = 5,100 pJ.
With int8 activations: 1000 x (0.2 + 0.1) = 300 pJ + 800 bits x 5/32 = 125 pJ.  Reading a
1,024-element input and writing a 2,048-element output from SRAM at fp32 adds
3,072 x 32 x 5/32 = 15,360 pJ (dense); at 75 % zeros in, 0 % out, zero-skipping costs
1,024 x (1 + 0.25 x 32) x 5/32 + 2,048 x (1 + 32) x 5/32 = 1,440 + 10,560 = 12,000 pJ.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttq_core.errors import ConfigError

from .weight_formats import ADD_ONLY_FORMATS, WEIGHT_FORMATS

__all__ = [
    "ACT_MEMORY_LEVELS",
    "ACTIVATION_PRECISIONS",
    "ASSUMPTIONS",
    "ActivationPrecision",
    "ENERGY_COLUMNS",
    "EnergyModel",
    "EnergyModelError",
    "SCENARIOS",
    "available_energy_models",
    "describe",
    "energy_columns",
    "load_energy_model",
    "scenario_totals",
    "activation_precision",
    "activation_memory_pJ",
    "check_energy_options",
    "ENERGY_PARTS",
    "DERIVED_OPS",
    "DerivedOp",
    "derived_ops",
    "layer_formats",
    "mac_ops",
    "op_pJ",
]

SCENARIOS = ("fp32_dense", "fp32_measured", "ttq_dense", "ttq_measured")
"""fp32_dense: FP twin, every MAC computed; fp32_measured: FP twin, MACs with a zero input
skipped; ttq_dense: the quantized network (ternary, binary, int4 or int8 layers; the name
is kept from when ternary was the only format), dense activations; ttq_measured: the
quantized network, measured (zero-skipping) op counts."""

ENERGY_PARTS = ("compute", "memory", "act_memory", "total")
"""Per scenario: arithmetic, weight memory, activation memory and their sum (pJ)."""

ENERGY_COLUMNS = tuple(f"{s}_{part}_pJ" for s in SCENARIOS for part in ENERGY_PARTS)


@dataclass(frozen=True)
class ActivationPrecision:
    """How one activation precision is costed.  ``bits``: storage of one activation (and
    one baseline weight); ``mult``: the operand-precision multiplication (a MAC's, and a
    ternary layer's Wp/Wn scaling); ``acc_add``: the accumulator addition (a MAC's, and
    each ternary addition or subtraction); ``accumulator``: its name, for captions."""

    name: str
    bits: int
    mult: str
    acc_add: str
    accumulator: str


ACTIVATION_PRECISIONS = {
    "fp32": ActivationPrecision("fp32", 32, "fp32_mult", "fp32_add", "fp32"),
    "fp16": ActivationPrecision("fp16", 16, "fp16_mult", "fp16_add", "fp16"),
    "int8": ActivationPrecision("int8", 8, "int8_mult", "int32_add", "int32"),
}
"""The activation precisions ``--activations`` accepts (default fp32: today's figures)."""

ACT_MEMORY_LEVELS = ("none", "sram", "dram")
"""Where activations are read and written (``none``: activation traffic not counted)."""


def activation_precision(name: str) -> ActivationPrecision:
    """The :class:`ActivationPrecision` called ``name``; a one-line error otherwise."""
    try:
        return ACTIVATION_PRECISIONS[name]
    except (KeyError, TypeError):
        raise EnergyModelError(f"unknown activation precision {name!r}; choose one of: "
                               f"{', '.join(ACTIVATION_PRECISIONS)}") from None

@dataclass(frozen=True)
class DerivedOp:
    """An operation energy no cost model lists, computed from one that it does by a
    stated rule: ``pJ = model.op(base) × factor``.  Always flagged as derived."""

    name: str
    base: str
    factor: float
    rule: str

    def pJ(self, model: "EnergyModel") -> float:
        return model.op(self.base) * self.factor


DERIVED_OPS = {
    "int4xint8_mult": DerivedOp(
        "int4xint8_mult", "int8_mult", (4 * 8) / (8 * 8),
        "an array multiplier's energy grows with the product of its operand widths: "
        "int8_mult x (4*8)/(8*8)"),
}
"""Operations derived by a named rule when the cost model lacks them (flagged)."""


def op_pJ(model: "EnergyModel", name: str) -> float:
    """Energy of operation ``name`` (pJ): the cost model's own number, else a
    :data:`DERIVED_OPS` rule applied to it."""
    if name in model.ops_pJ or name not in DERIVED_OPS:
        return model.op(name)
    return DERIVED_OPS[name].pJ(model)


def mac_ops(weight_format: str, precision: "ActivationPrecision") -> tuple[str, str]:
    """(multiplication, addition) of one MAC of a layer in ``weight_format`` (fp, int4,
    int8) at activation precision ``precision``: int8 activations with int8 weights
    ``int8_mult``, with int4 weights ``int4xint8_mult`` (derived), accumulated in
    ``int32_add``; every other case the precision's own (integer weights convert exactly
    to float activations)."""
    if precision.name == "int8" and weight_format == "int4":
        return "int4xint8_mult", "int32_add"
    return precision.mult, precision.acc_add


def derived_ops(model: "EnergyModel", formats, precisions=None) -> dict[str, dict]:
    """The derived operation energies an analysis with layers in ``formats`` may use under
    ``precisions`` (default: every activation precision, as the scenario matrix does):
    ``{name: {"pJ", "derived": True, "base", "base_pJ", "factor", "rule"}}``; empty when
    none applies or the model lists the operation itself.  For ``meta["derived_energies"]``
    and the report's cost table."""
    precisions = list(ACTIVATION_PRECISIONS) if precisions is None else list(precisions)
    out = {}
    for fmt in dict.fromkeys(formats):
        for p in precisions:
            spec = ACTIVATION_PRECISIONS.get(p)
            if spec is None:
                continue
            for name in mac_ops(fmt, spec):
                if name in DERIVED_OPS and name not in model.ops_pJ and name not in out:
                    d = DERIVED_OPS[name]
                    out[name] = {"pJ": d.pJ(model), "derived": True, "base": d.base,
                                 "base_pJ": model.op(d.base), "factor": d.factor,
                                 "rule": d.rule}
    return out


ASSUMPTIONS = (
    "one multiply-accumulate = one multiplication at the activation precision + one addition "
    "at the accumulator precision (fp32 and fp16: the same; int8: int32)",
    "only weights are ternary: a ternary layer's additions are accumulator additions and its "
    "Wp/Wn multiplications are at the activation precision",
    "binary layers: accumulator additions and one scale multiplication per output at the "
    "activation precision; int4/int8 layers: MACs at the activation precision with float "
    "activations, int8 x int8 or int4 x int8 (derived: int8_mult x (4*8)/(8*8)) + int32 "
    "addition with int8 activations",
    "the baseline keeps its weights at the activation precision (32, 16 or 8 bits)",
    "every weight is read once per inference from the chosen memory level",
    "activation memory, when counted: each conv/linear layer reads its input and writes its "
    "output once; dense scenarios store activations densely, measured ones as a 1-bit "
    "zero map plus the nonzero values at the measured zero fractions",
    "bias additions, batch norm and activation functions are not counted",
)
"""The assumptions behind :func:`energy_columns`, phrased for a report's method section or caption."""

REQUIRED_OPS = ("fp32_add", "fp32_mult")
REQUIRED_MEMORY = ("sram", "dram")
DEFAULT_ENERGY_MODEL = "horowitz45"
"""The cost model every API and CLI uses unless told otherwise."""
_TOP_LEVEL_KEYS = ("name", "description", "ops", "memory", "cache_pJ_per_64bit")
_SUFFIXES = (".json", ".toml")
_MODELS_DIR = "energy_models"

_FORMAT_COLUMN = "weight_format"  # optional: without it (files before issue 21) from "ternary"
_LAYER_COLUMNS = ("ternary", "macs", "ternary_adds", "ternary_mults", "effective_adds",
                  "effective_mults", "effective_macs", "fp_weight_bits", "weight_bits")
_ACT_MEMORY_COLUMNS = ("in_elements", "out_elements", "act_sparsity", "out_act_sparsity")


class EnergyModelError(ConfigError):
    """An energy cost model cannot be found, read or validated, or is used with a bad option."""


@dataclass(frozen=True)
class EnergyModel:
    """A validated energy cost model.

    ``ops_pJ`` maps an operation (``"fp32_add"``) to pJ per operation; ``memory_pJ_per_bit``
    maps a memory level (``"sram"``) to pJ per bit read (the file's 32-bit figure / 32);
    ``sources`` maps ``"ops.fp32_add"``, ``"memory.sram"``, ``"cache_pJ_per_64bit.8KB"`` to
    the citation of that number; ``raw`` is the validated file content (JSON-able) so an
    analysis can embed the exact model it used.
    """

    name: str
    description: str
    ops_pJ: dict[str, float]
    memory_pJ_per_bit: dict[str, float]
    sources: dict[str, str]
    raw: dict = field(repr=False)

    def op(self, name: str) -> float:
        """Energy of one operation ``name`` in pJ."""
        try:
            return self.ops_pJ[name]
        except KeyError:
            raise EnergyModelError(
                f"energy model {self.name}: unknown operation {name!r}; "
                f"known operations: {', '.join(self.ops_pJ)}") from None

    def memory_bit(self, level: str) -> float:
        """Energy of reading one bit from memory level ``level`` in pJ."""
        if level not in self.memory_pJ_per_bit:
            raise EnergyModelError(
                f"energy model {self.name}: unknown memory level {level!r}; "
                f"choose one of: {', '.join(self.memory_pJ_per_bit)}")
        return self.memory_pJ_per_bit[level]


# ----------------------------------------------------------------------------- loading

MAX_PJ = 1e9  # largest accepted energy of one operation or one bit, pJ


def _models_dir():
    return resources.files(__package__).joinpath(_MODELS_DIR)


def available_energy_models() -> list[str]:
    """Names of the cost models shipped with the toolkit (``load_energy_model(name)``)."""
    return sorted(Path(entry.name).stem for entry in _models_dir().iterdir()
                  if entry.is_file() and entry.name.endswith(".json"))


def load_energy_model(name_or_path: str | os.PathLike | EnergyModel | dict) -> EnergyModel:
    """Load a shipped cost model by name, or a user's ``.json``/``.toml`` file by path.

    An :class:`EnergyModel` is returned unchanged; a dict is validated as a model's
    content (e.g. ``Analysis.meta["energy_model"]``, the model an analysis embedded).
    Every failure (unknown name, missing or unparsable file, invalid field) is a one-line
    :class:`EnergyModelError`.
    """
    if isinstance(name_or_path, EnergyModel):
        return name_or_path
    if isinstance(name_or_path, dict):
        return _validate(name_or_path, f"{name_or_path.get('name', 'unnamed')} (embedded)")
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise EnergyModelError(
            f"energy model must be a shipped name, a path to a .json/.toml file, a model's "
            f"content (dict) or an EnergyModel, "
            f"got {type(name_or_path).__name__}")
    text = os.fspath(name_or_path)
    shipped = available_energy_models()
    if isinstance(name_or_path, str) and text in shipped:
        entry = _models_dir().joinpath(text + ".json")
        return _parse_and_validate(entry.read_text(encoding="utf-8"), ".json", f"{text} (shipped)")
    path = Path(text)
    looks_like_path = (not isinstance(name_or_path, str) or path.suffix.lower() in _SUFFIXES
                       or os.sep in text or (os.altsep and os.altsep in text) or path.exists())
    if not looks_like_path:
        raise EnergyModelError(
            f"unknown energy model {text!r}; shipped models: {', '.join(shipped)} "
            f"(a path to a .json or .toml file also works)")
    if path.suffix.lower() not in _SUFFIXES:
        raise EnergyModelError(f"energy model {path}: the file must end in .json or .toml")
    from ttq_core.user_files import read_text
    try:  # a regular file only (a FIFO would block), small, UTF-8
        content = read_text(path, f"energy model {path}", error=EnergyModelError)
    except FileNotFoundError:
        raise EnergyModelError(
            f"energy model {path}: file not found; shipped models: {', '.join(shipped)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnergyModelError(f"energy model {path}: cannot read the file: {_one_line(exc)}") from None
    return _parse_and_validate(content, path.suffix.lower(), str(path))


def _parse_and_validate(content: str, suffix: str, origin: str) -> EnergyModel:
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ModuleNotFoundError:
                raise EnergyModelError(
                    f"energy model {origin}: reading TOML needs Python 3.11+ or the tomli package; "
                    f"use a .json file or pip install tomli") from None
        try:
            data = tomllib.loads(content)
        except tomllib.TOMLDecodeError as exc:
            raise EnergyModelError(f"energy model {origin}: invalid TOML: {_one_line(exc)}") from None
        except RecursionError:
            raise EnergyModelError(f"energy model {origin}: nested too deeply to parse; a cost "
                                   f"model is a few levels deep") from None
    else:
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise EnergyModelError(f"energy model {origin}: invalid JSON: {_one_line(exc)}") from None
        except RecursionError:
            raise EnergyModelError(f"energy model {origin}: nested too deeply to parse; a cost "
                                   f"model is a few levels deep") from None
    return _validate(data, origin)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _validate(data: Any, origin: str) -> EnergyModel:
    def fail(message: str) -> EnergyModelError:
        return EnergyModelError(f"energy model {origin}: {message}")

    if not isinstance(data, dict):
        raise fail(f"the file must hold a table (JSON object) with name, ops and memory, "
                   f"got {type(data).__name__}")
    unknown = [key for key in data if key not in _TOP_LEVEL_KEYS]
    if unknown:
        raise fail(f"unknown field {unknown[0]!r}; allowed top-level fields: {', '.join(_TOP_LEVEL_KEYS)}")

    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail(f"name must be a non-empty string, got {_show(name, 'name' in data)}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail(f"description must be a string, got {description!r}")

    sources: dict[str, str] = {}

    def section(key: str, value_key: str, required: tuple[str, ...], optional: bool = False):
        table = data.get(key)
        if table is None and optional:
            return {}, {}
        if not isinstance(table, dict) or not table:
            raise fail(f"{key} must be a non-empty table of entries {{{value_key!r}: number, 'source': citation}}"
                       f", got {_show(table, key in data)}")
        missing = [entry for entry in required if entry not in table]
        if missing:
            raise fail(f"{key}.{missing[0]} is missing; {key} needs at least {', '.join(required)}")
        numbers, raw_entries = {}, {}
        for entry, spec in table.items():
            where = f"{key}.{entry}"
            if not isinstance(spec, dict):
                raise fail(f"{where} must be a table {{{value_key!r}: number, 'source': citation}}, got {spec!r}")
            value = spec.get(value_key)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value <= 0):
                raise fail(f"{where}.{value_key} must be a positive number, got {_show(value, value_key in spec)}")
            if value > MAX_PJ:  # finite, but totals over ~1e10 operations would overflow
                raise fail(f"{where}.{value_key} is {value:g} pJ, above {MAX_PJ:g} pJ (1 mJ) per "
                           f"operation or bit: not a plausible energy, and totals would overflow")
            source = spec.get("source")
            if not isinstance(source, str) or not source.strip():
                raise fail(f"{where}.source must be a non-empty citation a reviewer can look up, "
                           f"got {_show(source, 'source' in spec)}")
            numbers[entry] = float(value)
            sources[where] = source.strip()
            raw_entries[entry] = {**spec, value_key: float(value)}
        return numbers, raw_entries

    ops, raw_ops = section("ops", "pJ", REQUIRED_OPS)
    memory, raw_memory = section("memory", "pJ_per_32bit", REQUIRED_MEMORY)
    _cache, raw_cache = section("cache_pJ_per_64bit", "pJ", (), optional=True)

    raw = {"name": name, "description": description, "ops": raw_ops, "memory": raw_memory}
    if raw_cache:
        raw["cache_pJ_per_64bit"] = raw_cache
    try:
        raw = json.loads(json.dumps(raw))  # JSON-able and detached from the caller's objects
    except (TypeError, ValueError) as exc:
        raise fail(f"extra values must be JSON-compatible (strings, numbers, lists, tables): {_one_line(exc)}") from None
    return EnergyModel(name=name, description=description, ops_pJ=ops,
                       memory_pJ_per_bit={level: pj / 32.0 for level, pj in memory.items()},
                       sources=sources, raw=raw)


def _show(value: Any, present: bool) -> str:
    return repr(value) if present else "nothing (the field is missing)"


# ----------------------------------------------------------------------------- energy

def ternary_compute_pJ(adds, mults, add_pJ: float, mult_pJ: float):
    """Compute energy (pJ) of a ternary layer: ``adds`` additions and ``mults``
    multiplications at the activation precision (numbers or pandas Series).  The one
    ternary formula: :func:`energy_columns` and the threshold planner both use it."""
    return adds * add_pJ + mults * mult_pJ


def mac_compute_pJ(macs, add_pJ: float, mult_pJ: float):
    """Compute energy (pJ) of ``macs`` multiply-accumulates (one multiplication plus one
    addition each) at the activation precision."""
    return macs * (mult_pJ + add_pJ)


def check_energy_options(model: EnergyModel | str | os.PathLike, memory: str = "sram",
                         precision: str = "fp32", act_memory: str = "none") -> ActivationPrecision:
    """Check that ``model`` can cost weights in ``memory``, ``precision`` activations and
    activation memory ``act_memory`` (one-line :class:`EnergyModelError` otherwise);
    returns the :class:`ActivationPrecision`."""
    model = load_energy_model(model)
    if not isinstance(memory, str) or memory not in model.memory_pJ_per_bit:
        raise EnergyModelError(
            f"energy model {model.name}: unknown memory level {memory!r}; "
            f"choose one of: {', '.join(model.memory_pJ_per_bit)}")
    prec = activation_precision(precision)
    missing_ops = [op for op in (prec.mult, prec.acc_add) if op not in model.ops_pJ]
    if missing_ops:
        raise EnergyModelError(
            f"energy model {model.name}: {precision} activations need operations {prec.mult} "
            f"and {prec.acc_add}; the model lacks {', '.join(missing_ops)}")
    if act_memory not in ACT_MEMORY_LEVELS:
        raise EnergyModelError(f"unknown activation memory {act_memory!r}; choose one of: "
                               f"{', '.join(ACT_MEMORY_LEVELS)}")
    if act_memory != "none" and act_memory not in model.memory_pJ_per_bit:
        raise EnergyModelError(
            f"energy model {model.name}: unknown memory level {act_memory!r} for activations; "
            f"choose one of: {', '.join(model.memory_pJ_per_bit)}")
    return prec


def energy_columns(layers: pd.DataFrame, model: EnergyModel | str | os.PathLike,
                   memory: str = "sram", precision: str = "fp32",
                   act_memory: str = "none") -> pd.DataFrame:
    """Per-layer energy (pJ per inference of one image) in the four :data:`SCENARIOS`.

    ``layers`` has one row per conv/linear layer and the columns ``ternary`` (bool),
    ``macs``, ``ternary_adds``, ``ternary_mults``, ``effective_adds``, ``effective_mults``,
    ``effective_macs``, ``fp_weight_bits`` (32 x params) and ``weight_bits`` (bits in this
    network), and optionally ``weight_format`` (fp, binary, ternary, int4, int8; without
    it a layer is ternary where ``ternary`` is True, else fp: layer tables written before
    the other formats); with ``act_memory`` other than ``"none"`` also ``in_elements`` and
    ``out_elements`` (activations read and written per image) and ``act_sparsity`` /
    ``out_act_sparsity`` (measured zero fractions of input and output).  NaN marks a count
    that does not apply or was not measured.  ``ternary_adds``/``ternary_mults`` and
    ``effective_adds``/``effective_mults`` hold the additions and scale multiplications
    of every add-only layer (ternary and binary).

    ``precision`` is the activation precision P (:data:`ACTIVATION_PRECISIONS`): with
    mult = P's multiplication, add = its accumulator addition (pJ), w = P's bits / 32,
    p = pJ per bit of ``memory`` and q = pJ per bit of ``act_memory`` (0 for ``"none"``),
    the result has, for each scenario s, ``{s}_compute_pJ``, ``{s}_memory_pJ`` (weights),
    ``{s}_act_memory_pJ`` and ``{s}_total_pJ`` = the sum of the three:

    ============== ================================================ =======================
    scenario       compute                                          weight memory
    ============== ================================================ =======================
    fp32_dense     macs x (mult + add)                              fp_weight_bits x w x p
    fp32_measured  effective_macs x (mult + add)                    fp_weight_bits x w x p
    ttq_dense      ternary, binary: ternary_adds x add +            quantized: weight_bits
                   ternary_mults x mult; int4/int8: macs x (mult'   x p; FP: fp_weight_bits
                   + add'); FP layers: macs x (mult + add)          x w x p
    ttq_measured   ternary, binary: effective_adds x add +          as ttq_dense
                   effective_mults x mult; int4/int8:
                   effective_macs x (mult' + add'); FP layers:
                   effective_macs x (mult + add)
    ============== ================================================ =======================

    mult', add': the MAC of :func:`mac_ops` (int8 activations: int8_mult or the derived
    int4xint8_mult, and int32_add; float activations: mult and add).  ``ttq_*`` is the
    quantized network in every weight format (see :data:`SCENARIOS`).

    Activation memory (the same for the baseline and the ternary network, which share the
    activations): dense scenarios (in_elements + out_elements) x bits x q; measured
    scenarios in_elements x (1 + (1 - act_sparsity) x bits) x q + out_elements x
    (1 + (1 - out_act_sparsity) x bits) x q (a 1-bit zero map plus the nonzero values).

    With the defaults (fp32, weights in SRAM, no activation memory) every figure is the
    toolkit's original one.  A NaN count gives NaN compute and total (never a silent zero);
    when no layer is quantized (a plain FP network) all ttq_* columns are NaN, its energy
    being the fp32_* scenarios.

    Example (horowitz45, sram): an FP layer with macs 1000 and fp_weight_bits 3200 has
    fp32_dense_compute_pJ = 1000 x (3.7 + 0.9) = 4600, fp32_dense_memory_pJ = 3200 x 5/32 = 500.
    """
    model = load_energy_model(model)
    prec = check_energy_options(model, memory, precision, act_memory)
    needed = _LAYER_COLUMNS + (_ACT_MEMORY_COLUMNS if act_memory != "none" else ())
    missing = [col for col in needed if col not in layers.columns]
    if missing:
        raise ValueError(f"energy_columns: the layer table lacks column(s) {', '.join(missing)}; "
                         f"it needs {', '.join(needed)}")
    if layers["ternary"].isna().any():
        raise ValueError("energy_columns: column 'ternary' must be True/False for every layer, found NaN")
    formats = layer_formats(layers)

    add, mult = model.ops_pJ[prec.acc_add], model.ops_pJ[prec.mult]
    per_bit = model.memory_pJ_per_bit[memory]
    width = prec.bits / 32.0  # baseline (and FP-layer) weight bits relative to 32
    counts = {col: layers[col].astype(float) for col in needed if col != "ternary"}
    add_only = formats.isin(ADD_ONLY_FORMATS)
    quantized = formats != "fp"
    # pJ of one MAC of each layer in the quantized network (int layers: weight x activation)
    mac_pJ = formats.map(lambda f: sum(op_pJ(model, op) for op in mac_ops(f, prec)))

    dense_macs = mac_compute_pJ(counts["macs"], add, mult)
    measured_macs = mac_compute_pJ(counts["effective_macs"], add, mult)
    compute = {
        "fp32_dense": dense_macs,
        "fp32_measured": measured_macs,
        "ttq_dense": ternary_compute_pJ(counts["ternary_adds"], counts["ternary_mults"], add, mult)
        .where(add_only, counts["macs"] * mac_pJ),
        "ttq_measured": ternary_compute_pJ(counts["effective_adds"], counts["effective_mults"],
                                           add, mult).where(add_only,
                                                            counts["effective_macs"] * mac_pJ),
    }
    fp_memory = counts["fp_weight_bits"] * width * per_bit
    ttq_memory = (counts["weight_bits"] * per_bit).where(quantized, fp_memory)
    memory_pJ = {"fp32_dense": fp_memory, "fp32_measured": fp_memory,
                 "ttq_dense": ttq_memory, "ttq_measured": ttq_memory}
    if act_memory == "none":
        zero = pd.Series(0.0, index=layers.index)
        act_pJ = {"dense": zero, "measured": zero}
    else:
        act_pJ = activation_memory_pJ(counts["in_elements"], counts["out_elements"],
                                      counts["act_sparsity"], counts["out_act_sparsity"],
                                      prec.bits, model.memory_pJ_per_bit[act_memory])

    out = pd.DataFrame(index=layers.index)
    for scenario in SCENARIOS:
        act = act_pJ["measured" if scenario.endswith("_measured") else "dense"]
        out[f"{scenario}_compute_pJ"] = compute[scenario]
        out[f"{scenario}_memory_pJ"] = memory_pJ[scenario]
        out[f"{scenario}_act_memory_pJ"] = act
        out[f"{scenario}_total_pJ"] = compute[scenario] + memory_pJ[scenario] + act
    if not quantized.any():
        for scenario in ("ttq_dense", "ttq_measured"):
            for part in ENERGY_PARTS:
                out[f"{scenario}_{part}_pJ"] = np.nan
    return out


def layer_formats(layers: pd.DataFrame) -> pd.Series:
    """Each layer's weight format (str): the ``weight_format`` column, or for a layer table
    written before it, ``"ternary"`` where ``ternary`` is True and ``"fp"`` elsewhere."""
    if _FORMAT_COLUMN in layers.columns:
        formats = layers[_FORMAT_COLUMN].astype(str)
        unknown = sorted(set(formats) - set(WEIGHT_FORMATS))
        if unknown:
            raise ValueError(f"energy_columns: unknown weight format(s) {', '.join(unknown)}; "
                             f"known: {', '.join(WEIGHT_FORMATS)}")
        return formats
    return layers["ternary"].astype(bool).map({True: "ternary", False: "fp"})


def activation_memory_pJ(in_elements, out_elements, in_sparsity, out_sparsity, bits: int,
                         pJ_per_bit: float) -> dict[str, Any]:
    """Activation-memory energy (pJ per image) of layers reading ``in_elements`` and writing
    ``out_elements`` activations of ``bits`` bits at ``pJ_per_bit``: ``"dense"`` (every
    element stored) and ``"measured"`` (zero-skipping: a 1-bit zero map per element plus
    the nonzero values, at the measured zero fractions ``in_sparsity``/``out_sparsity``;
    NaN where not measured).  Numbers or pandas Series."""
    dense = (in_elements + out_elements) * bits * pJ_per_bit
    measured = (in_elements * (1.0 + (1.0 - in_sparsity) * bits)
                + out_elements * (1.0 + (1.0 - out_sparsity) * bits)) * pJ_per_bit
    return {"dense": dense, "measured": measured}


def scenario_totals(energy: pd.DataFrame) -> dict[str, float]:
    """Sum each energy column of :func:`energy_columns` over layers (pJ per inference).

    A column with NaN in any layer sums to NaN: a network total with a layer left out would
    understate the energy.
    """
    missing = [col for col in ENERGY_COLUMNS if col not in energy.columns]
    if missing:
        raise ValueError(f"scenario_totals: missing column(s) {', '.join(missing)}; "
                         f"pass the result of energy_columns")
    return {col: float(energy[col].astype(float).sum(skipna=False)) for col in ENERGY_COLUMNS}


def describe(model: EnergyModel | str | os.PathLike) -> list[dict]:
    """The model's numbers as rows (``quantity``, ``value``, ``unit``, ``source``) for a
    report's method section, in file order: operations, memory levels, then caches."""
    model = load_energy_model(model)
    rows = []
    for op, pj in model.ops_pJ.items():
        rows.append({"quantity": op.replace("_", " "), "value": pj, "unit": "pJ per operation",
                     "source": model.sources[f"ops.{op}"]})
    for level, per_bit in model.memory_pJ_per_bit.items():
        rows.append({"quantity": f"{level.upper()} read, 32-bit word", "value": per_bit * 32.0,
                     "unit": "pJ per 32-bit access", "source": model.sources[f"memory.{level}"]})
    for size, spec in model.raw.get("cache_pJ_per_64bit", {}).items():
        rows.append({"quantity": f"{size} cache read, 64-bit", "value": float(spec["pJ"]),
                     "unit": "pJ per 64-bit access", "source": model.sources[f"cache_pJ_per_64bit.{size}"]})
    return rows
