"""Command-line options of the analysis layer, defined once for ``ttq-plan``,
``ttq-report`` and ``ttq-sweep``: the cost model and memory level, and the layer
sensitivity of energy-aware plans.  (Shared core options: ``ttq_core.cli_options``.)"""

from __future__ import annotations

from .energy import DEFAULT_ENERGY_MODEL, REQUIRED_MEMORY
from .threshold_plan import SENSITIVITIES

DEFAULT_SENSITIVITY = "loss"
DEFAULT_CALIBRATION_IMAGES = 256


def add_energy_options(group) -> None:
    """``--energy-model NAME|FILE`` and ``--memory {sram,dram}``."""
    group.add_argument("--energy-model", default=DEFAULT_ENERGY_MODEL, metavar="NAME|FILE",
                       help="cost model: a shipped name or a JSON/TOML file (default %(default)s)")
    group.add_argument("--memory", default="sram", choices=list(REQUIRED_MEMORY),
                       help="where weights are read from once per inference (default %(default)s)")


def add_sensitivity_options(group) -> None:
    """``--sensitivity`` and ``--calibration-images N`` of energy-aware plans."""
    group.add_argument("--sensitivity", choices=sorted(SENSITIVITIES), default=DEFAULT_SENSITIVITY,
                       help="how a layer's sparsity is judged: loss = measured cross-entropy "
                            "increase on training images; weight_error = relative L2 error of "
                            "the ternary weights (default %(default)s)")
    group.add_argument("--calibration-images", type=int, default=DEFAULT_CALIBRATION_IMAGES,
                       metavar="N",
                       help="training images for the loss sensitivity (default %(default)s)")


__all__ = ["add_energy_options", "add_sensitivity_options", "DEFAULT_SENSITIVITY",
           "DEFAULT_CALIBRATION_IMAGES"]
