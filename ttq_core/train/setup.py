"""What a training run is built from: its data splits, the initial model, the optimizer's
parameter groups, and evaluation on a split (used by the loop, the tests and the
benchmarks).  The loop itself: :mod:`ttq_core.train.loop`."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .. import distributed
from ..checkpoint import load_model
from ..data import balanced_subset
from ..data.device import DeviceData, batch_block
from ..datasets import Split, dataset_spec  # Split re-exported: ttq_core.train.setup.Split
from ..errors import ConfigError
from ..models import build_model, list_models
from ..quantize import record_method, ternarize, ternary_layers
from .config import TrainConfig


def _progress(iterable, enabled: bool, **kw):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, dynamic_ncols=True, leave=False, **kw)


def load_data(cfg: TrainConfig, device: torch.device) -> Split:
    spec = dataset_spec(cfg.dataset)
    if spec.prepare is not None:
        return spec.prepare(cfg, device)
    arrays = spec.loader(cfg.data_dir, progress=cfg.progress and distributed.is_main())
    mean, std = arrays.channel_stats()
    train_x, train_y = arrays.train.images, arrays.train.labels
    test_x, test_y = arrays.test.images, arrays.test.labels
    if cfg.limit_train:
        idx = balanced_subset(train_y, cfg.limit_train)
        train_x, train_y = train_x[idx], train_y[idx]
    if cfg.limit_test:
        idx = balanced_subset(test_y, cfg.limit_test)
        test_x, test_y = test_x[idx], test_y[idx]
    channels_last = device.type == "cuda"
    return Split(DeviceData(train_x, train_y, mean, std, device, channels_last),
                 DeviceData(test_x, test_y, mean, std, device, channels_last),
                 {"mean": [float(m) for m in mean], "std": [float(s) for s in std],
                  "computed_on": "train split, [0, 1] pixel values"},
                 arrays.source)


def build_initial_model(cfg: TrainConfig, num_classes: int) -> tuple[nn.Module, bool]:
    """The model a fresh run starts from: built, optionally initialised from ``cfg.init``,
    and ternarized for ``--mode ttq``; and whether it was ternarized here (so its
    batch-norm statistics are still the float model's)."""
    model, ternarized, _ = initial_model(cfg, num_classes)
    return model, ternarized


def initial_model(cfg: TrainConfig, num_classes: int) -> tuple[nn.Module, bool, dict | None]:
    """:func:`build_initial_model` plus the input normalisation the ``--init`` checkpoint
    records (None: no --init, or a plain state_dict, which records none)."""
    recorded = None
    if cfg.init:
        loaded = load_model(cfg.init, arch=cfg.arch)
        model = loaded.model
        if loaded.is_ternary and cfg.mode == "fp":
            raise ConfigError(f"--init {cfg.init} is a ternary checkpoint; --mode fp needs an FP one")
        already_ternary = loaded.is_ternary
        recorded = (loaded.checkpoint or {}).get("normalization")
        if already_ternary and cfg.mode == "ttq":
            method = record_method(loaded.checkpoint["quant"])
            if method != cfg.quantizer:
                raise ConfigError(f"--init {cfg.init} is already quantized with {method}; "
                                  f"--quantizer {cfg.quantizer} starts from a full-precision "
                                  f"checkpoint (or pass --quantizer {method} to continue it)")
    else:
        if cfg.arch not in list_models():
            raise ConfigError(f"--arch: unknown architecture {cfg.arch!r}; known: "
                              f"{', '.join(list_models())}")
        model = build_model(cfg.arch, num_classes=num_classes)
        already_ternary = False
    if cfg.mode == "ttq" and not already_ternary:
        ternarize(model, **cfg.quant_request())
        return model, True, recorded
    return model, False, recorded


def training_normalization(cfg: TrainConfig, recorded: dict | None, data: Split) -> Split:
    """``data`` normalised with the statistics the run's starting model expects, and
    ``data.normalization`` saying which and why (``origin``): the starting checkpoint's
    record (a toolkit ``--init`` or the checkpoint a ``--resume`` continues), else
    ``--normalization``/``--mean``/``--std`` (for a plain state_dict, which records none),
    else the data's own (CIFAR-10: its train split's channel statistics; ImageNet:
    torchvision's).  A request that contradicts a recorded one is a ConfigError: the
    fine-tuned model must see its inputs as the initial model did."""
    import math

    from ..normalization import Normalization, renormalized
    request = cfg.normalization_request()
    if recorded:
        norm = Normalization(tuple(float(v) for v in recorded["mean"]),
                             tuple(float(v) for v in recorded["std"]),
                             recorded.get("origin") or "recorded in the initial checkpoint")
        if request is not None:
            wanted = _requested(request, cfg, data)
            same = all(math.isclose(a, b, rel_tol=1e-6) for a, b in
                       zip(wanted.mean + wanted.std, norm.mean + norm.std))
            if not same:
                raise ConfigError(
                    f"{request.describe()} contradicts the normalisation recorded in "
                    f"{cfg.init or 'the checkpoint'} (mean {list(norm.mean)}, std "
                    f"{list(norm.std)}), which the run keeps; drop the flag")
        if cfg.resume:  # the run continues with its own record, unchanged
            return Split(renormalized(data.train, norm), renormalized(data.test, norm),
                         dict(recorded), data.source, data.num_classes)
        chosen = Normalization(norm.mean, norm.std, f"recorded in --init {cfg.init}")
    elif request is not None:
        chosen = _requested(request, cfg, data)
    else:
        return data  # the data's own statistics, as load_data recorded them
    return Split(renormalized(data.train, chosen), renormalized(data.test, chosen),
                 {"mean": list(chosen.mean), "std": list(chosen.std), "origin": chosen.origin},
                 data.source, data.num_classes)


def _requested(request, cfg: TrainConfig, data: Split):
    """The statistics ``--normalization NAME`` or ``--mean/--std`` name, for these data."""
    from ..normalization import IMAGENET_MEAN, IMAGENET_STD, Normalization
    if request.name is None:
        return Normalization(request.mean, request.std, f"given as {request.describe()}")
    if request.name == "imagenet":
        return Normalization(IMAGENET_MEAN, IMAGENET_STD,
                             "--normalization imagenet: torchvision's ImageNet mean and std")
    if cfg.dataset != "cifar10":
        raise ConfigError(f"--normalization {request.name} is not available with --dataset "
                          f"{cfg.dataset}; give --mean/--std")
    own = data.normalization  # load_data's: the CIFAR-10 train split's statistics
    return Normalization(tuple(own["mean"]), tuple(own["std"]),
                         f"--normalization {request.name}: the CIFAR-10 train split's "
                         f"per-channel mean and std")


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """SGD groups, each with an ``lr_mult`` applied to the scheduled LR.

    Conv/linear weights and biases get weight decay; batch-norm parameters only with
    ``wd_bn``.  The quantizers' learned scales (``spec.learned``: TTQ's Wp/Wn, LSQ's steps
    s_c; twn and bwn have none) form their own group with LR × ``scale_lr_mult`` and the
    weights' decay when ``wd_scales``.  For TTQ the defaults (1.0, on) make it the same
    optimisation as the authors' code, where Wp/Wn are ordinary variables of the one
    momentum-SGD optimizer with L2 decay.  (Scales started at least-squares values ≈ 0.07
    need a small multiplier: their gradient grows like 1/Wp under batch norm.)  LSQ steps:
    LR × 1 (``--scale-lr-mult`` is TTQ's; LSQ scales the step's *gradient* instead, by
    1/sqrt(N_c·Q), inside the quantizer) and the weights' decay unless ``--no-wd-scales``.
    The LSQ paper states its weight decay (lowered for lower precisions) without saying
    whether the steps are excluded; public re-implementations (e.g. zhutmost/lsq-net)
    hand every parameter, steps included, to one SGD with weight decay, and so do we by
    default.
    """
    decay, no_decay, scales = [], [], []
    scale_ids = {id(p) for _, m in ternary_layers(model) for p in m.quantizer.learned_parameters()}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if id(p) in scale_ids:
                scales.append(p)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                (decay if cfg.wd_bn else no_decay).append(p)
            elif p.requires_grad:
                decay.append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay, "lr_mult": 1.0},
              {"params": no_decay, "weight_decay": 0.0, "lr_mult": 1.0}]
    if scales:
        groups.append({"params": scales, "weight_decay": cfg.weight_decay if cfg.wd_scales else 0.0,
                       "lr_mult": cfg.scale_lr_mult})
    return groups


def _autocast(device: torch.device, amp: str):
    use = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    if not use:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@torch.no_grad()
def evaluate(model: nn.Module, data: DeviceData, batch_size: int, device: torch.device,
             amp: str = "off", progress: bool = False,
             shard: tuple[int, int] = (0, 1)) -> tuple[float, float]:
    """Mean cross-entropy (nats per image) and accuracy (fraction) over ``data``.

    ``shard=(rank, world)`` with ``world > 1`` (every rank of the process group must call
    it): each rank evaluates a contiguous block of the batches a single process would
    evaluate (the very same batches) and the loss sum, correct count and image count are
    summed over ranks, so the accuracy is the single-process one on the same images (the
    loss too, up to float64 summation order)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    block = batch_block(data.num_batches(batch_size), shard) if shard[1] > 1 else None
    batches = _progress(data.batches(batch_size, batch_range=block) if block else
                        data.batches(batch_size), progress, desc="test",
                        total=(block[1] - block[0]) if block else data.num_batches(batch_size))
    for x, y in batches:
        with _autocast(device, amp):
            out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum").double()
        correct += (out.argmax(1) == y).sum()
        seen += y.shape[0]
    model.train(was_training)
    if shard[1] > 1:
        loss, right, n = distributed.sum_numbers([float(loss_sum), int(correct), seen], device)
        n = max(int(n), 1)
        return loss / n, int(right) / n
    n = max(len(data), 1)
    return float(loss_sum) / n, int(correct) / n
