"""The training loop behind ``ttq-train``: FP training and TTQ fine-tuning.

Outputs in ``cfg.out``: ``last.pt`` (every epoch, with optimizer state for ``--resume``),
``best.pt`` (highest test accuracy so far), both written atomically, and ``log.jsonl``
(one history entry per line).  Determinism: each epoch's data order and augmentation come
from a generator seeded with (seed, epoch), and the LR is a pure function of the step, so
``--resume`` continues exactly where an uninterrupted run would be (bitwise on CPU).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..checkpoint import FORMAT_VERSION, load_model, read_checkpoint_file, save_checkpoint
from ..data import balanced_subset, load_cifar10
from ..data.device import DeviceData
from ..errors import CheckpointError, ConfigError, TrainingDiverged
from ..io import atomic_write_text
from ..models import build_model, list_models
from ..quantize import quant_record, ternarize, ternary_layers
from .config import TrainConfig
from .history import GradStatsRecorder, layer_history
from .schedule import LRSchedule



@dataclass(frozen=True)
class DatasetSpec:
    loader: Callable      # (data_dir, progress=...) -> CifarArrays-like train/test splits
    num_classes: int


# Dataset registry: name -> how to load it.
DATASETS = {"cifar10": DatasetSpec(load_cifar10, 10)}


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"--dataset: unknown dataset {name!r}; known: "
                          f"{', '.join(DATASETS)}") from None
LOG_EVERY = 20  # steps between progress-bar updates (each one synchronises the device)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device: {name!r} is not a device (try cpu, cuda, cuda:0)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but no CUDA device is available; use --device cpu")
    return dev


def _progress(iterable, enabled: bool, **kw):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, dynamic_ncols=True, leave=False, **kw)


@dataclass
class Split:
    train: DeviceData
    test: DeviceData
    normalization: dict
    source: str


def load_data(cfg: TrainConfig, device: torch.device) -> Split:
    arrays = dataset_spec(cfg.dataset).loader(cfg.data_dir, progress=cfg.progress)
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


def build_initial_model(cfg: TrainConfig, num_classes: int) -> nn.Module:
    """The model a fresh run starts from: built, optionally initialised from ``cfg.init``,
    and ternarized for ``--mode ttq``."""
    if cfg.init:
        loaded = load_model(cfg.init, arch=cfg.arch)
        model = loaded.model
        if loaded.is_ternary and cfg.mode == "fp":
            raise ConfigError(f"--init {cfg.init} is a ternary checkpoint; --mode fp needs an FP one")
        already_ternary = loaded.is_ternary
    else:
        if cfg.arch not in list_models():
            raise ConfigError(f"--arch: unknown architecture {cfg.arch!r}; known: "
                              f"{', '.join(list_models())}")
        model = build_model(cfg.arch, num_classes=num_classes)
        already_ternary = False
    if cfg.mode == "ttq" and not already_ternary:
        ternarize(model, **cfg.quant_request())
    return model


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """SGD groups, each with an ``lr_mult`` applied to the scheduled LR.

    Conv/linear weights and biases get weight decay; batch-norm parameters only with
    ``wd_bn``.  The TTQ scales Wp/Wn form their own group (LR × ``scale_lr_mult``, decay
    only with ``wd_scales``): their gradient is a *sum* over all weights of a region
    (thousands of terms), so at the weights' LR one step can push a scale through zero.
    """
    decay, no_decay, scales = [], [], []
    scale_ids = {id(p) for _, m in ternary_layers(model) for p in (m.quantizer.wp, m.quantizer.wn)}
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
             amp: str = "off", progress: bool = False) -> tuple[float, float]:
    """Mean cross-entropy (nats per image) and accuracy (fraction) over ``data``."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    batches = _progress(data.batches(batch_size), progress, desc="test",
                        total=data.num_batches(batch_size))
    for x, y in batches:
        with _autocast(device, amp):
            out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum").double()
        correct += (out.argmax(1) == y).sum()
    model.train(was_training)
    n = max(len(data), 1)
    return float(loss_sum) / n, int(correct) / n


def _write_log(path: Path, history: list[dict]) -> None:
    """Rewrite ``log.jsonl`` from ``history`` atomically (used on resume)."""
    atomic_write_text(path, "".join(json.dumps(entry) + "\n" for entry in history))


class Trainer:
    """One training run; ``run()`` trains the remaining epochs and returns the last checkpoint."""

    def __init__(self, cfg: TrainConfig):
        cfg = cfg.resolved().validate()
        self.out = Path(cfg.out)
        self.resume_ckpt = None
        if cfg.resume:
            cfg = self._resume_config(cfg)
        elif (self.out / "last.pt").exists():
            raise ConfigError(f"{self.out} already holds a run (last.pt): pass --resume to "
                              f"continue it, or choose another --out")
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        # Denormal floats make CPU convolutions up to 10x slower once gradients get small.
        torch.set_flush_denormal(True)
        torch.manual_seed(cfg.seed)
        # The model first: a bad --arch/--init/threshold fails before any data work.
        if self.resume_ckpt is not None:
            self.model = load_model(self.out / "last.pt").model
        else:
            self.model = build_initial_model(cfg, num_classes=dataset_spec(cfg.dataset).num_classes)
        self.data = load_data(cfg, self.device)
        self.model.to(self.device)
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(param_groups(self.model, cfg), lr=cfg.lr,
                                         momentum=cfg.momentum, nesterov=cfg.nesterov)
        self.steps_per_epoch = self.data.train.num_batches(cfg.batch_size, drop_last=True)
        if self.steps_per_epoch == 0:
            raise ConfigError(f"--batch-size {cfg.batch_size} exceeds the {len(self.data.train)} "
                              f"training images; lower it or raise --limit-train")
        self.schedule = LRSchedule(
            peak=cfg.lr, total_steps=cfg.epochs * self.steps_per_epoch,
            warmup_steps=round(cfg.warmup_epochs * self.steps_per_epoch), kind=cfg.schedule,
            milestones=tuple(cfg.milestones), gamma=cfg.gamma)
        self.history: list[dict] = []
        self.best = {"test_acc": -1.0, "epoch": None}
        if self.resume_ckpt is not None:
            self._restore(self.resume_ckpt)
        self.ternary = [m for _, m in ternary_layers(self.model)]
        self.recorder = GradStatsRecorder(self.model) if self.ternary else None
        self.forward = (torch.compile(self.model) if cfg.compile else self.model)

    # ----- resume
    def _resume_config(self, cli_cfg: TrainConfig) -> TrainConfig:
        path = self.out / "last.pt"
        if not path.exists():
            raise ConfigError(f"--resume: {path} does not exist; nothing to resume")
        ckpt = read_checkpoint_file(path)
        if not isinstance(ckpt, dict) or "train_config" not in ckpt or "optimizer" not in ckpt:
            raise CheckpointError(f"{path} has no training state to resume from")
        stored = TrainConfig.from_dict(ckpt["train_config"])
        # The run's own settings win; only these may change on resume.
        for key in ("epochs", "device", "progress", "compile", "data_dir"):
            setattr(stored, key, getattr(cli_cfg, key))
        stored.out, stored.resume = str(self.out), True
        self.resume_ckpt = ckpt
        return stored.resolved().validate()

    def _restore(self, ckpt: dict) -> None:
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.history = list(ckpt["history"])
        metrics = ckpt.get("metrics", {})
        self.best = {"test_acc": metrics.get("best_test_acc", -1.0),
                     "epoch": metrics.get("best_epoch")}
        if len(self.history) >= self.cfg.epochs:
            raise ConfigError(f"{self.out / 'last.pt'} already finished {len(self.history)} "
                              f"epochs; raise --epochs to train further")

    # ----- one epoch
    def _train_epoch(self, epoch: int) -> dict:
        cfg, dev = self.cfg, self.device
        self.model.train()
        gen = torch.Generator(device=dev)
        gen.manual_seed(cfg.seed * 1_000_003 + epoch)
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        finite = torch.ones((), dtype=torch.bool, device=dev)
        seen = 0
        if self.recorder:
            self.recorder.reset()
        batches = self.data.train.batches(cfg.batch_size, shuffle=True, augment=True,
                                          generator=gen, drop_last=True)
        bar = _progress(batches, cfg.progress, total=self.steps_per_epoch,
                        desc=f"epoch {epoch + 1}/{cfg.epochs}")
        lr = cfg.lr
        for i, (x, y) in enumerate(bar):
            step = epoch * self.steps_per_epoch + i
            lr = self.schedule.lr_at(step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group["lr_mult"]
            record = bool(self.recorder and cfg.grad_stats_every and i % cfg.grad_stats_every == 0)
            if self.recorder:
                self.recorder.arm(record)
            forward = self.model if record else self.forward  # stats steps run eagerly
            with _autocast(dev, cfg.amp):
                out = forward(x)
                loss = F.cross_entropy(out.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            for layer in self.ternary:
                layer.quantizer.clamp_scales_()
            d = loss.detach()
            finite &= torch.isfinite(d)
            loss_sum += d.double() * y.shape[0]
            correct += (out.detach().argmax(1) == y).sum()
            seen += y.shape[0]
            if (i + 1) % LOG_EVERY == 0 or i + 1 == self.steps_per_epoch:
                self._check_finite(finite, epoch, i)
                if cfg.progress:
                    bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}",
                                    acc=f"{int(correct) / seen:.3f}", lr=f"{lr:.4g}")
        if self.recorder:
            self.recorder.arm(False)
        self._check_finite(finite, epoch, self.steps_per_epoch - 1)
        return {"lr": lr, "train_loss": float(loss_sum) / seen, "train_acc": int(correct) / seen}

    def _check_finite(self, finite: torch.Tensor, epoch: int, step: int) -> None:
        if not bool(finite):
            kept = (f"{self.out / 'last.pt'} (epoch {len(self.history)}) is kept"
                    if self.history else "no checkpoint was written")
            raise TrainingDiverged(
                f"training loss became NaN/Inf in epoch {epoch + 1} (by step {step + 1}); "
                f"{kept}; lower --lr or check the data")

    # ----- checkpoints
    def checkpoint(self, with_optimizer: bool) -> dict:
        cfg = self.cfg
        last = self.history[-1] if self.history else {}
        ckpt = {
            "format_version": FORMAT_VERSION,
            "arch": self.model.arch_name,
            "arch_kwargs": dict(self.model.arch_kwargs),
            "dataset": cfg.dataset,
            "normalization": self.data.normalization,
            "quant": quant_record(self.model),
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "history": list(self.history),
            "metrics": {
                "epochs_completed": len(self.history),
                "test_acc": last.get("test_acc"),
                "test_loss": last.get("test_loss"),
                "best_test_acc": self.best["test_acc"],
                "best_epoch": self.best["epoch"],
                "train_seconds": sum(h["seconds"] for h in self.history),
                "params": sum(p.numel() for p in self.model.parameters()),
                "train_images": len(self.data.train),
                "test_images": len(self.data.test),
            },
            "train_config": cfg.to_dict(),
            "data_source": self.data.source,
            "software": {"ttq_toolkit": __version__, "torch": str(torch.__version__)},
            "device": (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                       else "cpu"),
        }
        if with_optimizer:
            ckpt["optimizer"] = self.optimizer.state_dict()
        return ckpt

    def run(self) -> dict:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        log_path = self.out / "log.jsonl"
        _write_log(log_path, self.history)
        ckpt = None
        for epoch in range(len(self.history), cfg.epochs):
            t0 = time.perf_counter()
            train = self._train_epoch(epoch)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - t0
            test_loss, test_acc = evaluate(self.model, self.data.test, max(cfg.batch_size, 500),
                                           self.device, cfg.amp)
            if not math.isfinite(test_loss):
                self._check_finite(torch.tensor(False), epoch, self.steps_per_epoch - 1)
            entry = {"epoch": epoch + 1, **train, "test_loss": test_loss, "test_acc": test_acc,
                     "seconds": seconds, "layers": layer_history(self.model, self.recorder)}
            self.history.append(entry)
            is_best = test_acc > self.best["test_acc"]
            if is_best:
                self.best = {"test_acc": test_acc, "epoch": epoch + 1}
            ckpt = self.checkpoint(with_optimizer=True)
            save_checkpoint(ckpt, self.out / "last.pt")
            if is_best:
                best = dict(ckpt)
                best.pop("optimizer")
                save_checkpoint(best, self.out / "best.pt")
            with open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
            self._report(entry)
        return ckpt if ckpt is not None else self.checkpoint(with_optimizer=False)

    def _report(self, e: dict) -> None:
        line = (f"epoch {e['epoch']:>3}/{self.cfg.epochs}  lr {e['lr']:.4g}  "
                f"train loss {e['train_loss']:.4f} acc {e['train_acc']:.4f}  "
                f"test loss {e['test_loss']:.4f} acc {e['test_acc']:.4f}  {e['seconds']:.1f}s")
        if e["layers"]:
            zero = sum(v["frac_zero"] for v in e["layers"].values()) / len(e["layers"])
            line += f"  mean zero frac {zero:.3f}"
        if self.cfg.progress:
            from tqdm.auto import tqdm
            tqdm.write(line)
        else:
            print(line, flush=True)


def train(cfg: TrainConfig) -> dict:
    """Train as ``cfg`` says; return the final checkpoint dict (also written to disk)."""
    return Trainer(cfg).run()
