"""``ttq-train``: command-line front end of :class:`ttq_core.train.loop.Trainer`."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Sequence

from ..cli_options import add_data_dir, add_device, add_progress
from ..errors import TTQError, describe_os_error
from ..errors import ConfigError
from ..quantize.family import QUANTIZERS
from ..quantize.layers import SCALE_INITS
from .config import AMP_MODES, MODE_DEFAULTS, SCHEDULES, TTQ_ONLY_FLAGS, TrainConfig

EPILOG = """\
examples:
  # full-precision ResNet-20, then TTQ fine-tuning from it (the paper's pipeline)
  ttq-train --arch resnet20 --mode fp  --epochs 40 --out runs/r20-fp
  ttq-train --arch resnet20 --mode ttq --init runs/r20-fp/best.pt --epochs 40 --out runs/r20-ttq

  # fine-tune a published plain state_dict trained on ImageNet-normalised inputs (e.g.
  # akamaster's pretrained_models/resnet20.th): say so, or it gets CIFAR-10 statistics
  ttq-train --arch resnet20 --mode ttq --init resnet20.th --normalization imagenet \\
            --epochs 40 --out runs/r20-ttq

  # a quick CPU run on a fixed class-balanced subset, offline, from the JPEG archive
  ttq-train --data-dir ../shared/data/cifar10-jpeg.tar.gz --limit-train 2000 \\
            --limit-test 1000 --epochs 2 --out runs/quick

  # another weight quantizer for the same fine-tuning (see "quantization" below)
  ttq-train --mode ttq --init fp.pt --quantizer int4 --out runs/r20-int4

  # layer-specific thresholds, or a fixed 50%% weight sparsity per layer
  ttq-train --mode ttq --init fp.pt --layer-threshold 'layer3.*=0.1' --threshold 0.05
  ttq-train --mode ttq --init fp.pt --target-sparsity 0.5

  # continue an interrupted run with its stored settings (same result as never stopping,
  # on CPU); only --epochs, --data-dir, --device, --compile, --workers may change
  ttq-train --out runs/r20-ttq --resume
  ttq-train --out runs/r20-ttq --resume --epochs 60

  # the old parametrisation (least-squares scales, slow scale LR) for comparison
  ttq-train --mode ttq --init fp.pt --scale-init least-squares --scale-lr-mult 0.01 \
            --no-wd-scales --lr 0.01

  # 4 GPUs of one machine (the same flags; global batch = 4 x --batch-size)
  torchrun --standalone --nproc_per_node=4 -m ttq_core.train --arch resnet20 --out runs/r20-4gpu

  # ImageNet (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) with the paper's AlexNet recipe
  torchrun --standalone --nproc_per_node=8 -m ttq_core.train --preset imagenet-alexnet-bn \\
            --data-dir /data/imagenet --out runs/alexnet-ttq

data: --data-dir (or the environment variable TTQ_DATA_DIR) takes the official
cifar-10-batches-py folder or cifar-10-python.tar.gz, an image-folder tree
(train/<class>/*, test/<class>/*) or a .tar.gz of one. Without either, CIFAR-10 is
downloaded (checksum-verified) into ~/.cache/ttq/data/cifar10 on first use. Decoded
arrays are cached in ~/.cache/ttq/arrays (TTQ_CACHE_DIR moves it).

outputs in --out: last.pt (every epoch, resumable), best.pt (best test accuracy),
log.jsonl (one history entry per epoch). Checkpoints load with
torch.load(path, weights_only=True). The run folder is locked while a run trains
(.ttq-train.lock): a second ttq-train on it stops with one line naming the first's PID.
"""


def _glob_value(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected GLOB=VALUE (e.g. 'layer3.*=0.1'), got {text!r}")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} in {text!r} is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    """The ``ttq-train`` parser.  Over 60 lines by nature: a declarative table of ~40
    options in their help groups, each default read from :class:`TrainConfig`."""
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="ttq-train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a full-precision network (--mode fp) or a Trained Ternary "
                    "Quantization network (--mode ttq: weights in {-Wn, 0, +Wp}, Wp and Wn "
                    "learned per layer; Zhu et al., ICLR 2017) on CIFAR-10, writing "
                    "checkpoints with the full per-epoch history. --mode ttq can also train "
                    "TWN, BWN or int4/int8 (LSQ) weights instead: --quantizer.",
        epilog=EPILOG)
    g = p.add_argument_group("what to train")
    g.add_argument("--arch", default=d.arch, help="model name (resnet20/32/44/56, resnet18, "
                   "alexnet, alexnet_bn; default %(default)s)")
    g.add_argument("--dataset", default=d.dataset, help="dataset name: cifar10, or imagenet "
                   "(--data-dir holds train/<wnid>/*.JPEG and val/<wnid>/*.JPEG; default %(default)s)")
    g.add_argument("--preset", default=None, metavar="NAME",
                   help="a named recipe that sets the defaults of other options (explicit flags "
                        "still win): " + ", ".join(_preset_names()))
    add_data_dir(g, default=d.data_dir)
    g.add_argument("--mode", choices=list(MODE_DEFAULTS), default=d.mode,
                   help="fp: full precision; ttq: ternarize then train (default %(default)s)")
    g.add_argument("--init", metavar="CKPT", default=d.init,
                   help="start from this checkpoint (a toolkit FP checkpoint or a plain "
                        "state_dict of --arch); TTQ fine-tunes from it, with the input "
                        "normalisation a toolkit checkpoint records")
    g.add_argument("--normalization", choices=("cifar10", "imagenet"), default=d.normalization,
                   help="input statistics the --init network was trained with, for a plain "
                        "state_dict (it records none): cifar10 (the train split's channel "
                        "mean/std, the default) or imagenet (torchvision's); recorded in the "
                        "run's checkpoints")
    g.add_argument("--mean", type=float, nargs="+", default=d.norm_mean, metavar="M",
                   help="or explicit per-channel input mean on [0, 1] pixels (with --std)")
    g.add_argument("--std", type=float, nargs="+", default=d.norm_std, metavar="S",
                   help="per-channel input std on [0, 1] pixels (with --mean)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=d.epochs, help="epochs (default %(default)s)")
    o.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="images per step (default %(default)s)")
    o.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (default {MODE_DEFAULTS['fp']['lr']} for fp, "
                        f"{MODE_DEFAULTS['ttq']['lr']} for ttq)")
    o.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum (default %(default)s)")
    o.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    o.add_argument("--weight-decay", type=float, default=None,
                   help=f"L2 on conv/linear weights and biases (default "
                        f"{MODE_DEFAULTS['fp']['weight_decay']} for fp, "
                        f"{MODE_DEFAULTS['ttq']['weight_decay']} for ttq, the paper's value)")
    o.add_argument("--wd-bn", action="store_true", help="also apply weight decay to batch norm")
    o.add_argument("--wd-scales", action=argparse.BooleanOptionalAction, default=d.wd_scales,
                   help="apply the weight decay to the learned quantizer scales too: TTQ's "
                        "Wp, Wn (as the authors' code does), int4/int8's LSQ steps "
                        "(default: on)")
    o.add_argument("--scale-lr-mult", type=float, default=d.scale_lr_mult, metavar="M",
                   help="LR of the TTQ scales Wp, Wn = M x the weights' LR (default "
                        "%(default)s: one optimizer group, as in the authors' code)")
    o.add_argument("--schedule", choices=SCHEDULES, default=d.schedule,
                   help="LR schedule after warm-up (default %(default)s)")
    o.add_argument("--milestones", type=float, nargs="+", default=d.milestones, metavar="FRAC",
                   help="step schedule: fractions of the run where LR is multiplied by "
                        "--gamma (default 0.5 0.75)")
    o.add_argument("--gamma", type=float, default=d.gamma, help="step schedule factor (default %(default)s)")
    o.add_argument("--warmup-epochs", type=float, default=None,
                   help="linear LR warm-up in epochs (default 1 for fp, 0 for ttq)")
    q = p.add_argument_group("quantization (--mode ttq)", description=_quantizer_table())
    q.add_argument("--quantizer", choices=list(QUANTIZERS), default=d.quantizer,
                   help="the weight quantizer of the quantized fine-tuning, one of the "
                        "methods listed above (default %(default)s). The options from "
                        "--threshold to --scale-lr-mult are TTQ's; --keep-fp, --wd-scales "
                        "and the batch-norm options apply to every method")
    q.add_argument("--threshold", type=float, default=d.threshold, metavar="T",
                   help="t in Δ = t·max|w|, for every ternary layer (default %(default)s)")
    q.add_argument("--layer-threshold", type=_glob_value, action="append", default=[],
                   metavar="GLOB=T", help="per-layer t for layers matching GLOB (repeatable; "
                   "others use --threshold), e.g. 'layer3.*=0.1'")
    q.add_argument("--target-sparsity", type=float, default=None, metavar="R",
                   help="instead of t: a fixed fraction R of zero weights per layer "
                        "(Δ = R-quantile of |w|)")
    q.add_argument("--layer-sparsity", type=_glob_value, action="append", default=[],
                   metavar="GLOB=R", help="per-layer target sparsity (repeatable)")
    q.add_argument("--threshold-plan", default=None, metavar="PLAN.json",
                   help="per-layer values from a plan file written by ttq-plan (e.g. an "
                        "energy-aware per-layer sparsity); replaces the options above")
    q.add_argument("--keep-fp", action="append", default=None, metavar="GLOB",
                   help="keep matching conv/linear layers in full precision (repeatable; "
                        "default: the first conv and the last linear layer)")
    q.add_argument("--no-grad-scaling", action="store_true",
                   help="ablation: plain straight-through latent gradients instead of TTQ's "
                        "Wp/1/Wn per-region multipliers")
    q.add_argument("--scale-init", choices=SCALE_INITS, default=d.scale_init,
                   help="how Wp, Wn start: 'one' (Wp = Wn = 1, the authors' code) or "
                        "'least-squares' (mean of the weights of each region; under batch "
                        "norm its zero region gets ~1/Wp larger steps and sparsity collapses; "
                        "default %(default)s)")
    q.add_argument("--bn-recal-images", type=int, default=d.bn_recal_images, metavar="N",
                   help="re-estimate batch-norm running statistics on N training images "
                        "after ternarizing and after every TTQ epoch, before testing and "
                        "saving, so no run tests on stale statistics (training steps are "
                        "unchanged; 0: off and the running averages are kept; default "
                        "%(default)s)")
    q.add_argument("--bn-recal-transform", choices=("train", "plain"), default="train",
                   help="images for that re-estimate: 'train' draws them through the training "
                        "augmentation (random crop + flip), matching the batch statistics the "
                        "weights learned under; 'plain' uses unaugmented images, as toolkit "
                        "0.1 did (it cost a 40-epoch ResNet-20 2.7 points; default %(default)s)")
    q.add_argument("--grad-stats-every", type=int, default=d.grad_stats_every, metavar="N",
                   help="record latent-gradient statistics every N steps (0: off; default %(default)s)")
    s = p.add_argument_group("data subset")
    s.add_argument("--limit-train", type=int, default=None, metavar="N",
                   help="train on a fixed class-balanced subset of N images")
    s.add_argument("--limit-test", type=int, default=None, metavar="N",
                   help="test on a fixed class-balanced subset of N images")
    r = p.add_argument_group("run")
    r.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default runs/<arch>-<mode>)")
    r.add_argument("--resume", action="store_true",
                   help="continue the run in --out from last.pt with its stored settings: "
                        "identical to never stopping. Other flags must match the stored "
                        "ones, except --epochs (more epochs stretch the LR schedule; "
                        "recorded in the history), --data-dir, --device, --compile, --workers, "
                        "--probe-images, --keep-epochs")
    r.add_argument("--seed", type=int, default=d.seed, help="random seed (default %(default)s)")
    r.add_argument("--probe-images", type=int, default=d.probe_images, metavar="N",
                   help="after each epoch, measure the zero fraction of every conv/linear "
                        "layer's input on the first N test images (the same ones every epoch) "
                        "and record it in the history, so ttq-report can show activation "
                        "sparsity across epochs; the probe's own seconds are recorded "
                        "beside it (one eval-mode forward pass over N images; default "
                        "%(default)s: off)")
    r.add_argument("--keep-epochs", action="store_true",
                   help="also save every epoch's weights as OUT/epochs/epoch-NNN.pt (no "
                        "optimizer state; ~1.2 MB each for ResNet-20), so an epoch on the "
                        "report's accuracy-energy front can be used instead of best.pt "
                        "(the most accurate) or last.pt")
    add_device(r, default=d.device)
    r.add_argument("--amp", choices=AMP_MODES, default=d.amp,
                   help="mixed precision: auto = bf16 autocast on CUDA, off on CPU")
    r.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    add_progress(r, help="no progress bars; one line per epoch")
    x = p.add_argument_group("scale-out (under torchrun) and the ImageNet path")
    x.add_argument("--sync-bn", action="store_true",
                   help="under torchrun: synchronise batch-norm statistics over all ranks "
                        "(SyncBatchNorm; CUDA/NCCL only)")
    x.add_argument("--workers", type=int, default=d.workers, metavar="N",
                   help="data-loading worker processes per rank for --dataset imagenet "
                        "(default %(default)s)")
    x.add_argument("--image-size", type=int, default=None, metavar="PX",
                   help="--dataset imagenet: side of the square training/validation crop "
                        "(default: the model's input size, 224)")
    return p


def _quantizer_table() -> str:
    """One line per method of the quantizer family (``--quantizer``), with its paper."""
    lines = ["--quantizer NAME (README, 'Quantizers': what we follow, where we deviate):"]
    lines += [f"  {spec.name:<5} {spec.description} ({spec.paper})"
              for spec in QUANTIZERS.values()]
    return "\n".join(lines)


def _preset_names() -> list[str]:
    from .presets import PRESETS
    return list(PRESETS)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    cfg = _config(args)
    if getattr(args, "threshold_plan", None):
        cfg = cfg.with_threshold_plan(args.threshold_plan)
    return cfg


def _config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        arch=args.arch, dataset=args.dataset, data_dir=args.data_dir, mode=args.mode,
        init=args.init, normalization=args.normalization, norm_mean=args.mean,
        norm_std=args.std, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay,
        wd_bn=args.wd_bn, wd_scales=args.wd_scales, scale_lr_mult=args.scale_lr_mult, schedule=args.schedule,
        milestones=list(args.milestones), gamma=args.gamma, warmup_epochs=args.warmup_epochs,
        threshold=args.threshold, layer_thresholds=dict(args.layer_threshold),
        target_sparsity=args.target_sparsity, layer_sparsity=dict(args.layer_sparsity),
        quantizer=args.quantizer, keep_fp=args.keep_fp, grad_scaling=not args.no_grad_scaling,
        scale_init=args.scale_init, bn_recal_images=args.bn_recal_images,
        bn_recal_augment=args.bn_recal_transform == "train",
        grad_stats_every=args.grad_stats_every, probe_images=args.probe_images,
        keep_epochs=args.keep_epochs, limit_train=args.limit_train,
        limit_test=args.limit_test, out=args.out, resume=args.resume, seed=args.seed,
        device=args.device, amp=args.amp, compile=args.compile, progress=not args.no_progress,
        sync_bn=args.sync_bn, workers=args.workers, image_size=args.image_size,
        preset=args.preset)


# How gloo/NCCL report a collective whose peer process has died.
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "remote worker",
              "NCCL communicator was aborted")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the flags; a ``--preset`` first sets the defaults of the options it names."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.preset is not None:
        from .presets import PRESETS
        if args.preset not in PRESETS:
            parser.error(f"argument --preset: unknown preset {args.preset!r}; known: "
                         f"{', '.join(PRESETS)}")
        parser.set_defaults(**PRESETS[args.preset].settings)
        args = parser.parse_args(argv)
    return args


# argparse destinations whose TrainConfig field has another name
_FIELD_OF_DEST = {"no_grad_scaling": "grad_scaling", "no_progress": "progress",
                  "layer_threshold": "layer_thresholds", "mean": "norm_mean", "std": "norm_std"}


def _flag_fields(argv: Sequence[str] | None) -> set[str]:
    """The TrainConfig fields whose flags appear on the command line itself."""
    bare = build_parser()
    for action in bare._actions:
        action.default = argparse.SUPPRESS
    explicit = vars(bare.parse_args(argv))
    return {_FIELD_OF_DEST.get(dest, dest) for dest in explicit}


def check_quantizer_flags(argv: Sequence[str] | None, args: argparse.Namespace) -> None:
    """Flags that contradict ``--quantizer``, given explicitly (even at their default
    value, which TrainConfig.validate cannot see): TTQ's own options with another method,
    and ``--quantizer`` with ``--mode fp``.  One-line ConfigError.  Under ``--resume``
    the stored run decides (every flag given is checked against it there)."""
    if args.resume:
        return
    flags = _flag_fields(argv)
    if "quantizer" in flags and args.mode == "fp":
        raise ConfigError(f"--quantizer {args.quantizer}: --mode fp trains full precision; "
                          f"use --mode ttq (the quantized fine-tuning mode) with --quantizer")
    if args.quantizer != "ttq":
        ttq_only = [flag for name, flag in TTQ_ONLY_FLAGS.items() if name in flags]
        if ttq_only:
            raise ConfigError(f"{ttq_only[0]} applies to --quantizer ttq only; --quantizer "
                              f"{args.quantizer} sets its own threshold and scales: drop "
                              f"{ttq_only[0]}")


def given_fields(argv: Sequence[str] | None, args: argparse.Namespace) -> set[str]:
    """The TrainConfig fields set explicitly on the command line (flags given, the fields
    a --preset or --threshold-plan sets), as opposed to defaults; for --resume checks."""
    fields = _flag_fields(argv)
    if getattr(args, "preset", None):
        from .presets import PRESETS
        fields |= set(PRESETS[args.preset].settings)
    if "threshold_plan" in fields:
        fields |= {"layer_thresholds", "layer_sparsity", "keep_fp"}
    return fields


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from .. import distributed
    who = distributed.rank_prefix()  # "rank N: " under torchrun with several processes
    try:
        from .loop import train
        check_quantizer_flags(argv, args)
        ckpt = train(config_from_args(args), given=given_fields(argv, args))
    except TTQError as e:
        print(f"ttq-train: error: {who}{e}", file=sys.stderr)
        return 1
    except OSError as e:  # permission, not a folder, disk full, ...: one line naming the path
        print(f"ttq-train: error: {who}{describe_os_error(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ttq-train: {who}interrupted; the last completed epoch is in last.pt "
              "(continue with --resume)", file=sys.stderr)
        return 130
    except Exception as e:
        if not who:
            raise  # a bug: keep the traceback
        # under torchrun: the traceback, then one line naming the failed rank; the
        # non-zero exit makes torchrun stop the other ranks
        first = (str(e).strip().splitlines() or [""])[0]
        if any(s in first for s in _PEER_GONE):  # collateral: a peer died mid-collective
            print(f"ttq-train: error: {who}stopped because another rank failed (its error "
                  f"is above): {first}", file=sys.stderr)
            return 1
        traceback.print_exc()
        print(f"ttq-train: error: {who}{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    launch = distributed.launch_info()
    if launch is not None and launch.rank != 0:
        return 0  # rank 0 prints the summary
    m = ckpt["metrics"]
    out = ckpt["train_config"]["out"]
    if m["test_acc"] is not None:
        print(f"done: test accuracy {m['test_acc']:.4f} (best {m['best_test_acc']:.4f} at epoch "
              f"{m['best_epoch']}), checkpoints in {out}/last.pt and {out}/best.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
