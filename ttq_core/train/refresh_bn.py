"""``ttq-refresh-bn``: re-estimate a checkpoint's batch-norm statistics under the training
transform and write them to a **new** file (the old one is never touched).

Why: toolkit 0.1 re-estimated batch-norm running statistics on *unaugmented* training
images, while the weights had learned under the batch statistics of *augmented* batches
(random crop with zero padding, flip); its TTQ checkpoints test ~2.7 points under what
their weights give (the committed 40-epoch ResNet-20: 84.72 % as stored, 87.4 % after this
refresh; see :mod:`ttq_core.train.bn_calibration`).  Only the running means and variances
change: weights, scales, history and configuration are kept.  What was done is recorded in
the new file's ``bn_refresh`` entry (source file, images, transform, test accuracy and loss
before and after on the checkpoint's own test images), its ``metrics`` get the new test
accuracy and loss (the old ones move to ``bn_refresh``), and its ``train_config`` says the
statistics now come from the training transform.  The per-epoch ``history`` keeps the
accuracies measured during training, under the old statistics.

    ttq-refresh-bn old/best.pt new/best.pt --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

from .. import __version__
from ..checkpoint import load_model, read_checkpoint_file, validate_fields
from ..cli_options import add_data_dir, add_device, add_progress
from ..devices import resolve_device
from ..errors import CheckpointError, ConfigError, OutputError, TTQError, describe_os_error
from ..io import exclusive_create
from .bn_calibration import DEFAULT_BN_IMAGES, batchnorms, recalibrate_batchnorm
from .config import TrainConfig
from .setup import evaluate, load_data


def needs_refresh(ckpt: dict) -> bool:
    """Whether a toolkit checkpoint's batch-norm statistics come from the old unaugmented
    re-estimation (toolkit 0.1): it re-estimated (``bn_recal_images`` > 0), not under the
    training transform, and was not refreshed since.  FP runs never re-estimated."""
    cfg = ckpt.get("train_config") if isinstance(ckpt, dict) else None
    if not isinstance(cfg, dict) or cfg.get("mode") != "ttq" or ckpt.get("bn_refresh"):
        return False
    images = cfg.get("bn_recal_images", 0)
    return isinstance(images, int) and images > 0 and not cfg.get("bn_recal_augment", False)


def refresh(src: str | Path, dst: str | Path, data_dir: str | None = None,
            images: int = DEFAULT_BN_IMAGES, device: str = "cpu",
            progress: bool = False, limit_test: int | None = None) -> dict:
    """Write ``dst``: the toolkit checkpoint ``src`` with batch-norm statistics
    re-estimated on ``images`` training images drawn through the training transform;
    return the ``bn_refresh`` record.  ``dst`` must not exist (never replaced).
    ``limit_test``: test before and after on a fixed class-balanced subset of this many
    images instead of the run's own test images (quicker; recorded)."""
    src, dst = Path(src), Path(dst)
    if images < 1:
        raise ConfigError(f"--images must be at least 1, got {images}")
    if limit_test is not None and limit_test < 1:
        raise ConfigError(f"--limit-test must be at least 1, got {limit_test}")
    if src.exists() and dst.exists() and src.resolve() == dst.resolve():
        raise OutputError(f"{dst} is the input checkpoint; write the refreshed one to a new file")
    if dst.exists() or dst.is_symlink():
        raise OutputError(f"{dst} exists; not replacing it (choose a new file name)")
    ckpt = read_checkpoint_file(src)
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{src} is not a ttq toolkit checkpoint (plain state_dicts "
                              f"record no training transform to re-estimate under)")
    validate_fields(ckpt, src)
    if not isinstance(ckpt.get("train_config"), dict):
        raise CheckpointError(f"{src} records no train_config (which data it was trained on)")
    try:
        cfg = TrainConfig.from_dict(ckpt["train_config"])
    except TypeError as e:
        raise CheckpointError(f"{src}: field 'train_config' is malformed ({e})") from None
    loaded = load_model(src)
    model = loaded.model
    if not batchnorms(model):
        raise CheckpointError(f"{src}: the {loaded.arch} has no batch norm; nothing to refresh")
    dev = resolve_device(device)
    cfg.data_dir = data_dir if data_dir is not None else cfg.data_dir
    cfg.progress, cfg.device = progress, device
    if limit_test is not None:
        cfg.limit_test = limit_test
    data = load_data(cfg, dev)  # the run's own splits (its --limit-train/--limit-test subsets)
    norm = ckpt["normalization"]
    for split in (data.train, data.test):  # normalise exactly as the checkpoint was trained
        split.mean = torch.tensor(norm["mean"], dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        split.std = torch.tensor(norm["std"], dtype=torch.float32, device=dev).view(1, -1, 1, 1)
    model.to(dev)
    before_loss, before_acc = evaluate(model, data.test, 500, dev, progress=progress)
    used = recalibrate_batchnorm(model, data.train, images, augment=True)
    after_loss, after_acc = evaluate(model, data.test, 500, dev, progress=progress)
    metrics = dict(ckpt.get("metrics") or {})
    record = {"from_file": str(src), "images": used, "transform": "train (random crop + flip)",
              "previous_train_config": {k: ckpt["train_config"].get(k) for k in
                                        ("bn_recal_images", "bn_recal_augment")},
              "test_images": len(data.test), "test_acc_before": before_acc,
              "test_loss_before": before_loss, "test_acc_after": after_acc,
              "test_loss_after": after_loss,
              "previous_metrics": {k: metrics.get(k) for k in ("test_acc", "test_loss")},
              "toolkit": __version__}
    out = dict(ckpt)
    out["state_dict"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    out["train_config"] = {**ckpt["train_config"], "bn_recal_images": used,
                           "bn_recal_augment": True}
    out["metrics"] = {**metrics, "test_acc": after_acc, "test_loss": after_loss}
    out["bn_refresh"] = record
    out.pop("optimizer", None)  # its momentum belongs to the old file's training state
    try:
        with exclusive_create(dst) as f:
            torch.save(out, f)
    except FileExistsError:
        raise OutputError(f"{dst} appeared while refreshing; not replacing it") from None
    return record


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ttq-refresh-bn",
        description="Re-estimate a toolkit checkpoint's batch-norm running statistics on "
                    "training images drawn through the training augmentation (random crop "
                    "+ flip), and write the result to a NEW checkpoint. For checkpoints of "
                    "toolkit 0.1, which re-estimated on unaugmented images (ttq-report "
                    "says when one does). Weights, scales and history are unchanged; the "
                    "test accuracy before and after is printed and recorded.",
        epilog="example:\n  ttq-refresh-bn runs/r20-ttq/best.pt runs/r20-ttq/best-refreshed.pt "
               "--data-dir ../shared/data\n\nThe output must not exist: an existing file is "
               "never replaced.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="toolkit checkpoint to read (never modified)")
    p.add_argument("out", help="new checkpoint file to write (must not exist)")
    p.add_argument("--images", type=int, default=DEFAULT_BN_IMAGES, metavar="N",
                   help="training images for the re-estimate (default %(default)s; the "
                        "accuracy is flat from 250 up, see benchmarks/bn_reestimation.py)")
    p.add_argument("--limit-test", type=int, default=None, metavar="N",
                   help="test before and after on a fixed class-balanced subset of N test "
                        "images (default: the run's own test images)")
    add_data_dir(p)
    add_device(p, default="cpu")
    add_progress(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        r = refresh(args.checkpoint, args.out, args.data_dir, args.images, args.device,
                    progress=not args.no_progress, limit_test=args.limit_test)
    except TTQError as e:
        print(f"ttq-refresh-bn: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"ttq-refresh-bn: error: {describe_os_error(e)}", file=sys.stderr)
        return 1
    print(f"{args.out}: batch-norm statistics re-estimated on {r['images']:,} augmented "
          f"training images; test accuracy on {r['test_images']:,} images "
          f"{r['test_acc_before'] * 100:.2f} % -> {r['test_acc_after'] * 100:.2f} % "
          f"({args.checkpoint} is unchanged)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
