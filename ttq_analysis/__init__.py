"""ttq_analysis: measures a model — dense MACs (fvcore), ternary operations, weight and
measured activation sparsity, and energy under a stated cost model — as one JSON-able
:class:`Analysis` that reports render without rerunning the model.

    from ttq_analysis import analyze
    a = analyze("runs/r20-ttq/best.pt", data=cifar10_split("test", ckpt_normalization))
    a.layers        # pandas DataFrame, one row per conv/linear layer
    a.network       # totals and averages (energies in µJ)
    a.to_json("analysis.json")
"""

from .analysis import CONVENTIONS, Analysis, analyze
from .energy import SCENARIOS, EnergyModel, available_energy_models, load_energy_model

__all__ = ["Analysis", "CONVENTIONS", "EnergyModel", "SCENARIOS", "analyze",
           "available_energy_models", "load_energy_model"]
