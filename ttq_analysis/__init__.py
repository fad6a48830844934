"""ttq_analysis: measures a model — dense MACs (fvcore), ternary operations, weight and
measured activation sparsity, and energy under a stated cost model — as one JSON-able
:class:`Analysis` that reports render without rerunning the model.

    from ttq_analysis import analyze
    a = analyze("runs/r20-ttq/best.pt", data=cifar10_split("test", ckpt_normalization))
    a.layers        # pandas DataFrame, one row per conv/linear layer
    a.network       # NetworkResult: a.network.counts.ternary_adds, .sparsity, .accuracy,
                    # .energy.ttq_measured.total_uJ (µJ per inference), .saving("measured")
    a.to_json("analysis.json")

    # the saving under other hardware: int8 activations, activation traffic in SRAM, ...
    a8 = analyze(model, data, precision="int8", act_memory="sram")
    matrix = scenario_matrix(a.layers, ["horowitz45", "jouppi7"])   # every combination
"""

from .analysis import CONVENTIONS, Analysis, analyze
from .results import NetworkResult, energy_saving, savings_over
from .energy import (ACT_MEMORY_LEVELS, ACTIVATION_PRECISIONS, SCENARIOS, EnergyModel,
                     available_energy_models, load_energy_model)
from .scenario_matrix import scenario_matrix

__all__ = ["Analysis", "NetworkResult", "energy_saving", "savings_over", "CONVENTIONS", "EnergyModel", "SCENARIOS", "analyze",
           "available_energy_models", "load_energy_model", "scenario_matrix",
           "ACTIVATION_PRECISIONS", "ACT_MEMORY_LEVELS"]
