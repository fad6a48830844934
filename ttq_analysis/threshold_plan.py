"""Choose each ternary layer's sparsity automatically: uniform or energy-aware plans.

Both planners start from a trained FP model (the one TTQ fine-tunes from) and return a
:class:`ttq_core.quantize.plan_file.ThresholdPlan` with the ``sparsity`` rule (Δ = the
r-quantile of |w|, so a layer keeps exactly its planned fraction of zero weights through
fine-tuning), which ``ttq-train --threshold-plan`` trains.

Energy model of a plan (what a budget constrains)
-------------------------------------------------
The ``ttq_dense`` scenario of :func:`ttq_analysis.energy.energy_columns` (pJ per inference
of one image, dense activations as in the paper): FP layers cost MACs × (mult + add),
ternary layers cost ``adds × add + mults × mult`` with the exact counts of
:func:`ttq_analysis.ternary_ops.dense_ternary_ops` for the codes the sparsity gives, and
every weight is read once from ``memory``.  Only the ternary compute depends on the plan,
so for each layer and candidate sparsity the codes are built and counted exactly: the
plan's ``predicted_uJ`` equals what :func:`ttq_analysis.analyze` reports for the
ternarized model before fine-tuning (a test pins the equality).  Fine-tuning keeps each
layer's zero count, so the energy moves only by how the zeros spread over output
channels.  Per output, a filter with n nonzero terms needs n − 1 additions, so with the
layer's total fixed, every filter left with no nonzero weight costs one more addition
per output (its first, "free" term is gone), and every filter gaining its first weight
of a sign one more multiplication (losing one saves it).  The drift is
tiny but can cross a tight budget (+0.014 % in the ResNet-20 example sweep); the sweep
report shows each plan's energy before and after fine-tuning.

Budgets are per-inference ttq_dense totals: a fraction of the *reference* network (the
same model ternarized at one threshold factor t for every layer, default 0.05) or an
absolute figure in µJ.

Energy-aware plan
-----------------
For every ternary layer l and candidate sparsity r in a grid, a *sensitivity* s_l(r)
(registry :data:`SENSITIVITIES`) says how much accuracy that layer's sparsity costs:

``loss``          (default) mean cross-entropy on calibration images (train split, never
                  test) of the FP network with only layer l ternarized at r
                  (least-squares Wp/Wn, batch norm in eval mode), minus the FP network's
                  loss: one layer perturbed at a time, as in mixed-precision sensitivity
                  analyses.  The curves are U-shaped: very dense ternary layers (Δ near 0)
                  approximate w badly too, so the least sensitive r is often 0.4-0.6.
``weight_error``  ‖w − w_t‖² / ‖w‖² of layer l at r (data-free proxy).

Then a greedy marginal-cost search (the classic knapsack heuristic): every layer starts at
its least sensitive grid point; while the energy exceeds the budget, the move (one layer
to a sparser grid point) with the smallest sensitivity increase per pJ saved is taken;
afterwards, layers are moved back to less sensitive points while the budget still holds.
When every layer's least sensitive point already fits, the plan stays there and comes in
under budget (``predicted_uJ`` < ``budget_uJ``): more energy would buy no accuracy.
Layers whose sparsity costs accuracy and saves little energy therefore stay dense; cheap
sparsity goes where the energy is.  The uniform plan, for comparison, gives every layer
the same r (bisection on r so the budget is met).

Size: a little over 450 lines: the two planners share the layer curves, the budget
arithmetic and the sensitivity registry, which belong together.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ttq_core.errors import ConfigError
from ttq_core.quantize import TernaryQuantizer, ternarize, ternary_layers
from ttq_core.quantize.plan_file import ThresholdPlan

from .energy import DEFAULT_ENERGY_MODEL, EnergyModel, load_energy_model, ternary_compute_pJ
from .results import PJ_PER_UJ
from .ternary_ops import dense_ternary_ops

__all__ = ["EnergyBudget", "SENSITIVITIES", "DEFAULT_GRID", "LayerCurve", "energy_aware_plan",
           "uniform_plan", "as_threshold_plan"]

DEFAULT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass(frozen=True)
class EnergyBudget:
    """A ttq_dense energy budget: ``fraction`` of the reference network's energy, or an
    absolute ``uJ`` per inference.  Parse ``"0.7"`` or ``"25uJ"`` with :meth:`parse`."""

    fraction: float | None = None
    uJ: float | None = None

    @classmethod
    def parse(cls, text: str | float) -> "EnergyBudget":
        if isinstance(text, (int, float)):
            text = repr(float(text))
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(uJ|µJ)?\s*", str(text))
        if not m:
            raise ConfigError(f"energy budget {text!r}: give a fraction of the reference "
                              f"network's energy (e.g. 0.7) or µJ per inference (e.g. 25uJ)")
        value = float(m.group(1))
        if m.group(2):
            if not value > 0:
                raise ConfigError(f"energy budget {text!r} must be > 0 µJ")
            return cls(uJ=value)
        if not 0 < value <= 1:
            raise ConfigError(f"energy budget {text!r}: a fraction must be in (0, 1] "
                              f"(append uJ for an absolute budget)")
        return cls(fraction=value)

    def resolve_pJ(self, reference_pJ: float) -> float:
        return self.uJ * PJ_PER_UJ if self.uJ is not None else self.fraction * reference_pJ

    def __str__(self) -> str:
        return f"{self.uJ:g} µJ" if self.uJ is not None else f"{self.fraction:g} × reference"


# ----------------------------------------------------------------------------- ternary math

def _ternary_at(w: torch.Tensor, r: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes int8, ternary weight) of latent ``w`` under the ``sparsity`` rule at ``r``,
    with the scales TTQ starts from: the toolkit's own quantizer (its Δ and its
    least-squares Wp/Wn initialisation), so a plan sees exactly what training will."""
    q = TernaryQuantizer("sparsity", r)
    q.init_scales_(w)
    delta = q.delta(w)
    pos, neg = w > delta, w < -delta
    codes = pos.to(torch.int8) - neg.to(torch.int8)
    return codes, q.wp.detach() * pos.to(w.dtype) - q.wn.detach() * neg.to(w.dtype)


# ----------------------------------------------------------------------------- energy

@dataclass
class _EnergyBasis:
    fixed_pJ: float                 # FP-layer compute + all weight memory (plan-independent)
    positions: dict[str, int]       # output positions per ternary layer
    add_pJ: float
    mult_pJ: float


def _energy_basis(model: nn.Module, fp_layers: Sequence[str], input_shape, em: EnergyModel,
                  memory: str, precision: str, reference_t: float,
                  act_memory: str = "none") -> tuple[_EnergyBasis, float]:
    """Plan-independent energy and the reference network's ttq_dense total (pJ): FP-layer
    energy, all weight memory and (dense) activation memory do not depend on the plan."""
    from .analysis import analyze
    from .energy import activation_precision
    ref = ternarize(copy.deepcopy(model), threshold=reference_t, keep_fp=list(fp_layers))
    a = analyze(ref, data=None, input_shape=input_shape, energy_model=em, device="cpu",
                memory=memory, precision=precision, act_memory=act_memory, count_ops=False,
                progress=False)
    df = a.layers.set_index("layer")
    tern = df[df["ternary"]]
    fixed = float(df.loc[~df["ternary"], "ttq_dense_total_pJ"].sum()
                  + tern["ttq_dense_memory_pJ"].sum() + tern["ttq_dense_act_memory_pJ"].sum())
    prec = activation_precision(precision)
    basis = _EnergyBasis(fixed, {n: int(p) for n, p in tern["output_positions"].items()},
                         em.op(prec.acc_add), em.op(prec.mult))
    return basis, float(df["ttq_dense_total_pJ"].sum())


def _compute_pJ(layer: nn.Module, codes: torch.Tensor, positions: int, basis: _EnergyBasis) -> float:
    adds, mults = dense_ternary_ops(layer, codes, positions)
    return ternary_compute_pJ(adds, mults, basis.add_pJ, basis.mult_pJ)


# ----------------------------------------------------------------------------- sensitivity

@dataclass
class LayerCurve:
    """One ternary layer's candidates: sparsity grid, ternary compute energy (pJ) and
    sensitivity at each grid point."""

    name: str
    grid: list[float]
    compute_pJ: list[float]
    sensitivity: list[float]


SensitivityFn = Callable[..., dict[str, list[float]]]


@torch.no_grad()
def _sensitivity_weight_error(model, targets, grid, **_) -> dict[str, list[float]]:
    out = {}
    for name, layer in targets.items():
        w = layer.weight.detach().float()
        norm = float((w * w).sum()) or 1.0
        errs = []
        for r in grid:
            _, wt = _ternary_at(w, r)
            errs.append(float(((w - wt) ** 2).sum()) / norm)
        out[name] = errs
    return out


@torch.no_grad()
def _sensitivity_loss(model, targets, grid, *, calibration, progress=False,
                      **_) -> dict[str, list[float]]:
    if calibration is None:
        raise ConfigError("the 'loss' sensitivity needs calibration images (or use "
                          "sensitivity='weight_error')")
    x, y = calibration
    model.eval()

    def loss() -> float:
        total = 0.0
        for i in range(0, x.shape[0], 256):
            total += float(F.cross_entropy(model(x[i:i + 256]).float(), y[i:i + 256],
                                           reduction="sum"))
        return total / x.shape[0]

    base = loss()
    out = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(targets) * len(grid), desc="layer sensitivity", leave=False,
                   dynamic_ncols=True)
    try:
        for n, m in targets.items():
            latent = m.weight.detach().clone()
            w = latent.float()
            values = []
            try:
                for r in grid:
                    _, wt = _ternary_at(w, r)
                    m.weight.copy_(wt.to(m.weight.dtype))
                    values.append(loss() - base)
                    if bar is not None:
                        bar.update(1)
            finally:
                m.weight.copy_(latent)
            out[n] = values
    finally:
        if bar is not None:
            bar.close()
    return out


SENSITIVITIES: dict[str, SensitivityFn] = {
    "loss": _sensitivity_loss,
    "weight_error": _sensitivity_weight_error,
}
"""Sensitivity measures by name: fn(model, targets, grid, calibration=, progress=) ->
{layer: [sensitivity per grid point]} (larger = this sparsity hurts more)."""


# ----------------------------------------------------------------------------- planning

def _prepare(model: nn.Module, keep_fp, input_shape, energy_model, memory, precision,
             reference_t, act_memory="none"):
    if any(True for _ in ternary_layers(model)):
        raise ConfigError("plan from the FP model that TTQ fine-tunes from, not a ternary one")
    em = load_energy_model(energy_model)
    from .energy import check_energy_options
    check_energy_options(em, memory, precision, act_memory)
    if input_shape is None:
        from ttq_core.models import list_models, model_spec
        arch = getattr(model, "arch_name", None)
        if arch is None or arch not in list_models():
            raise ConfigError("input_shape is required for a model outside the registry")
        input_shape = tuple(model_spec(arch).input_size)
    probe = ternarize(copy.deepcopy(model), keep_fp=keep_fp)  # resolves keep_fp like ternarize
    fp_layers = [n for n, m in probe.named_modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear)) and n not in dict(ternary_layers(probe))]
    ternary_names = [n for n, _ in ternary_layers(probe)]
    model = copy.deepcopy(model).cpu().float()
    targets = {n: model.get_submodule(n) for n in ternary_names}
    basis, ref_pJ = _energy_basis(model, fp_layers, input_shape, em, memory, precision, reference_t,
                                  act_memory)
    return model, targets, fp_layers, basis, ref_pJ, em, tuple(input_shape)


@torch.no_grad()
def _compute_curve(layer: nn.Module, grid: Sequence[float], positions: int,
                   basis: _EnergyBasis) -> list[float]:
    w = layer.weight.detach().float()
    return [_compute_pJ(layer, _ternary_at(w, r)[0], positions, basis)
            for r in grid]


def _check_grid(grid: Sequence[float]) -> list[float]:
    grid = sorted({float(r) for r in grid})
    if not grid or any(not 0 <= r < 1 for r in grid):
        raise ConfigError(f"sparsity grid must hold fractions in [0, 1), got {grid}")
    return grid


def _details(budget, budget_pJ, ref_pJ, predicted_pJ, reference_t, em, memory, precision,
             input_shape, extra, act_memory="none") -> dict:
    return {"scenario": "ttq_dense", "budget": str(budget), "budget_uJ": budget_pJ / PJ_PER_UJ,
            "reference_threshold": reference_t, "reference_uJ": ref_pJ / PJ_PER_UJ,
            "predicted_uJ": predicted_pJ / PJ_PER_UJ, "predicted_fraction": predicted_pJ / ref_pJ,
            "energy_model": em.name, "memory": memory, "precision": precision,
            "act_memory": act_memory, "input_shape": list(input_shape), **extra}


def uniform_plan(model: nn.Module, budget: EnergyBudget | str | float, *,
                 reference_threshold: float = 0.05, keep_fp=None, input_shape=None,
                 energy_model=DEFAULT_ENERGY_MODEL, memory: str = "sram", precision: str = "fp32",
                 act_memory: str = "none", tolerance: float = 1e-4) -> ThresholdPlan:
    """One sparsity r for every ternary layer: the smallest r (to ``tolerance``) whose
    ttq_dense energy meets ``budget``."""
    budget = budget if isinstance(budget, EnergyBudget) else EnergyBudget.parse(budget)
    model, targets, fp_layers, basis, ref_pJ, em, shape = _prepare(
        model, keep_fp, input_shape, energy_model, memory, precision, reference_threshold,
        act_memory)
    budget_pJ = budget.resolve_pJ(ref_pJ)

    def energy(r: float) -> float:
        return basis.fixed_pJ + sum(_compute_curve(m, [r], basis.positions[n], basis)[0]
                                    for n, m in targets.items())

    lo, hi = 0.0, 1.0 - 1e-9
    if energy(lo) <= budget_pJ:
        r = lo
    else:
        if energy(hi) > budget_pJ:
            raise ConfigError(f"energy budget {budget} ({budget_pJ / PJ_PER_UJ:.4g} µJ) is "
                              f"unreachable: the FP layers and weight memory alone cost "
                              f"{basis.fixed_pJ / PJ_PER_UJ:.4g} µJ")
        while hi - lo > tolerance:
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if energy(mid) <= budget_pJ else (mid, hi)
        r = round(hi, 6)
    predicted = energy(r)
    details = _details(budget, budget_pJ, ref_pJ, predicted, reference_threshold, em, memory,
                       precision, shape, {}, act_memory)
    return ThresholdPlan("sparsity", {n: r for n in targets}, fp_layers, "uniform", details)


def energy_aware_plan(model: nn.Module, budget: EnergyBudget | str | float, *,
                      sensitivity: str = "loss", calibration: tuple[torch.Tensor, torch.Tensor] | None = None,
                      grid: Sequence[float] = DEFAULT_GRID, reference_threshold: float = 0.05,
                      keep_fp=None, input_shape=None, energy_model=DEFAULT_ENERGY_MODEL,
                      memory: str = "sram", precision: str = "fp32", act_memory: str = "none",
                      progress: bool = False) -> ThresholdPlan:
    """Per-layer sparsity meeting a ttq_dense energy ``budget`` with the least total
    sensitivity (greedy, see the module doc).

    Args:
        model: the trained FP model (``arch_name`` set, or pass ``input_shape``).
        budget: :class:`EnergyBudget`, ``"0.7"`` (fraction of the reference network's
            energy) or ``"25uJ"``.
        sensitivity: a name in :data:`SENSITIVITIES`.
        calibration: ``(images, labels)`` already normalised, for ``"loss"``; use training
            images, never the test split the accuracy is reported on.
        grid: candidate sparsities per layer.
        reference_threshold: t of the reference network (budget fractions refer to it).
    """
    budget = budget if isinstance(budget, EnergyBudget) else EnergyBudget.parse(budget)
    if sensitivity not in SENSITIVITIES:
        raise ConfigError(f"unknown sensitivity {sensitivity!r}; known: {', '.join(SENSITIVITIES)}")
    grid = _check_grid(grid)
    model, targets, fp_layers, basis, ref_pJ, em, shape = _prepare(
        model, keep_fp, input_shape, energy_model, memory, precision, reference_threshold,
        act_memory)
    budget_pJ = budget.resolve_pJ(ref_pJ)
    if calibration is not None:
        calibration = (calibration[0].float().cpu(), calibration[1].long().cpu())
    sens = SENSITIVITIES[sensitivity](model, targets, grid, calibration=calibration,
                                      progress=progress)
    curves = [LayerCurve(n, grid, _compute_curve(m, grid, basis.positions[n], basis), sens[n])
              for n, m in targets.items()]
    choice = _greedy(curves, basis.fixed_pJ, budget_pJ, budget)
    predicted = basis.fixed_pJ + sum(c.compute_pJ[j] for c, j in zip(curves, choice))
    table = [{"layer": c.name, "sparsity": c.grid[j], "compute_uJ": c.compute_pJ[j] / PJ_PER_UJ,
              "sensitivity": c.sensitivity[j]} for c, j in zip(curves, choice)]
    extra = {"sensitivity": sensitivity, "grid": grid,
             "calibration_images": int(calibration[0].shape[0]) if calibration is not None else 0,
             "layers": table,
             "curves": {c.name: {"compute_uJ": [e / PJ_PER_UJ for e in c.compute_pJ],
                                 "sensitivity": c.sensitivity} for c in curves}}
    details = _details(budget, budget_pJ, ref_pJ, predicted, reference_threshold, em, memory,
                       precision, shape, extra, act_memory)
    return ThresholdPlan("sparsity", {c.name: c.grid[j] for c, j in zip(curves, choice)},
                         fp_layers, "energy-aware", details)


def _greedy(curves: list[LayerCurve], fixed_pJ: float, budget_pJ: float, budget) -> list[int]:
    """Grid index per layer: marginal-cost descent to the budget, then a backfill pass."""
    floor = fixed_pJ + sum(min(c.compute_pJ) for c in curves)
    if floor > budget_pJ * (1 + 1e-12):
        raise ConfigError(f"energy budget {budget} ({budget_pJ / PJ_PER_UJ:.4g} µJ) is "
                          f"unreachable: even at the sparsest grid point of every layer the "
                          f"network costs {floor / PJ_PER_UJ:.4g} µJ")
    # start: each layer at its least sensitive point (ties: the cheaper one)
    choice = [min(range(len(c.grid)), key=lambda j, c=c: (c.sensitivity[j], c.compute_pJ[j]))
              for c in curves]

    def total() -> float:
        return fixed_pJ + sum(c.compute_pJ[j] for c, j in zip(curves, choice))

    while total() > budget_pJ:
        best = None
        for i, c in enumerate(curves):
            cur = choice[i]
            for j in range(len(c.grid)):
                saved = c.compute_pJ[cur] - c.compute_pJ[j]
                if saved <= 0:
                    continue
                ratio = (c.sensitivity[j] - c.sensitivity[cur]) / saved
                key = (ratio, -saved)
                if best is None or key < best[0]:
                    best = (key, i, j)
        if best is None:  # cannot happen while floor <= budget; guard against a loop
            break
        choice[best[1]] = best[2]
    # backfill: spend leftover budget on the moves that lower sensitivity most per pJ
    while True:
        slack = budget_pJ - total()
        best = None
        for i, c in enumerate(curves):
            cur = choice[i]
            for j in range(len(c.grid)):
                gain = c.sensitivity[cur] - c.sensitivity[j]
                extra = c.compute_pJ[j] - c.compute_pJ[cur]
                if gain <= 0 or extra > slack:
                    continue
                key = (-gain / max(extra, 1e-9), extra)
                if best is None or key < best[0]:
                    best = (key, i, j)
        if best is None:
            break
        choice[best[1]] = best[2]
    return choice


def calibration_batch(data, images: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``images`` (inputs, labels) of a DeviceData-like ``data`` on CPU."""
    xs, ys, n = [], [], 0
    for x, y in data.batches(min(images, 512)):
        xs.append(x.float().cpu())
        ys.append(y.cpu())
        n += x.shape[0]
        if n >= images:
            break
    return torch.cat(xs)[:images], torch.cat(ys)[:images]


@torch.no_grad()
def as_threshold_plan(plan: ThresholdPlan, model: nn.Module) -> ThresholdPlan:
    """The same per-layer choice as threshold factors: t_l = Δ_l / max|w_l|, with Δ_l the
    ``sparsity`` rule's threshold on ``model``'s weights (the FP model planned from).

    At the start of fine-tuning both plans give the same codes; afterwards the ``threshold``
    rule lets each layer's zero fraction move with its latent weights (the budget is then
    met only at the start), while the ``sparsity`` rule holds it.
    """
    if plan.rule != "sparsity":
        raise ConfigError(f"only a sparsity plan converts to thresholds, not {plan.rule!r}")
    values = {}
    for name, r in plan.layers.items():
        try:
            w = model.get_submodule(name).weight.detach().float()
        except AttributeError:
            raise ConfigError(f"the plan's layer {name!r} is not in the model") from None
        top = float(w.abs().amax())
        if top == 0:
            raise ConfigError(f"layer {name!r} has only zero weights; no threshold factor exists")
        t = float(TernaryQuantizer("sparsity", r).delta(w)) / top
        values[name] = min(t, 1 - 1e-9)  # Δ = max|w| (all zero) is t -> 1, outside [0, 1)
    details = {**plan.details, "converted_from": "sparsity",
               "sparsity": dict(plan.layers)}
    return ThresholdPlan("threshold", values, plan.keep_fp, plan.method, details)


def plan_summary(plan: ThresholdPlan) -> str:
    """A few lines for the terminal: the budget, the prediction, and r per layer."""
    d = plan.details
    lines = [f"{plan.method} plan ({plan.rule} rule): predicted {d.get('predicted_uJ', math.nan):.4g} µJ "
             f"per inference (ttq_dense, {d.get('energy_model')}, weights {d.get('memory')}, "
             f"{d.get('precision', 'fp32')} activations"
             + (f", activations in {d['act_memory']}" if d.get("act_memory", "none") != "none" else "")
             + ") = "
             f"{d.get('predicted_fraction', math.nan):.3f} × the t={d.get('reference_threshold')} "
             f"reference ({d.get('reference_uJ', math.nan):.4g} µJ); budget {d.get('budget')}"]
    width = max(len(n) for n in plan.layers)
    what = "sparsity" if plan.rule == "sparsity" else "t"
    for n, r in plan.layers.items():
        lines.append(f"  {n:<{width}}  {what} {r:.4g}")
    return "\n".join(lines)

