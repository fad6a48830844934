"""``ttq-plan``: choose per-layer sparsities for TTQ fine-tuning under an energy budget and
write a threshold-plan file for ``ttq-train --threshold-plan`` (see ``ttq-plan --help``)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ttq_core.errors import ConfigError, OutputError, TTQError, describe_os_error

EPILOG = """\
examples:
  # per-layer sparsity so the ternary network costs 60%% of the t=0.05 network's energy,
  # layers ranked by their measured loss sensitivity (256 training images)
  ttq-plan runs/r20-fp/best.pt --energy-budget 0.6 --out plans/r20-e60.json
  ttq-train --mode ttq --init runs/r20-fp/best.pt --threshold-plan plans/r20-e60.json \\
            --out runs/r20-e60

  # the same budget with one sparsity for every layer (the comparison point)
  ttq-plan runs/r20-fp/best.pt --energy-budget 0.6 --method uniform --out plans/r20-u60.json

  # an absolute budget in µJ per inference, weights read from DRAM, data-free sensitivity
  ttq-plan fp.pt --energy-budget 25uJ --memory dram --sensitivity weight_error --out p.json

  # planned for the hardware it will run on: int8 activations, activations in SRAM
  ttq-plan fp.pt --energy-budget 0.7 --activations int8 --act-memory sram --out p-int8.json

energy: the ttq_dense scenario of ttq-report (dense activations, the paper's convention),
counted exactly for the codes each sparsity gives, under the hardware scenario of
--energy-model/--memory/--activations/--act-memory (activation memory, when counted, is
plan-independent, so it makes a fractional budget harder to reach); budgets as a fraction
refer to the same model ternarized at --reference-threshold in every layer. The plan uses the 'sparsity'
rule, so fine-tuning keeps each layer's planned fraction of zero weights.
"""


def build_parser() -> argparse.ArgumentParser:
    from ttq_core.cli_options import add_data_dir, add_progress

    from .cli_options import add_energy_options, add_sensitivity_options
    from .threshold_plan import DEFAULT_GRID
    p = argparse.ArgumentParser(
        prog="ttq-plan", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Choose a target weight sparsity per ternary layer from a trained FP "
                    "checkpoint: energy-aware (sparsity where the cost model puts the energy, "
                    "sensitive layers kept denser) or uniform, under an energy budget.",
        epilog=EPILOG)
    p.add_argument("checkpoint", metavar="FP_CKPT", help="the FP checkpoint TTQ fine-tunes from")
    p.add_argument("--energy-budget", required=True, metavar="FRACTION|uJ",
                   help="ttq_dense energy per inference: a fraction of the reference network's "
                        "(e.g. 0.6) or an absolute figure (e.g. 25uJ)")
    p.add_argument("--method", choices=["energy-aware", "uniform"], default="energy-aware",
                   help="energy-aware per-layer sparsity or one sparsity for all (default %(default)s)")
    add_sensitivity_options(p)
    p.add_argument("--grid", type=float, nargs="+", default=list(DEFAULT_GRID), metavar="R",
                   help="candidate sparsities per layer (default 0 0.1 ... 0.9 0.95)")
    p.add_argument("--reference-threshold", type=float, default=0.05, metavar="T",
                   help="t of the reference network budget fractions refer to (default %(default)s)")
    p.add_argument("--as-threshold", action="store_true",
                   help="write the plan as per-layer threshold factors t (Δ = t·max|w|, same "
                        "codes at the start) instead of fixed sparsities: the zero fraction "
                        "may then move during fine-tuning")
    p.add_argument("--keep-fp", action="append", default=None, metavar="GLOB",
                   help="layers kept full precision (default: first conv and last linear)")
    add_energy_options(p)
    p.add_argument("--arch", default=None, help="architecture of a plain state_dict input")
    add_data_dir(p, help="CIFAR-10 source for calibration images (default: $TTQ_DATA_DIR "
                         "or the cache)")
    p.add_argument("--out", required=True, metavar="PLAN.json", help="plan file to write")
    add_progress(p)
    return p


def make_plan(checkpoint: str, *, energy_budget: str, method: str = "energy-aware",
              sensitivity: str = "loss", calibration_images: int = 256, grid=None,
              reference_threshold: float = 0.05, keep_fp=None, energy_model=None,
              memory: str = "sram", arch: str | None = None, data_dir=None,
              progress: bool = True, as_threshold: bool = False, precision: str = "fp32",
              act_memory: str = "none"):
    """Load ``checkpoint`` and plan (the work behind ``ttq-plan``; used by ``ttq-sweep``)."""
    from ttq_core.checkpoint import load_model
    from .energy import DEFAULT_ENERGY_MODEL, load_energy_model
    from .threshold_plan import (DEFAULT_GRID, SENSITIVITIES, EnergyBudget, _check_grid,
                                 calibration_batch, energy_aware_plan, uniform_plan)
    # everything that can fail cheaply fails before any model or data work
    budget = EnergyBudget.parse(energy_budget)
    grid = _check_grid(grid or DEFAULT_GRID)
    energy_model = load_energy_model(energy_model or DEFAULT_ENERGY_MODEL)
    from .energy import check_energy_options
    check_energy_options(energy_model, memory, precision, act_memory)
    if not 0 < reference_threshold < 1:
        raise ConfigError(f"--reference-threshold must be in (0, 1), got {reference_threshold}")
    if sensitivity not in SENSITIVITIES:
        raise ConfigError(f"unknown sensitivity {sensitivity!r}; known: {', '.join(SENSITIVITIES)}")
    if calibration_images < 1:
        raise ConfigError(f"--calibration-images must be at least 1, got {calibration_images}")
    loaded = load_model(checkpoint, arch=arch)
    if loaded.is_ternary:
        raise ConfigError(f"{checkpoint} is a ternary checkpoint; plan from the FP checkpoint "
                          f"TTQ fine-tunes from")
    common = dict(reference_threshold=reference_threshold, keep_fp=keep_fp,
                  energy_model=energy_model, memory=memory, precision=precision,
                  act_memory=act_memory)
    if method == "uniform":
        plan = uniform_plan(loaded.model, budget, **common)
    else:
        calibration = None
        if sensitivity == "loss":
            from ttq_core.data.splits import cifar10_split
            norm = (loaded.checkpoint or {}).get("normalization")
            data = cifar10_split("train", norm, data_dir, limit=max(calibration_images, 10),
                                 progress=progress)
            calibration = calibration_batch(data, calibration_images)
        plan = energy_aware_plan(loaded.model, budget, sensitivity=sensitivity,
                                 calibration=calibration, grid=grid,
                                 progress=progress, **common)
    if as_threshold:
        from .threshold_plan import as_threshold_plan
        plan = as_threshold_plan(plan, loaded.model)
    plan.details["from_checkpoint"] = str(checkpoint)
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from ttq_core.output_file import check_output_file
        from ttq_core.quantize.plan_file import PLAN_FORMAT
        from .threshold_plan import plan_summary
        # before any work: never the input checkpoint, a folder or someone else's file
        check_output_file(args.out, "--out", PLAN_FORMAT, inputs=[args.checkpoint])
        plan = make_plan(args.checkpoint, energy_budget=args.energy_budget, method=args.method,
                         sensitivity=args.sensitivity, calibration_images=args.calibration_images,
                         grid=args.grid, reference_threshold=args.reference_threshold,
                         keep_fp=args.keep_fp, energy_model=args.energy_model,
                         memory=args.memory, arch=args.arch, data_dir=args.data_dir,
                         progress=not args.no_progress, as_threshold=args.as_threshold,
                         precision=args.activations, act_memory=args.act_memory)
        try:
            plan.save(args.out)
        except OSError as e:  # name the plan, not the temporary file beside it
            raise OutputError(f"--out {args.out}: cannot write it ({e.strerror or e})") from None
    except TTQError as e:
        print(f"ttq-plan: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # permission, not a folder, disk full, ...: one line naming the path
        print(f"ttq-plan: error: {describe_os_error(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ttq-plan: interrupted; no plan was written", file=sys.stderr)
        return 130
    print(plan_summary(plan))
    print(f"plan: {args.out}  (train it: ttq-train --mode ttq --init {args.checkpoint} "
          f"--threshold-plan {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
