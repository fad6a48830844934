"""Fidelity benchmark: does TTQ fine-tuning behave like the published method?

Fine-tunes one FP checkpoint under named settings (:data:`SETTINGS`) and prints, side by
side, the test accuracy and the mean fraction of zero weights after every epoch, so a
collapse of weight sparsity (the failure of least-squares-initialised scales) shows at a
glance.  Run on demand, not in CI; on 2 CPU cores four epochs on 10,000 images take
about 2 minutes per setting.

    python benchmarks/fidelity.py --init benchmarks/results/h200-2026-11-26/resnet20_fp_best.pt \\
        --data-dir ../shared/data --limit-train 10000 --limit-test 2000 --epochs 4 \\
        --out /tmp/fidelity --json benchmarks/results/fidelity.json

``--settings`` picks a subset; ``--seeds 0 1`` repeats each; ``--limit-test 0`` tests on
the whole test split.  Every run is an ordinary ``ttq-train`` run folder under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ttq_core.train import TrainConfig  # noqa: E402
from ttq_core.train.loop import train  # noqa: E402


@dataclass(frozen=True)
class Setting:
    """One fine-tuning recipe: TrainConfig fields that differ from ttq-train's defaults."""

    name: str
    description: str
    overrides: dict = field(default_factory=dict)


SETTINGS = {s.name: s for s in (
    Setting("before", "the toolkit's old defaults: least-squares Wp/Wn, scale LR x0.01 "
            "without decay, LR 0.01, no BN re-estimation",
            dict(scale_init="least-squares", scale_lr_mult=0.01, wd_scales=False, lr=0.01,
                 bn_recal_images=0)),
    Setting("one-lr0.01", "Wp = Wn = 1, scales in the weights' LR and decay, LR 0.01",
            dict(lr=0.01)),
    Setting("defaults", "today's defaults: Wp = Wn = 1, scales in the weights' LR and decay, "
            "LR 0.1 (the authors' recipe)", {}),
    Setting("one-ste", "defaults with plain straight-through gradients (--no-grad-scaling)",
            dict(grad_scaling=False)),
    Setting("lsq", "defaults with least-squares Wp/Wn", dict(scale_init="least-squares")),
    Setting("lsq-ste", "least-squares Wp/Wn and --no-grad-scaling",
            dict(scale_init="least-squares", grad_scaling=False)),
)}
TABLE_ORDER = ["before", "one-lr0.01", "defaults", "one-ste", "lsq-ste"]
GRID = ["defaults", "one-ste", "lsq", "lsq-ste"]  # scale init x gradient scaling


def mean_zero(entry: dict) -> float:
    layers = entry["layers"]
    return sum(v["frac_zero"] for v in layers.values()) / len(layers)


def run(args) -> list[dict]:
    rows = []
    for name in args.settings:
        s = SETTINGS[name]
        for seed in args.seeds:
            out = Path(args.out) / f"{name}-seed{seed}"
            cfg = TrainConfig(mode="ttq", init=args.init, data_dir=args.data_dir,
                              epochs=args.epochs, limit_train=args.limit_train or None,
                              limit_test=args.limit_test or None, seed=seed, out=str(out),
                              progress=False, device=args.device, **s.overrides)
            resume = (out / "last.pt").exists()
            ckpt = train(cfg if not resume else TrainConfig(out=str(out), resume=True,
                                                            epochs=args.epochs, progress=False))
            h = ckpt["history"]
            rows.append({"setting": name, "seed": seed, "description": s.description,
                         "test_acc": [e["test_acc"] for e in h],
                         "mean_zero": [mean_zero(e) for e in h],
                         "wp_range": [min(v["wp"] for v in h[-1]["layers"].values()),
                                      max(v["wp"] for v in h[-1]["layers"].values())],
                         "wn_range": [min(v["wn"] for v in h[-1]["layers"].values()),
                                      max(v["wn"] for v in h[-1]["layers"].values())],
                         "test_images": ckpt["metrics"]["test_images"],
                         "train_images": ckpt["metrics"]["train_images"]})
            print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict) -> str:
    z = r["mean_zero"]
    return (f"{r['setting']:<11} seed {r['seed']}  test acc {r['test_acc'][-1]:.4f}  "
            f"mean zero {z[0]:.3f} -> {z[-1]:.3f} ({z[-1] / z[0]:.2f}x)  "
            f"Wp {r['wp_range'][0]:.3g}..{r['wp_range'][1]:.3g}")


def table(rows: list[dict]) -> str:
    """Markdown: one line per setting, mean (and range) over seeds."""
    out = ["| setting | seeds | test acc. (last epoch) | mean zero fraction, epoch 1 -> last |",
           "| --- | --- | --- | --- |"]
    for name in dict.fromkeys(r["setting"] for r in rows):
        rs = [r for r in rows if r["setting"] == name]
        accs = [r["test_acc"][-1] for r in rs]
        acc = f"{100 * statistics.mean(accs):.1f} %"
        if len(accs) > 1:
            acc += f" ({100 * min(accs):.1f}-{100 * max(accs):.1f})"
        z0 = statistics.mean(r["mean_zero"][0] for r in rs)
        z1 = statistics.mean(r["mean_zero"][-1] for r in rs)
        out.append(f"| {name}: {rs[0]['description']} | {len(rs)} | {acc} | "
                   f"{z0:.3f} -> {z1:.3f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="settings:\n" + "\n".join(
                                    f"  {s.name:<11} {s.description}" for s in SETTINGS.values()))
    p.add_argument("--init", required=True, help="the FP checkpoint to fine-tune from")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--settings", nargs="+", default=TABLE_ORDER, choices=list(SETTINGS),
                   help="settings to run (default: the issue-10 table; 'grid' settings: "
                        + " ".join(GRID) + ")")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--limit-train", type=int, default=10000, help="0: all training images")
    p.add_argument("--limit-test", type=int, default=2000, help="0: all test images")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="folder for the run folders")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    rows = run(args)
    print()
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
