"""``ttq-report`` for networks trained elsewhere ("bring your own network"): the flags, their
checks, how an input file is loaded with ``--model``, and the what-if-ternarized input.

Kept apart from :mod:`reports.cli` so that the CLI module only wires these in:
``--model MODULE:CALLABLE`` (:mod:`ttq_core.user_model`), ``--normalization``/``--mean``/
``--std`` (:mod:`ttq_core.normalization`), ``--ternary-tolerance``
(:mod:`ttq_analysis.ternary_detect`) and ``--what-if-bn-images``
(:mod:`ttq_analysis.what_if`).
"""

from __future__ import annotations

import argparse

from ttq_core.errors import ConfigError

BYON_EPILOG = """
bring your own network (README: "Bring your own network"):
  # an old CIFAR state_dict ({'state_dict': {'module.conv1.weight': ...}}, saved before
  # PyTorch 0.4.1: no num_batches_tracked) that was trained on ImageNet-normalised inputs
  ttq-report resnet20-old.th --arch resnet20 --normalization imagenet

  # explicit input statistics (per channel, on [0, 1] pixels)
  ttq-report net.pt --arch resnet20 --mean 0.5 0.5 0.5 --std 0.25 0.25 0.25

  # any nn.Module: a module:callable returning it (./mymodels.py with def make_net()),
  # plus its state_dict; conv/linear layers of any shape are counted, other operators listed
  ttq-report mynet.pt --model mymodels:make_net

  # ternary weights exported by other code (at most 3 values {-a, 0, +b} per layer) are
  # detected and counted as ternary (binary +-alpha_c and int4/int8 grids k*s_c per output
  # channel likewise, as binary, int4, int8); allow more float noise in the values
  ttq-report bitnet-export.pt --model mymodels:make_net --ternary-tolerance 1e-4

  # torchvision-layout ResNet-18 / AlexNet state_dicts load with --arch
  ttq-report resnet18-f37072fd.pth --arch resnet18 --dataset imagenet --data-dir /data/imagenet

  # the what-if estimate of an FP input re-estimates batch-norm statistics on 500
  # training images (no weight is trained); more images, or none:
  ttq-report r20.th --arch resnet20 --what-if-bn-images 2000
"""


def add_byon_options(p: argparse.ArgumentParser) -> None:
    """The bring-your-own-network options of ``ttq-report``."""
    from ttq_analysis.ternary_detect import DEFAULT_TOLERANCE
    from ttq_analysis.what_if import DEFAULT_BN_IMAGES
    from ttq_core.normalization import NAMES
    p.add_argument("--model", default=None, metavar="MODULE:CALLABLE",
                   help="build plain state_dict inputs with this callable (no arguments, "
                        "returns an nn.Module), e.g. mypkg.models:make_net; the current "
                        "folder is importable. Instead of --arch")
    p.add_argument("--normalization", default=None, choices=NAMES,
                   help="input statistics for files that record none: cifar10 (the train "
                        "split's channel mean/std; the default on CIFAR-10) or imagenet "
                        "(torchvision's); toolkit checkpoints always use their own")
    p.add_argument("--mean", type=float, nargs="+", default=None, metavar="M",
                   help="per-channel input mean on [0, 1] pixels (with --std), for files "
                        "that record none")
    p.add_argument("--std", type=float, nargs="+", default=None, metavar="S",
                   help="per-channel input std on [0, 1] pixels (with --mean)")
    p.add_argument("--ternary-tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="TOL",
                   help="a plain conv/linear layer whose weights take at most 3 values "
                        "{-a, 0, +b} is counted as ternary (one magnitude per output channel: "
                        "binary; at most 16/256 values per channel on a grid k*s_c: int4/int8); "
                        "values closer than TOL*max|w| count as one (default %(default)g)")
    p.add_argument("--what-if-bn-images", type=int, default=DEFAULT_BN_IMAGES, metavar="N",
                   help="re-estimate the what-if network's batch-norm statistics on N "
                        "training images before measuring (0: skip; default %(default)s)")


def check_byon_options(args: argparse.Namespace) -> None:
    """One-line errors for these flags before any file is read; sets
    ``args.normalization_request``."""
    from ttq_analysis.ternary_detect import check_tolerance
    from ttq_core.normalization import normalization_request
    if args.model is not None and args.arch is not None:
        raise ConfigError("give either --arch (a registry name) or --model (module:callable), "
                          "not both")
    args.normalization_request = normalization_request(args.normalization, args.mean, args.std)
    check_tolerance(args.ternary_tolerance)
    if args.what_if_bn_images < 0:
        raise ConfigError(f"--what-if-bn-images must be >= 0, got {args.what_if_bn_images}")
    if args.model is not None:
        from ttq_core.user_model import resolve_callable
        resolve_callable(args.model)


def load_input(path, args: argparse.Namespace):
    """``load_model`` for one input file: into a fresh ``--model`` network when given, else
    as the checkpoint or ``--arch`` says."""
    from ttq_core.checkpoint import load_model
    if args.model is None:
        return load_model(path, arch=args.arch)
    from ttq_core.user_model import build_user_model
    return load_model(path, model=build_user_model(args.model), model_name=args.model)


def what_if_label(label: str, threshold: float) -> str:
    """The name of an FP network's what-if estimate, everywhere (report, terminal)."""
    return f"{label}: what if ternarized at t={threshold}, not trained"


def what_if_input(args: argparse.Namespace, ld, path, label: str, fp_analysis, data, device,
                  measure):
    """The report input "FP network ternarized at --what-if-threshold": batch norms
    re-estimated on --what-if-bn-images training images (no weight trained), measured by
    ``measure`` on the same images and normalisation as the FP network; its
    ``meta["what_if"]`` holds the accuracy before and after the re-estimate."""
    from ttq_analysis.what_if import ternarize_untrained

    from .render import ReportInput
    norm = data.normalization_for(ld, getattr(args, "normalization_request", None))
    t = args.what_if_threshold
    n = args.what_if_bn_images
    calibration = data.calibration(n, norm) if data.calibration is not None and n > 0 else None
    est = ternarize_untrained(ld.model, t, data.batches_for(norm), calibration, n, device,
                              args.batches, data.calibration_name)
    w = measure(est.model, None, norm=norm)
    w.meta["what_if"] = est.meta(w.network.accuracy.measured_acc)
    w.meta["checkpoint"] = {"source": str(path),
                            "derived": f"ternarized at t={t} (least-squares Wp/Wn, not trained)"}
    bn = (f"batch-norm statistics re-estimated on {est.bn_images:,} images of the "
          f"{est.calibration_source} drawn through the training augmentation (random crop "
          f"+ flip; forward passes only)" if est.bn_images else
          "batch-norm statistics left as the FP network's")
    return ReportInput(
        what_if_label(label, t), w, fp_analysis, baseline_label=label,
        note=f"An estimate: the FP weights ternarized at this threshold; no weights were "
             f"trained; {bn}. Its activations would change with fine-tuning.")
