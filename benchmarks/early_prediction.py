"""Issue 24, item 2: do a run's first epochs predict where its layers end up, and does a
layer's early sparsity trend predict how sensitive it is?

For every committed training log (or the ones given), Spearman's ρ across layers between
each layer's zero fraction / Wp / Wn after epoch k (1, 2, 5) and after the last epoch
(ttq_analysis.early_signal).  Then the per-layer sensitivity of ``ttq-plan``'s
energy-aware planner — the increase of the FP network's cross-entropy on training images
when only that layer is ternarized at sparsity r (least-squares scales), r in 0.5/0.7/0.9 —
and ρ between it and each run's early signals (value after epoch 1, after 5, the change
from 1 to 5, and the final value).

    python benchmarks/early_prediction.py --data-dir ../shared/data \\
        --out benchmarks/results/cpu-2026-11-28-issue24

Cost: reading the logs is instant; the sensitivity pass is 18 layers x 3 sparsities x one
forward pass over --calibration-images training images (1,000: about a minute on 2 CPU
cores).  Writes early_prediction.json and early_prediction.txt (refuses to overwrite them).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ttq_analysis.early_signal import early_vs_final, trend_vs  # noqa: E402

FP_CKPT = REPO / "benchmarks/results/h200-2026-11-26/resnet20_fp_best.pt"
DEFAULT_LOGS = [
    "benchmarks/results/cpu-2026-11-27/resnet20_ttq_log.jsonl",
    "benchmarks/results/h200-2026-11-26/ttq_log.jsonl",
    "benchmarks/results/h200-2026-11-26/ttq_slr01_log.jsonl",
    "benchmarks/results/h200-2026-11-26/ttq_ste_log.jsonl",
    "benchmarks/results/cpu-2026-11-28/resnet20_ttq_log.jsonl",
    "reports/examples/resnet20-grid-cpu/training/*/log.jsonl",
    "reports/examples/resnet20-sweep-cpu/training/t-0-*/log.jsonl",
]
GRID = (0.5, 0.7, 0.9)


def _logs(patterns: list[str]) -> list[Path]:
    out = []
    for p in patterns:
        out += sorted(Path(m) for m in glob.glob(str(REPO / p) if not Path(p).is_absolute() else p))
    return [p for p in out if p.is_file()]


def _label(path: Path) -> str:
    rel = path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
    return str(rel.parent.name if rel.name == "log.jsonl"
               else f"{rel.parent.name}/{rel.with_suffix('').name}")


def sensitivities(data_dir: str | None, images: int) -> dict[float, dict[str, float]]:
    from ttq_analysis.threshold_plan import calibration_batch, energy_aware_plan
    from ttq_core.checkpoint import load_model
    from ttq_core.data.splits import cifar10_split
    loaded = load_model(FP_CKPT)
    norm = (loaded.checkpoint or {}).get("normalization")
    data = cifar10_split("train", norm, data_dir, limit=images, progress=False)
    plan = energy_aware_plan(loaded.model, "1.0", sensitivity="loss",
                             calibration=calibration_batch(data, images), grid=GRID)
    curves = plan.details["curves"]
    return {r: {n: c["sensitivity"][i] for n, c in curves.items()} for i, r in enumerate(GRID)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logs", nargs="+", default=DEFAULT_LOGS, help="log.jsonl files or globs")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 source (calibration images)")
    p.add_argument("--calibration-images", type=int, default=1000)
    p.add_argument("--out", required=True, help="folder for early_prediction.{json,txt}")
    p.add_argument("--sensitivity-from", default=None, metavar="JSON",
                   help="reuse the sensitivities of an earlier early_prediction.json (same "
                        "FP checkpoint, grid and calibration images) instead of measuring")
    args = p.parse_args(argv)
    out = Path(args.out)
    for name in ("early_prediction.json", "early_prediction.txt"):
        if (out / name).exists():
            print(f"early_prediction: {out / name} exists; choose another --out", file=sys.stderr)
            return 1
    runs = {}
    for path in _logs(args.logs):
        history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if history and history[0].get("layers"):
            runs[_label(path)] = (path, history)
    if not runs:
        print("early_prediction: no log with per-layer history found", file=sys.stderr)
        return 1
    if args.sensitivity_from:
        earlier = json.loads(Path(args.sensitivity_from).read_text())
        if earlier["grid"] != list(GRID) or earlier["calibration_images"] != args.calibration_images:
            print(f"early_prediction: {args.sensitivity_from} used another grid or number of "
                  f"calibration images", file=sys.stderr)
            return 1
        sens = {r: earlier["sensitivity"][str(r)] for r in GRID}
    else:
        sens = sensitivities(args.data_dir, args.calibration_images)
    lines, result = [], {"grid": list(GRID), "calibration_images": args.calibration_images,
                         "fp_checkpoint": str(FP_CKPT.relative_to(REPO)), "runs": {},
                         "sensitivity": {str(r): s for r, s in sens.items()}}
    lines.append("Spearman's rho across layers: value after epoch k vs after the last epoch")
    lines.append(f"{'run':58s} {'epochs':>6s}  " + "  ".join(
        f"{key}@{k}" for key in ("frac_zero", "wp", "wn") for k in (1, 2, 5)))
    for label, (path, history) in runs.items():
        df = early_vs_final(history)
        cells = {(r.key, r.k): r.rho for r in df.itertuples()}
        final = int(df["final_epoch"].iloc[0]) if len(df) else len(history)
        lines.append(f"{label[:58]:58s} {final:>6d}  " + "  ".join(
            f"{cells.get((key, k), math.nan):>{len(key) + 2}.2f}" for key in ("frac_zero", "wp", "wn")
            for k in (1, 2, 5)))
        trends = {str(r): trend_vs(history, s) for r, s in sens.items()}
        result["runs"][label] = {"log": str(path.resolve().relative_to(REPO))
                                 if path.resolve().is_relative_to(REPO) else str(path),
                                 "final_epoch": final,
                                 "early_vs_final": df.to_dict(orient="records"),
                                 "sensitivity_vs_frac_zero": trends}
    lines.append("")
    lines.append("Spearman's rho across layers: loss sensitivity at sparsity r (FP network, one "
                 "layer ternarized) vs the layer's zero fraction after epoch 1, after 5, its "
                 "change 1->5, and its final value")
    for label, rec in result["runs"].items():
        for r, t in rec["sensitivity_vs_frac_zero"].items():
            lines.append(f"{label[:58]:58s} r={r}  at1 {t['at_start']:+.2f}  at5 "
                         f"{t['at_end']:+.2f}  trend {t['trend']:+.2f}  final {t['final']:+.2f}")
    lines.append("")
    lines.append("Sensitivity (nats) per layer at r = " + ", ".join(map(str, GRID)))
    for n in sens[GRID[0]]:
        lines.append(f"  {n:18s} " + "  ".join(f"{sens[r][n]:.4f}" for r in GRID))
    out.mkdir(parents=True, exist_ok=True)
    (out / "early_prediction.json").write_text(json.dumps(result, indent=1, default=float))
    (out / "early_prediction.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
