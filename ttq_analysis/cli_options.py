"""Command-line options of the analysis layer, defined once for ``ttq-plan``,
``ttq-report`` and ``ttq-sweep``: the cost model and memory level, and the layer
sensitivity of energy-aware plans.  (Shared core options: ``ttq_core.cli_options``.)"""

from __future__ import annotations

from .energy import (ACT_MEMORY_LEVELS, ACTIVATION_PRECISIONS, DEFAULT_ENERGY_MODEL,
                     REQUIRED_MEMORY, available_energy_models)
from .threshold_plan import SENSITIVITIES

DEFAULT_SENSITIVITY = "loss"
DEFAULT_CALIBRATION_IMAGES = 256


def add_energy_options(group, several_models: bool = False) -> None:
    """The hardware scenario: ``--energy-model``, ``--memory {sram,dram}``,
    ``--activations {fp32,fp16,int8}`` and ``--act-memory {none,sram,dram}``.
    ``several_models``: ``--energy-model`` takes a comma-separated list (the first is the
    one every table uses; all are compared in the scenario matrix)."""
    shipped = ", ".join(available_energy_models())
    if several_models:
        group.add_argument("--energy-model", default=DEFAULT_ENERGY_MODEL, metavar="NAME|FILE[,...]",
                           help=f"cost model(s): shipped names ({shipped}) or JSON/TOML files, "
                                f"comma-separated; the first gives every table and card, all "
                                f"are compared in the scenario matrix (default %(default)s)")
    else:
        group.add_argument("--energy-model", default=DEFAULT_ENERGY_MODEL, metavar="NAME|FILE",
                           help=f"cost model: a shipped name ({shipped}) or a JSON/TOML file "
                                f"(default %(default)s)")
    group.add_argument("--memory", default="sram", choices=list(REQUIRED_MEMORY),
                       help="where weights are read from once per inference (default %(default)s)")
    group.add_argument("--activations", default="fp32", choices=list(ACTIVATION_PRECISIONS),
                       help="activation precision: the arithmetic (a MAC = a multiplication at "
                            "this precision + an fp32/fp16/int32 accumulation) and the storage "
                            "width of activations and baseline weights (default %(default)s)")
    group.add_argument("--act-memory", default="none", choices=list(ACT_MEMORY_LEVELS),
                       help="where each layer reads its input and writes its output: none = "
                            "not counted (the paper's convention), sram or dram; measured "
                            "scenarios store activations as a zero bitmap plus nonzero values "
                            "(default %(default)s)")


def energy_model_names(value: str) -> list[str]:
    """The comma-separated ``--energy-model`` value as a list (empty items dropped)."""
    names = [v.strip() for v in str(value).split(",") if v.strip()]
    if not names:
        from ttq_core.errors import ConfigError
        raise ConfigError("--energy-model is empty; give a shipped name or a file")
    return names


def add_sensitivity_options(group) -> None:
    """``--sensitivity`` and ``--calibration-images N`` of energy-aware plans."""
    group.add_argument("--sensitivity", choices=sorted(SENSITIVITIES), default=DEFAULT_SENSITIVITY,
                       help="how a layer's sparsity is judged: loss = measured cross-entropy "
                            "increase on training images; weight_error = relative L2 error of "
                            "the ternary weights (default %(default)s)")
    group.add_argument("--calibration-images", type=int, default=DEFAULT_CALIBRATION_IMAGES,
                       metavar="N",
                       help="training images for the loss sensitivity (default %(default)s)")


__all__ = ["add_energy_options", "energy_model_names", "add_sensitivity_options", "DEFAULT_SENSITIVITY",
           "DEFAULT_CALIBRATION_IMAGES"]
