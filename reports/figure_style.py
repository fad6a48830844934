"""Shared look and helpers of every report figure: palette, hatches and markers (readable
in greyscale), the :class:`FigureSpec` container, the ``_styled`` rc context, unit and
phrase helpers, and the accessors of a checkpoint's training history.  The figures
themselves: :mod:`reports.figures` (analysis) and :mod:`reports.history_figures`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PNG_DPI = 150

# Okabe–Ito colours (colour-blind safe); hatches/markers carry the same distinction.
COLORS = {"pos": "#0072B2", "zero": "#BBBBBB", "neg": "#D55E00",
          "compute": "#0072B2", "memory": "#E69F00", "act_memory": "#CC79A7",
          "weight": "#555555", "act": "#009E73", "train": "#0072B2", "test": "#D55E00"}
HATCHES = {"pos": "///", "zero": "", "neg": "\\\\\\", "compute": "", "memory": "///",
           "act_memory": "...",
           "weight": "///", "act": ""}
MARKERS = {"pos": "^", "zero": "o", "neg": "v"}
REGION_LABELS = {"pos": "+ (w > Δ)", "zero": "0 (|w| ≤ Δ)", "neg": "− (w < −Δ)"}
ENERGY_UNITS = ((1e6, "µJ"), (1e3, "nJ"), (1.0, "pJ"))  # pJ per unit, largest first

# Labels/markers/hatches use Unicode minus and Greek; DejaVu Sans (the default) has them.
_RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
       "xtick.labelsize": 7, "ytick.labelsize": 7, "hatch.linewidth": 0.6,
       "svg.fonttype": "none", "svg.hashsalt": "ttq-report"}


@dataclass
class FigureSpec:
    """A finished figure: ``name`` is the file stem, ``caption`` one generated paragraph."""

    name: str
    fig: Figure
    caption: str


# ----------------------------------------------------------------------- helpers
def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _styled(fn: Callable) -> Callable:
    """Run a figure builder under the module's rc settings (fonts are read at creation)."""
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)
    wrapper.__name__, wrapper.__doc__, wrapper.__wrapped__ = fn.__name__, fn.__doc__, fn
    wrapper.__qualname__ = fn.__qualname__
    return wrapper


def _dataset(meta: dict | None) -> str | None:
    ds = ((meta or {}).get("checkpoint") or {}).get("dataset")
    if isinstance(ds, dict):
        ds = ds.get("name")
    return str(ds) if ds else None


def _model_phrase(meta: dict | None) -> str:
    """'resnet20 (cifar10)' or what of it is known."""
    meta = meta or {}
    arch = meta.get("arch") or "the model"
    ds = _dataset(meta)
    return f"{arch} ({ds})" if ds else str(arch)


def _images_phrase(meta: dict) -> str:
    """"10,000 images of the CIFAR-10 test split": the images measured on
    (``meta["measurement_data"]``), else the dataset the checkpoint was trained on."""
    n = int(meta.get("images") or 0)
    split = (meta.get("measurement_data") or {}).get("split")
    if split:
        return f"{n:,} images of the {split}"
    ds = _dataset(meta)
    return f"{n:,} {ds} images" if ds else f"{n:,} images"


def _energy_assumptions(meta: dict) -> str:
    em = (meta.get("energy_model") or {}).get("name", "an unnamed")
    mem = str(meta.get("memory", "sram")).upper()
    prec = str(meta.get("precision", "fp32")).upper()
    act_mem = str(meta.get("act_memory", "none"))
    traffic = ("activation memory traffic not counted" if act_mem == "none" else
               f"activations read and written once per layer from {act_mem.upper()}")
    return (f"energy model '{em}', {prec} activations (arithmetic and storage), every weight "
            f"read once per inference from {mem}; {traffic}; bias, batch norm and activation "
            f"functions not counted")


def _energy_unit(max_pj: float) -> tuple[float, str]:
    for factor, unit in ENERGY_UNITS:
        if max_pj >= factor:
            return factor, unit
    return 1.0, "pJ"


def _share(fraction: float) -> str:
    """A fraction as a percentage that never rounds a nonzero share to '0%'."""
    if 0 < fraction < 0.001:
        return "< 0.1%"
    return f"{fraction:.1%}"


def _is_ternary(analysis) -> bool:
    return "ternary" in analysis.layers and bool(analysis.layers["ternary"].any())


def _is_quantized(analysis) -> bool:
    """Whether any layer has quantized weights (binary, ternary, int4, int8): the
    ``weight_format`` column, or for layer tables written before it, ``ternary``."""
    layers = analysis.layers
    if "weight_format" in layers:
        return bool((layers["weight_format"].astype(str) != "fp").any())
    return _is_ternary(analysis)


def _has_measured(analysis) -> bool:
    return int(analysis.meta.get("images") or 0) > 0 and "act_sparsity" in analysis.layers \
        and bool(analysis.layers["act_sparsity"].notna().any())


def _label_layers(ax, names: Sequence[str], x: np.ndarray) -> None:
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)


def _history_entries(history) -> list[dict]:
    return [h for h in (history or []) if isinstance(h, dict)]


def _epochs(entries: list[dict]) -> np.ndarray:
    return np.array([h.get("epoch", i + 1) for i, h in enumerate(entries)], dtype=float)


def _ternary_names(entries: list[dict]) -> list[str]:
    names: dict[str, None] = {}
    for h in entries:
        for n in (h.get("layers") or {}):
            names.setdefault(n, None)
    return list(names)


def _series(entries: list[dict], layer: str, key: str) -> np.ndarray:
    out = []
    for h in entries:
        v = ((h.get("layers") or {}).get(layer) or {}).get(key)
        out.append(np.nan if v is None else float(v))
    return np.array(out, dtype=float)


def _grid(n_panels: int, max_cols: int = 5) -> tuple[int, int]:
    cols = min(max_cols, n_panels)
    return math.ceil(n_panels / cols), cols


