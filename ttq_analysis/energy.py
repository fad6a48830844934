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

Counting convention of :func:`energy_columns` (all figures per inference of one image, pJ):

* one multiply-accumulate (MAC) = one multiplication + one addition of ``precision``;
* activations stay FP32 in TTQ (only the weights are ternary), so the additions and
  multiplications of a ternary layer are ``precision`` (fp32) additions and multiplications;
* every weight is read once per inference from the chosen memory level (``"sram"`` or
  ``"dram"``): memory energy = weight bits x (pJ per 32-bit word / 32);
* bias additions, batch norm, activation functions and activation traffic are not counted.

Worked example (horowitz45, SRAM, fp32): an FP layer with 1,000 MACs and 100 weights costs
1000 x (3.7 + 0.9) = 4,600 pJ compute + 3,200 bits x 5/32 pJ = 500 pJ memory = 5,100 pJ.
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

__all__ = [
    "ASSUMPTIONS",
    "ENERGY_COLUMNS",
    "EnergyModel",
    "EnergyModelError",
    "SCENARIOS",
    "available_energy_models",
    "describe",
    "energy_columns",
    "load_energy_model",
    "scenario_totals",
]

SCENARIOS = ("fp32_dense", "fp32_measured", "ttq_dense", "ttq_measured")
"""fp32_dense: FP twin, every MAC computed; fp32_measured: FP twin, MACs with a zero input
skipped; ttq_dense: ternary network, dense activations; ttq_measured: ternary network,
measured (zero-skipping) op counts."""

ENERGY_COLUMNS = tuple(f"{s}_{part}_pJ" for s in SCENARIOS for part in ("compute", "memory", "total"))

ASSUMPTIONS = (
    "one multiply-accumulate = one multiplication + one addition",
    "activations stay FP32 in TTQ (only weights are ternary), so ternary-layer additions and "
    "multiplications cost FP32 additions and multiplications",
    "every weight is read once per inference from the chosen memory level",
    "bias additions, batch norm, activation functions and activation memory traffic are not counted",
)
"""The assumptions behind :func:`energy_columns`, phrased for a report's method section or caption."""

REQUIRED_OPS = ("fp32_add", "fp32_mult")
REQUIRED_MEMORY = ("sram", "dram")
DEFAULT_ENERGY_MODEL = "horowitz45"
"""The cost model every API and CLI uses unless told otherwise."""
_TOP_LEVEL_KEYS = ("name", "description", "ops", "memory", "cache_pJ_per_64bit")
_SUFFIXES = (".json", ".toml")
_MODELS_DIR = "energy_models"

_LAYER_COLUMNS = ("ternary", "macs", "ternary_adds", "ternary_mults", "effective_adds",
                  "effective_mults", "effective_macs", "fp_weight_bits", "weight_bits")


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


def load_energy_model(name_or_path: str | os.PathLike | EnergyModel) -> EnergyModel:
    """Load a shipped cost model by name, or a user's ``.json``/``.toml`` file by path.

    An :class:`EnergyModel` is returned unchanged.  Every failure (unknown name, missing or
    unparsable file, invalid field) is a one-line :class:`EnergyModelError`.
    """
    if isinstance(name_or_path, EnergyModel):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise EnergyModelError(
            f"energy model must be a shipped name, a path to a .json/.toml file or an EnergyModel, "
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
    try:
        content = path.read_text(encoding="utf-8")
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
    else:
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise EnergyModelError(f"energy model {origin}: invalid JSON: {_one_line(exc)}") from None
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


def energy_columns(layers: pd.DataFrame, model: EnergyModel | str | os.PathLike,
                   memory: str = "sram", precision: str = "fp32") -> pd.DataFrame:
    """Per-layer energy (pJ per inference of one image) in the four :data:`SCENARIOS`.

    ``layers`` has one row per conv/linear layer and the columns ``ternary`` (bool),
    ``macs``, ``ternary_adds``, ``ternary_mults``, ``effective_adds``, ``effective_mults``,
    ``effective_macs``, ``fp_weight_bits`` (32 x params) and ``weight_bits`` (bits in this
    network); NaN marks a count that does not apply or was not measured.  With
    add = ``{precision}_add`` and mult = ``{precision}_mult`` (pJ), p = pJ per bit of
    ``memory``, the result has, for each scenario s, ``{s}_compute_pJ``, ``{s}_memory_pJ``
    and ``{s}_total_pJ`` = compute + memory:

    ============== ================================================ =====================
    scenario       compute                                          memory
    ============== ================================================ =====================
    fp32_dense     macs x (mult + add)                              fp_weight_bits x p
    fp32_measured  effective_macs x (mult + add)                    fp_weight_bits x p
    ttq_dense      ternary: ternary_adds x add + ternary_mults x    weight_bits x p
                   mult; FP layers: macs x (mult + add)
    ttq_measured   ternary: effective_adds x add + effective_mults  weight_bits x p
                   x mult; FP layers: effective_macs x (mult + add)
    ============== ================================================ =====================

    Activations stay FP32 in TTQ (only weights are ternary), so ternary additions and
    multiplications are ``precision`` operations; each weight is read once per inference
    from ``memory``; bias additions and batch norm are not counted.  Storage bits are taken
    as given (``precision`` changes the arithmetic only).  A NaN count gives NaN compute and
    total (never a silent zero); when no layer is ternary (a plain FP network) all ttq_*
    columns are NaN, its energy being the fp32_* scenarios.

    Example (horowitz45, sram): an FP layer with macs 1000 and fp_weight_bits 3200 has
    fp32_dense_compute_pJ = 1000 x (3.7 + 0.9) = 4600, fp32_dense_memory_pJ = 3200 x 5/32 = 500.
    """
    model = load_energy_model(model)
    if not isinstance(memory, str) or memory not in model.memory_pJ_per_bit:
        raise EnergyModelError(
            f"energy model {model.name}: unknown memory level {memory!r}; "
            f"choose one of: {', '.join(model.memory_pJ_per_bit)}")
    ops_needed = (f"{precision}_add", f"{precision}_mult")
    if not isinstance(precision, str) or any(op not in model.ops_pJ for op in ops_needed):
        precisions = sorted({op.rsplit("_", 1)[0] for op in model.ops_pJ
                             if op.endswith(("_add", "_mult"))
                             and f"{op.rsplit('_', 1)[0]}_add" in model.ops_pJ
                             and f"{op.rsplit('_', 1)[0]}_mult" in model.ops_pJ})
        raise EnergyModelError(
            f"energy model {model.name}: precision {precision!r} needs operations "
            f"{ops_needed[0]} and {ops_needed[1]}; precisions this model has: {', '.join(precisions)}")
    missing = [col for col in _LAYER_COLUMNS if col not in layers.columns]
    if missing:
        raise ValueError(f"energy_columns: the layer table lacks column(s) {', '.join(missing)}; "
                         f"it needs {', '.join(_LAYER_COLUMNS)}")
    if layers["ternary"].isna().any():
        raise ValueError("energy_columns: column 'ternary' must be True/False for every layer, found NaN")

    add, mult = model.ops_pJ[ops_needed[0]], model.ops_pJ[ops_needed[1]]
    per_bit = model.memory_pJ_per_bit[memory]
    counts = {col: layers[col].astype(float) for col in _LAYER_COLUMNS if col != "ternary"}
    ternary = layers["ternary"].astype(bool)

    dense_macs = mac_compute_pJ(counts["macs"], add, mult)
    measured_macs = mac_compute_pJ(counts["effective_macs"], add, mult)
    compute = {
        "fp32_dense": dense_macs,
        "fp32_measured": measured_macs,
        "ttq_dense": ternary_compute_pJ(counts["ternary_adds"], counts["ternary_mults"], add, mult)
        .where(ternary, dense_macs),
        "ttq_measured": ternary_compute_pJ(counts["effective_adds"], counts["effective_mults"],
                                           add, mult).where(ternary, measured_macs),
    }
    fp_memory = counts["fp_weight_bits"] * per_bit
    ttq_memory = counts["weight_bits"] * per_bit
    memory_pJ = {"fp32_dense": fp_memory, "fp32_measured": fp_memory,
                 "ttq_dense": ttq_memory, "ttq_measured": ttq_memory}

    out = pd.DataFrame(index=layers.index)
    for scenario in SCENARIOS:
        out[f"{scenario}_compute_pJ"] = compute[scenario]
        out[f"{scenario}_memory_pJ"] = memory_pJ[scenario]
        out[f"{scenario}_total_pJ"] = compute[scenario] + memory_pJ[scenario]
    if not ternary.any():
        for scenario in ("ttq_dense", "ttq_measured"):
            for part in ("compute", "memory", "total"):
                out[f"{scenario}_{part}_pJ"] = np.nan
    return out


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
