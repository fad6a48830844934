"""Batch-norm re-estimation: test accuracy against the images and transform it uses.

Loads one checkpoint, and for each (transform, images) pair re-estimates its batch-norm
running statistics from the stored ones' weights (nothing else changes: same weights,
same test images), then tests on the whole test split.  The first row is the checkpoint
as stored.  This is the measurement behind ``DEFAULT_BN_IMAGES`` and the training
transform in :mod:`ttq_core.train.bn_calibration`.  Run on demand, not in CI:

    OMP_NUM_THREADS=2 python benchmarks/bn_reestimation.py \\
        benchmarks/results/cpu-2026-11-27/resnet20_ttq_best.pt --data-dir ../shared/data \\
        --images 500 1000 2000 5000 10000 20000 --json out.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from ttq_core.checkpoint import load_model  # noqa: E402
from ttq_core.train import TrainConfig  # noqa: E402
from ttq_core.train.bn_calibration import recalibrate_batchnorm  # noqa: E402
from ttq_core.train.setup import evaluate, load_data  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--images", type=int, nargs="+", default=[1000, 2000, 5000, 10000, 20000])
    p.add_argument("--transforms", nargs="+", default=["train", "plain"],
                   choices=["train", "plain"],
                   help="train: random crop + flip as in training; plain: unaugmented")
    p.add_argument("--seeds", type=int, nargs="+", default=[0x7_7171],
                   help="calibration seeds (which images and crops)")
    p.add_argument("--what-if", type=float, default=None, metavar="T",
                   help="first ternarize the (FP) checkpoint untrained at threshold factor T "
                        "with least-squares scales, as ttq-report's what-if estimate does")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    loaded = load_model(args.checkpoint)
    model = loaded.model.eval()
    if args.what_if is not None:
        from ttq_core.quantize import ternarize
        model = ternarize(model, threshold=args.what_if).eval()
    stored = copy.deepcopy(model.state_dict())
    data = load_data(TrainConfig(dataset=loaded.checkpoint.get("dataset", "cifar10"),
                                 data_dir=args.data_dir, progress=False), torch.device("cpu"))
    rows = []

    def test(label, transform, images, seed, seconds):
        loss, acc = evaluate(model, data.test, 500, torch.device("cpu"))
        rows.append({"statistics": label, "transform": transform, "images": images,
                     "seed": seed, "test_acc": acc, "test_loss": loss,
                     "reestimate_seconds": seconds})
        print(f"{label:<48} {acc * 100:6.2f} %  loss {loss:.4f}  ({seconds:.1f} s)", flush=True)

    test("as stored", None, None, None, 0.0)
    for transform in args.transforms:
        for n in args.images:
            for seed in args.seeds:
                model.load_state_dict(stored)
                t0 = time.perf_counter()
                recalibrate_batchnorm(model, data.train, n, seed=seed,
                                      augment=transform == "train")
                test(f"re-estimated, {transform} transform, {n:,} images, seed {seed}",
                     transform, n, seed, time.perf_counter() - t0)
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint,
                                               "what_if_threshold": args.what_if,
                                               "test_images": len(data.test),
                                               "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
