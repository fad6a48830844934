"""The training loop behind ``ttq-train``: FP training and TTQ fine-tuning.

Outputs in ``cfg.out``: ``last.pt`` (every epoch, with optimizer state for ``--resume``),
``best.pt`` (highest test accuracy so far), both written atomically, and ``log.jsonl``
(one history entry per line).  Determinism: each epoch's data order and augmentation come
from a generator seeded with (seed, epoch), and the LR is a pure function of the step, so
``--resume`` continues exactly where an uninterrupted run would be (bitwise on CPU).

Under ``torchrun`` (several processes, :mod:`ttq_core.distributed`) the model is wrapped
in DistributedDataParallel; every rank takes a disjoint, equally long shard of each
epoch's permutation (so one step trains on ``world × batch_size`` images), evaluates a
contiguous block of the test split, and the sums behind the history (losses, correct
counts, images, gradient statistics) are added over ranks, so every number in the
history describes all ranks together.  Rank 0 alone writes ``last.pt``, ``best.pt`` and
``log.jsonl``; the others wait for it at a barrier.  A single-process run creates no
process group and computes exactly what it did before.

Size: a little over 450 lines because the :class:`Trainer` (set-up, epoch, checkpoint,
resume rules) is one idea kept in one place; its parts (data and model set-up, the run
folder) live in :mod:`.setup` and :mod:`.run_folder`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from .. import distributed
from ..checkpoint import (FORMAT_VERSION, load_model, read_checkpoint_file, save_checkpoint,
                          validate_fields)
from ..datasets import DATASETS, DatasetSpec, dataset_spec  # noqa: F401  (the one registry)
from ..devices import resolve_device  # noqa: F401  (re-exported: ttq_core.train.loop.resolve_device)
from ..errors import CheckpointError, ConfigError, TrainingDiverged
from ..folder_lock import exclusive_lock
from ..quantize import quant_record, ternary_layers
from .bn_calibration import recalibrate_batchnorm
from .config import TrainConfig
from .history import GradStatsRecorder, layer_history
from .probe import probe_act_sparsity
from .run_folder import (EPOCH_FOLDER, RUN_FILES, RUN_LOCK, _make_run_folder,  # noqa: F401
                         epoch_file,
                         _remove_stale_temp_files, _write_log)
from .schedule import LRSchedule
from .setup import (Split, _autocast, _progress, build_initial_model,  # noqa: F401
                    evaluate, initial_model, load_data, param_groups, training_normalization)

LOG_EVERY = 20  # steps between progress-bar updates (each one synchronises the device)


class Trainer:
    """One training run; ``run()`` trains the remaining epochs and returns the last checkpoint."""

    def __init__(self, cfg: TrainConfig, given: set[str] | None = None):
        # The order below is part of the contract: the seed is set before any model or data
        # work, and the model, data, optimizer and resumed state are built in one fixed
        # order, so that a run (and a --resume of it) is bitwise reproducible on CPU.
        self.cfg = self._setup_config(cfg, given)
        self._setup_device()
        # Denormal floats make CPU convolutions up to 10x slower once gradients get small.
        torch.set_flush_denormal(True)
        torch.manual_seed(self.cfg.seed)
        self._setup_model_and_data()
        self._setup_optimizer()
        self._setup_resume()
        self._setup_training_step()

    # ----- set-up (called once, in this order, by __init__)
    def _setup_config(self, cfg: TrainConfig, given: set[str] | None) -> TrainConfig:
        """The configuration to run: ``cfg`` resolved and validated, or under ``--resume``
        the stored one, checked against the fields ``given`` (see :meth:`_resume_config`).
        Sets ``out``, ``resume_ckpt`` and ``resume_changes``; a fresh run into a folder
        that already holds one is refused."""
        if given is None:  # the Python API: what differs from the defaults was given
            default = TrainConfig()
            given = {f.name for f in dataclasses.fields(TrainConfig)
                     if getattr(cfg, f.name) != getattr(default, f.name)}
        cfg = cfg.resolved().validate()
        self.out = Path(cfg.out)
        self.resume_ckpt = None
        self.resume_changes: dict = {}  # fields changed on --resume: {name: [old, new]}
        if cfg.resume:
            return self._resume_config(cfg, given)
        present = [f for f in RUN_FILES if (self.out / f).exists() and
                   (f != "log.jsonl" or (self.out / f).stat().st_size > 0)]
        epochs_folder = self.out / EPOCH_FOLDER
        if epochs_folder.is_dir() and any(epochs_folder.glob("epoch-*.pt")):
            present.append(f"{EPOCH_FOLDER}/epoch-*.pt")
        if present:
            raise ConfigError(f"{self.out} already holds a run ({', '.join(present)}): "
                              f"pass --resume to continue it, or choose another --out")
        return cfg

    def _setup_device(self) -> None:
        """The device, and this process's place in a torchrun launch ((0, 1) in a
        single-process run)."""
        cfg = self.cfg
        self.device = resolve_device(cfg.device)
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.shard = (self.rank, self.world)
        self.is_main = self.rank == 0
        self.show_progress = cfg.progress and self.is_main
        if cfg.sync_bn and self.world > 1 and self.device.type != "cuda":
            raise ConfigError("--sync-bn needs CUDA devices (NCCL): PyTorch's SyncBatchNorm "
                              "does not run on the CPU; drop --sync-bn for CPU/gloo runs")

    def _setup_model_and_data(self) -> None:
        """``model`` (on the device, batch-norm re-estimated if ternarized here, SyncBN if
        asked) and ``data``.  The model is built first, so a bad --arch/--init/threshold
        fails before any data work, unless the number of classes must come from the data."""
        cfg = self.cfg
        spec = dataset_spec(cfg.dataset)
        self.data = None
        if spec.num_classes is None and self.resume_ckpt is None:
            self.data = load_data(cfg, self.device)  # the classes come from the data
        just_ternarized = False
        if self.resume_ckpt is not None:
            self.model = load_model(self.out / "last.pt").model
            recorded = self.resume_ckpt.get("normalization")
        else:
            self.model, just_ternarized, recorded = initial_model(
                cfg, num_classes=spec.num_classes or self.data.num_classes)
        if self.data is None:
            self.data = load_data(cfg, self.device)
        # the inputs as the starting model saw them (its record, else --normalization)
        self.data = training_normalization(cfg, recorded, self.data)
        if self.is_main and (cfg.init or cfg.normalization_request() is not None):
            n = self.data.normalization
            print(f"ttq-train: input normalisation mean "
                  f"({', '.join(f'{v:.4g}' for v in n['mean'])}) std "
                  f"({', '.join(f'{v:.4g}' for v in n['std'])}): "
                  f"{n.get('origin') or 'the ' + n.get('computed_on', 'data') + ' statistics'}",
                  flush=True)
        self.model.to(self.device)
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        self.bn_recalibrated = 0  # images the batch-norm statistics were re-estimated on
        if just_ternarized:
            self.bn_recalibrated = recalibrate_batchnorm(self.model, self.data.train,
                                                         cfg.bn_recal_images,
                                                         augment=cfg.bn_recal_augment)
        if cfg.sync_bn and self.world > 1:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)

    def _setup_optimizer(self) -> None:
        """``optimizer``, ``steps_per_epoch`` (refusing a batch larger than a rank's share of
        the training set) and the LR ``schedule``."""
        cfg = self.cfg
        self.optimizer = torch.optim.SGD(param_groups(self.model, cfg), lr=cfg.lr,
                                         momentum=cfg.momentum, nesterov=cfg.nesterov)
        self.steps_per_epoch = self.data.train.num_batches(cfg.batch_size, drop_last=True,
                                                           shard=self.shard)
        if self.steps_per_epoch == 0:
            per_rank = (f" ({len(self.data.train) // self.world} per each of {self.world} "
                        f"processes)" if self.world > 1 else "")
            raise ConfigError(f"--batch-size {cfg.batch_size} exceeds the {len(self.data.train)} "
                              f"training images{per_rank}; lower it or raise --limit-train")
        self.schedule = LRSchedule(
            peak=cfg.lr, total_steps=cfg.epochs * self.steps_per_epoch,
            warmup_steps=round(cfg.warmup_epochs * self.steps_per_epoch), kind=cfg.schedule,
            milestones=tuple(cfg.milestones), gamma=cfg.gamma)

    def _setup_resume(self) -> None:
        """``history`` and ``best``: empty for a fresh run, else restored (with the optimizer
        state) from the checkpoint being resumed."""
        self.history: list[dict] = []
        self.best = {"test_acc": -1.0, "epoch": None}
        if self.resume_ckpt is not None:
            self._restore(self.resume_ckpt)

    def _setup_training_step(self) -> None:
        """What a training step uses: the ternary layers (their scales are clamped after each
        step), the gradient-statistics recorder, and the forward function.

        Training forwards go through DDP under torchrun (gradients averaged over ranks;
        batch-norm buffers are not broadcast each step but averaged once per epoch, see
        _sync_epoch); evaluation and checkpoints use the bare model."""
        self.ternary = [m for _, m in ternary_layers(self.model)]
        self.recorder = GradStatsRecorder(self.model) if self.ternary else None
        self.train_model = self.model
        if self.world > 1:
            import inspect

            from torch.nn.parallel import DistributedDataParallel
            # no buffer broadcast before each forward (newer torch names the option
            # forward_sync_buffers and deprecates broadcast_buffers)
            no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                       inspect.signature(DistributedDataParallel).parameters
                       else {"broadcast_buffers": False})
            self.train_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                **no_sync)
        self.forward = (torch.compile(self.train_model) if self.cfg.compile else self.train_model)

    # ----- resume
    def _resume_config(self, cli_cfg: TrainConfig, given: set[str]) -> TrainConfig:
        """The stored configuration of the run in ``--out``, with the fields the user gave
        checked: equal to the stored value, or one of :data:`RESUME_MAY_CHANGE` (recorded
        in ``resume_changes`` and in the next history entry); anything else is refused."""
        path = self.out / "last.pt"
        if not path.exists():
            raise ConfigError(f"--resume: {path} does not exist; nothing to resume")
        ckpt = read_checkpoint_file(path)
        if not isinstance(ckpt, dict):
            raise CheckpointError(f"{path} is not a toolkit checkpoint; nothing to resume")
        validate_fields(ckpt, path)  # a field of the wrong type: one line naming it
        if not isinstance(ckpt.get("train_config"), dict) or not isinstance(ckpt.get("optimizer"), dict):
            raise CheckpointError(f"{path} has no training state (train_config, optimizer) "
                                  f"to resume from")
        try:
            stored = TrainConfig.from_dict(ckpt["train_config"])
        except TypeError as e:
            raise CheckpointError(f"{path}: field 'train_config' is malformed ({e})") from None
        given = set(given) - {"resume", "out"}
        refused = []
        for key in sorted(given):
            new, old = getattr(cli_cfg, key), getattr(stored, key)
            if new == old:
                continue
            if key in RESUME_MAY_CHANGE:
                setattr(stored, key, new)
                if key not in RESUME_NOT_RECORDED:
                    self.resume_changes[key] = [old, new]
            else:
                refused.append(f"--{key.replace('_', '-')} {new} (the run has {old})")
        if refused:
            raise ConfigError(f"--resume continues the stored configuration of {self.out}; "
                              f"these flags differ from it: {'; '.join(refused)}. Drop them, "
                              f"or start a new run with another --out")
        if "epochs" in self.resume_changes and stored.epochs < len(ckpt.get("history") or []):
            raise ConfigError(f"--epochs {stored.epochs}: {path} already finished "
                              f"{len(ckpt['history'])} epochs")
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
        _test_only_failure(self.rank, epoch)
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
                                          generator=gen, drop_last=True, shard=self.shard)
        bar = _progress(batches, self.show_progress, total=self.steps_per_epoch,
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
            forward = self.train_model if record else self.forward  # stats steps run eagerly
            with _autocast(dev, cfg.amp):
                out = forward(x)
                loss = F.cross_entropy(out.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            for layer in self.ternary:  # positivity of learned scales (no-op for twn, bwn)
                layer.quantizer.clamp_scales_()
            d = loss.detach()
            finite &= torch.isfinite(d)
            loss_sum += d.double() * y.shape[0]
            correct += (out.detach().argmax(1) == y).sum()
            seen += y.shape[0]
            if (i + 1) % LOG_EVERY == 0 or i + 1 == self.steps_per_epoch:
                self._check_finite(finite, epoch, i)
                if self.show_progress:
                    bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}",
                                    acc=f"{int(correct) / seen:.3f}", lr=f"{lr:.4g}")
        if self.recorder:
            self.recorder.arm(False)
        self._check_finite(finite, epoch, self.steps_per_epoch - 1)
        if self.world > 1:
            loss_total, correct_total, seen = distributed.sum_numbers(
                [float(loss_sum), int(correct), seen], dev)
            self._sync_epoch()
            return {"lr": lr, "train_loss": loss_total / seen,
                    "train_acc": int(correct_total) / int(seen)}
        return {"lr": lr, "train_loss": float(loss_sum) / seen, "train_acc": int(correct) / seen}

    def _sync_epoch(self) -> None:
        """End of an epoch under torchrun: make the history describe all ranks.

        Reduced here: the gradient-statistics accumulators (sums of |∂L/∂w| before and
        after scaling, and region sizes) are summed over ranks, so each recorded mean is
        the average over ranks and sampled steps of each rank's *local* gradient (before
        DDP averages it), i.e. the gradient of a --batch-size batch, as in a single
        process.  The batch-norm running statistics are averaged over ranks, so every rank
        (and the checkpoint) holds one model.  Weights and Wp/Wn need nothing: DDP keeps
        them identical, so the weight-sparsity history is the same on every rank.
        """
        if self.recorder:
            for buf in self.recorder.buffers.values():
                distributed.all_reduce_sum(buf)
        distributed.average_buffers(self.model)

    def _check_finite(self, finite: torch.Tensor, epoch: int, step: int) -> None:
        if self.world > 1:  # every rank stops together when any rank saw NaN/Inf
            finite = distributed.all_reduce_min(finite.to(torch.int64))
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
            # how many processes trained it; one step saw global_batch_size images
            "distributed": {"world_size": self.world,
                            "backend": distributed.backend_for(self.device) if self.world > 1 else None,
                            "global_batch_size": self.world * cfg.batch_size,
                            "sync_bn": bool(cfg.sync_bn and self.world > 1)},
        }
        if with_optimizer:
            ckpt["optimizer"] = self.optimizer.state_dict()
        return ckpt

    def run(self) -> dict:
        cfg = self.cfg
        log_path = self.out / "log.jsonl"
        if self.is_main:  # rank 0 writes every file; the others wait for it at barriers
            self.out.mkdir(parents=True, exist_ok=True)
            _write_log(log_path, self.history)
        distributed.barrier()
        ckpt = None
        for epoch in range(len(self.history), cfg.epochs):
            t0 = time.perf_counter()
            train = self._train_epoch(epoch)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - t0
            if cfg.mode == "ttq":  # evaluate (and save) with statistics of today's weights
                recalibrate_batchnorm(self.model, self.data.train, cfg.bn_recal_images,
                                      augment=cfg.bn_recal_augment)
            test_loss, test_acc = evaluate(self.model, self.data.test, max(cfg.batch_size, 500),
                                           self.device, cfg.amp, shard=self.shard)
            if not math.isfinite(test_loss):
                self._check_finite(torch.tensor(False, device=self.device), epoch,
                                   self.steps_per_epoch - 1)
            entry = {"epoch": epoch + 1, **train, "test_loss": test_loss, "test_acc": test_acc,
                     "seconds": seconds, "layers": layer_history(self.model, self.recorder)}
            if cfg.probe_images:  # the same first N test images every epoch (train/probe.py)
                entry["probe"] = probe_act_sparsity(self.model, self.data.test, cfg.probe_images,
                                                    max(cfg.batch_size, 250))
            if self.resume_changes:  # first epoch after a --resume that changed settings
                entry["resumed_with"] = {k: {"from": a, "to": b}
                                         for k, (a, b) in self.resume_changes.items()}
                self.resume_changes = {}
            self.history.append(entry)
            is_best = test_acc > self.best["test_acc"]
            if is_best:
                self.best = {"test_acc": test_acc, "epoch": epoch + 1}
            ckpt = self.checkpoint(with_optimizer=True)
            if self.is_main:
                # best.pt first: a kill between the two writes leaves last.pt one epoch
                # behind, and --resume redoes that epoch (same numbers) and both files
                if is_best:
                    best = dict(ckpt)
                    best.pop("optimizer")
                    save_checkpoint(best, self.out / "best.pt")
                _test_only_kill(epoch)
                if cfg.keep_epochs:  # before last.pt: a resume redoes an epoch whose file is missing
                    kept = dict(ckpt)
                    kept.pop("optimizer")
                    (self.out / EPOCH_FOLDER).mkdir(exist_ok=True)
                    save_checkpoint(kept, self.out / epoch_file(epoch + 1))
                save_checkpoint(ckpt, self.out / "last.pt")
                with open(log_path, "a") as f:
                    f.write(json.dumps(entry) + "\n")
                self._report(entry)
            distributed.barrier()  # the epoch's checkpoint is complete before anyone goes on
        return ckpt if ckpt is not None else self.checkpoint(with_optimizer=False)

    def _report(self, e: dict) -> None:
        line = (f"epoch {e['epoch']:>3}/{self.cfg.epochs}  lr {e['lr']:.4g}  "
                f"train loss {e['train_loss']:.4f} acc {e['train_acc']:.4f}  "
                f"test loss {e['test_loss']:.4f} acc {e['test_acc']:.4f}  {e['seconds']:.1f}s")
        if e["layers"]:
            zero = sum(v["frac_zero"] for v in e["layers"].values()) / len(e["layers"])
            line += f"  mean zero frac {zero:.3f}"
        if self.show_progress:
            from tqdm.auto import tqdm
            tqdm.write(line)
        else:
            print(line, flush=True)


def _test_only_failure(rank: int, epoch: int) -> None:
    """TEST-ONLY hook: with TTQ_TEST_FAIL_RANK=r and TTQ_TEST_FAIL_EPOCH=e (1-based) in the
    environment, rank r raises at the start of epoch e, to test how a multi-process run
    fails and resumes (tests/test_distributed.py).  Unset in any real run."""
    fail_rank, fail_epoch = os.environ.get("TTQ_TEST_FAIL_RANK"), os.environ.get("TTQ_TEST_FAIL_EPOCH")
    if fail_rank is not None and fail_epoch is not None and \
            int(fail_rank) == rank and int(fail_epoch) == epoch + 1:
        raise RuntimeError(f"injected test failure at the start of epoch {epoch + 1} "
                           f"(TTQ_TEST_FAIL_RANK={fail_rank})")


# Settings --resume may change (the rest must match the stored run): more epochs
# (stretching the LR schedule, recorded in the history), where the data and the
# computation are, which do not change the numbers on CPU.
RESUME_MAY_CHANGE = frozenset({"epochs", "data_dir", "device", "progress", "compile", "workers",
                               "probe_images", "keep_epochs"})
RESUME_NOT_RECORDED = frozenset({"progress"})


def _test_only_kill(epoch: int) -> None:
    """TEST-ONLY hook: with TTQ_TEST_KILL_AFTER_BEST=e (1-based) in the environment the
    process SIGKILLs itself after writing best.pt of epoch e (if a best), before last.pt
    (tests/test_reliability.py).  Unset in any real run."""
    kill_epoch = os.environ.get("TTQ_TEST_KILL_AFTER_BEST")
    if kill_epoch is not None and int(kill_epoch) == epoch + 1:
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


def train(cfg: TrainConfig, given: set[str] | None = None) -> dict:
    """Train as ``cfg`` says; return the final checkpoint dict (also written to disk).

    ``given``: the config fields the user set explicitly (the CLI passes the flags given);
    with ``--resume`` they must match the stored run or be ones :data:`RESUME_MAY_CHANGE`
    allows.  ``None`` counts every field that differs from ``TrainConfig()``'s default.

    The run folder is locked for the whole run (:mod:`ttq_core.folder_lock`): a second
    ``ttq-train`` on the same ``--out``, fresh or ``--resume``, is refused naming the
    first one's PID.  Under the lock, temporary files left by a killed save are removed.
    Under torchrun (``WORLD_SIZE > 1``) this initialises the process group (gloo on the
    CPU, NCCL on CUDA) and trains data-parallel, rank 0 holding the lock; see the module
    docstring."""
    out = Path(cfg.resolved().out)
    with distributed.session(cfg.device):
        if not distributed.is_main():
            return Trainer(cfg, given).run()
        created = _make_run_folder(out)
        try:
            with exclusive_lock(out / RUN_LOCK, f"run folder {out}"):
                _remove_stale_temp_files(out)
                return Trainer(cfg, given).run()
        except BaseException:
            if created:  # a run that failed before writing anything leaves no empty folder
                with contextlib.suppress(OSError):
                    out.rmdir()
            raise
