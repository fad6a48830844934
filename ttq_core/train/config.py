"""The training configuration: one dataclass, visible at a glance, stored in every checkpoint.

Each field has a unit/meaning comment; ``None`` for ``lr``/``weight_decay``/
``warmup_epochs`` means "the mode's default" (:data:`MODE_DEFAULTS`), resolved by
:meth:`TrainConfig.resolved`.  ``validate`` raises a one-line ConfigError naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

# Defaults that differ between training a FP model and fine-tuning it into TTQ.
MODE_DEFAULTS: dict[str, dict[str, float]] = {
    # FP: the usual CIFAR ResNet recipe (SGD 0.1, cosine, wd 5e-4, 1 warm-up epoch).
    "fp": {"lr": 0.1, "weight_decay": 5e-4, "warmup_epochs": 1},
    # TTQ fine-tuning as in the authors' code (czhu95/ternarynet): LR 0.1 (they step it
    # 0.1 -> 0.01 -> 0.001 -> 0.0002; we use cosine from 0.1, measured in README "TTQ as
    # implemented"), the paper's weight decay 2e-4, no warm-up.
    "ttq": {"lr": 0.1, "weight_decay": 2e-4, "warmup_epochs": 0},
}

SCHEDULES = ("cosine", "step", "constant")
AMP_MODES = ("auto", "bf16", "off")


@dataclass
class TrainConfig:
    # --- what to train
    arch: str = "resnet20"               # model registry name
    dataset: str = "cifar10"             # dataset registry name
    data_dir: str | None = None          # data source; None: $TTQ_DATA_DIR or the cache folder
    mode: str = "fp"                     # "fp" (full precision) or "ttq" (ternary)
    init: str | None = None              # checkpoint to start from (FP model for TTQ fine-tuning)
    normalization: str | None = None     # input statistics for a plain-state_dict --init that
                                         # records none: "cifar10" or "imagenet" (None: the data's)
    norm_mean: list[float] | None = None  # ... or explicit per-channel mean on [0, 1] pixels
    norm_std: list[float] | None = None   # ... and std (with norm_mean)
    # --- optimisation
    epochs: int = 40                     # passes over the training set
    batch_size: int = 128                # images per step
    lr: float | None = None              # peak learning rate (None: mode default)
    momentum: float = 0.9                # SGD momentum
    nesterov: bool = False               # Nesterov momentum
    weight_decay: float | None = None    # L2 on conv/linear weights and biases (None: mode default)
    wd_bn: bool = False                  # also decay batch-norm weights/biases
    wd_scales: bool = True               # decay the TTQ scales Wp, Wn too (the authors' code does)
    scale_lr_mult: float = 1.0           # LR of Wp, Wn relative to the weights' LR (authors: same LR)
    schedule: str = "cosine"             # "cosine", "step" or "constant" after warm-up
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])  # step schedule: fractions of the run
    gamma: float = 0.1                   # step schedule: LR factor at each milestone
    warmup_epochs: float | None = None   # linear warm-up from 0, in epochs (None: mode default)
    # --- quantization (mode "ttq": quantized fine-tuning)
    quantizer: str = "ttq"               # weight quantizer: ttq, twn, bwn, int4, int8 (quantize.family);
                                         # the options below up to scale_init are TTQ's
    threshold: float = 0.05              # t in Δ = t·max|w| for every layer
    layer_thresholds: dict[str, float] = field(default_factory=dict)  # {layer name or glob: t}
    target_sparsity: float | None = None  # fixed fraction of zero weights per layer instead of t
    layer_sparsity: dict[str, float] = field(default_factory=dict)    # {layer name or glob: r}
    keep_fp: list[str] | None = None     # layers (names/globs) kept FP; None: first conv + last linear
    grad_scaling: bool = True            # TTQ's Wp/1/Wn latent-gradient multipliers (False: plain STE)
    scale_init: str = "one"              # Wp, Wn start at "one" (authors' code) or "least-squares"
    bn_recal_images: int = 2000          # re-estimate batch-norm statistics on this many training
                                         # images after ternarizing and after each epoch (0: off)
    bn_recal_augment: bool = True        # ... drawn through the training transform (crop + flip);
                                         # False: unaugmented, as toolkit 0.1 did (-2.7 points)
    threshold_plan: str | None = None    # plan file the per-layer values above were read from (provenance)
    grad_stats_every: int = 10           # record latent-gradient statistics every N steps (0: never)
    probe_images: int = 0                # after each epoch, measure every conv/linear input's zero
                                         # fraction on this many fixed test images (0: off; train/probe.py)
    keep_epochs: bool = False            # also save OUT/epochs/epoch-NNN.pt (no optimizer) every epoch
    # --- data subset
    limit_train: int | None = None       # use a fixed class-balanced subset of this many train images
    limit_test: int | None = None        # likewise for the test split
    # --- run
    out: str | None = None               # output folder (None: runs/<arch>-<mode>)
    resume: bool = False                 # continue from OUT/last.pt
    seed: int = 0                        # seeds model init, data order and augmentation
    device: str = "auto"                 # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    amp: str = "auto"                    # mixed precision: "auto" (bf16 on CUDA), "bf16", "off"
    compile: bool = False                # torch.compile the model (CUDA speed-up)
    progress: bool = True                # tqdm progress bars
    # --- scale-out (torchrun) and the ImageNet path
    sync_bn: bool = False                # under torchrun: BatchNorm -> SyncBatchNorm (CUDA/NCCL only)
    workers: int = 4                     # DataLoader worker processes per rank (ImageNet path; 0: none)
    image_size: int | None = None        # ImageNet path: crop side in pixels (None: the model's, 224)
    preset: str | None = None            # named recipe the defaults came from (train/presets.py)

    def resolved(self) -> "TrainConfig":
        """A copy with mode defaults filled in and the output folder chosen."""
        cfg = dataclasses.replace(self)
        for key, value in MODE_DEFAULTS.get(cfg.mode, {}).items():
            if getattr(cfg, key) is None:
                setattr(cfg, key, value)
        if cfg.out is None:
            cfg.out = f"runs/{cfg.arch}-{cfg.mode}"
        return cfg

    def validate(self) -> "TrainConfig":
        def bad(name: str, why: str):
            raise ConfigError(f"--{name.replace('_', '-')}: {why}")
        from ..models import list_models  # registry lookup only
        if self.arch not in list_models():
            bad("arch", f"unknown architecture {self.arch!r}; known: {', '.join(list_models())}")
        if self.mode not in MODE_DEFAULTS:
            bad("mode", f"must be one of {', '.join(MODE_DEFAULTS)}, got {self.mode!r}")
        if self.epochs < 1:
            bad("epochs", f"must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            bad("batch_size", f"must be at least 1, got {self.batch_size}")
        for f in dataclasses.fields(self):  # inf/NaN: one line now, not an OverflowError later
            v = getattr(self, f.name)
            if isinstance(v, float) and (v != v or abs(v) == float("inf")):
                bad(f.name, f"must be a finite number, got {v}")
        for name in ("lr", "weight_decay", "warmup_epochs"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                bad(name, f"must be >= 0, got {v}")
        if self.schedule not in SCHEDULES:
            bad("schedule", f"must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if any(not 0 < m < 1 for m in self.milestones):
            bad("milestones", f"must be fractions of the run in (0, 1), got {self.milestones}")
        if self.amp not in AMP_MODES:
            bad("amp", f"must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if not self.scale_lr_mult >= 0:
            bad("scale_lr_mult", f"must be >= 0, got {self.scale_lr_mult}")
        if not 0 <= self.momentum < 1:
            bad("momentum", f"must be in [0, 1), got {self.momentum}")
        for name in ("limit_train", "limit_test"):
            v = getattr(self, name)
            if v is not None and v < 1:
                bad(name, f"must be a positive number of images, got {v}")
        if self.workers < 0:
            bad("workers", f"must be >= 0, got {self.workers}")
        if self.image_size is not None and self.image_size < 16:
            bad("image_size", f"must be at least 16 pixels, got {self.image_size}")
        from ..quantize.layers import SCALE_INITS
        if self.scale_init not in SCALE_INITS:
            bad("scale_init", f"must be one of {', '.join(SCALE_INITS)}, got {self.scale_init!r}")
        if self.bn_recal_images < 0:
            bad("bn_recal_images", f"must be >= 0, got {self.bn_recal_images}")
        if self.grad_stats_every < 0:
            bad("grad_stats_every", f"must be >= 0, got {self.grad_stats_every}")
        if self.probe_images < 0:
            bad("probe_images", f"must be >= 0 (0: no probe), got {self.probe_images}")
        self.normalization_request()  # one-line errors for --normalization/--mean/--std
        uses_sparsity = self.target_sparsity is not None or bool(self.layer_sparsity)
        if uses_sparsity and self.layer_thresholds:
            bad("layer_threshold", "cannot be combined with --target-sparsity/--layer-sparsity "
                "(one threshold rule per run)")
        if self.target_sparsity is not None and not 0 <= self.target_sparsity < 1:
            bad("target_sparsity", f"must be a fraction in [0, 1), got {self.target_sparsity}")
        if self.mode == "fp" and (uses_sparsity or self.layer_thresholds or not self.grad_scaling):
            bad("mode", "ternarization options need --mode ttq")
        self._validate_quantizer()
        return self

    def _validate_quantizer(self) -> None:
        """``quantizer`` is a registered method; with --mode fp it must stay the default
        (not checked on the flags of a --resume, where the stored run's mode counts); TTQ's
        own options keep their defaults with another method (one line each)."""
        from ..quantize.family import get_quantizer, quantizer_names
        if self.quantizer not in quantizer_names():
            raise ConfigError(f"--quantizer: must be one of {', '.join(quantizer_names())}, "
                              f"got {self.quantizer!r}")
        if self.mode == "fp" and self.quantizer != "ttq" and not self.resume:
            raise ConfigError(f"--quantizer {self.quantizer}: --mode fp trains full precision; "
                              f"use --mode ttq (the quantized fine-tuning mode) to train "
                              f"{self.quantizer} weights")
        if self.quantizer == "ttq":
            return
        given = ttq_only_options(self)
        if given:
            raise ConfigError(f"{given[0]} applies to --quantizer ttq only; "
                              f"--quantizer {self.quantizer} sets its own threshold and scales: "
                              f"drop {given[0]}")
        if not self.wd_scales and not get_quantizer(self.quantizer).learned:
            raise ConfigError(f"--no-wd-scales: --quantizer {self.quantizer} has no learned "
                              f"scales to decay; drop it")

    def normalization_request(self):
        """The ``--normalization``/``--mean``/``--std`` request (None: nothing asked), checked
        (:func:`ttq_core.normalization.normalization_request`)."""
        from ..normalization import normalization_request
        return normalization_request(self.normalization, self.norm_mean, self.norm_std)

    def quant_request(self) -> dict[str, Any]:
        """Arguments for ``ternarize`` (method, keep_fp and, for ttq, the threshold rule
        and value(s), scale_grad, scale_init)."""
        if self.quantizer != "ttq":
            return {"method": self.quantizer, "keep_fp": self.keep_fp}
        if self.target_sparsity is not None or self.layer_sparsity:
            rule = "sparsity"
            values: Any = dict(self.layer_sparsity)
            if self.target_sparsity is not None:
                values = {**values, "*": self.target_sparsity} if values else self.target_sparsity
        else:
            rule = "threshold"
            values = ({**self.layer_thresholds, "*": self.threshold} if self.layer_thresholds
                      else self.threshold)
        return {"rule": rule, "threshold": values, "keep_fp": self.keep_fp,
                "scale_grad": self.grad_scaling, "scale_init": self.scale_init}

    def with_threshold_plan(self, path: str) -> "TrainConfig":
        """A copy whose per-layer rule values (and, unless given, kept-FP layers) come from
        the threshold-plan file at ``path`` (see :mod:`ttq_core.quantize.plan_file`)."""
        from ..quantize.plan_file import ThresholdPlan
        if self.layer_thresholds or self.layer_sparsity or self.target_sparsity is not None:
            raise ConfigError("--threshold-plan: cannot be combined with --layer-threshold, "
                              "--target-sparsity or --layer-sparsity (the plan sets every layer)")
        plan = ThresholdPlan.load(path)
        cfg = dataclasses.replace(self, threshold_plan=str(path))
        if plan.rule == "sparsity":
            cfg.layer_sparsity = dict(plan.layers)
        elif plan.rule == "threshold":
            cfg.layer_thresholds = dict(plan.layers)
        else:
            raise ConfigError(f"--threshold-plan {path}: rule {plan.rule!r} cannot be trained "
                              f"from the command line (use 'threshold' or 'sparsity')")
        if cfg.keep_fp is None and plan.keep_fp is not None:
            cfg.keep_fp = list(plan.keep_fp)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Rebuild a stored config.  Fields a config written before they existed lacks
        get the value those runs actually used (:data:`LEGACY_VALUES`), not today's
        default, so a resumed old run continues exactly as it started."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {**LEGACY_VALUES, **{k: v for k, v in d.items() if k in known}}
        return cls(**values)


# What runs stored before a field existed did (for TrainConfig.from_dict).
LEGACY_VALUES: dict[str, Any] = {"scale_init": "least-squares", "bn_recal_images": 0,
                                 "bn_recal_augment": False, "quantizer": "ttq"}

# TrainConfig fields that only TTQ uses, with the flag that sets each (a non-default value
# with another --quantizer is refused).
TTQ_ONLY_FLAGS: dict[str, str] = {
    "threshold": "--threshold", "layer_thresholds": "--layer-threshold",
    "target_sparsity": "--target-sparsity", "layer_sparsity": "--layer-sparsity",
    "threshold_plan": "--threshold-plan", "grad_scaling": "--no-grad-scaling",
    "scale_init": "--scale-init", "scale_lr_mult": "--scale-lr-mult"}


def ttq_only_options(cfg: TrainConfig) -> list[str]:
    """The flags of TTQ-only options that ``cfg`` sets to a value other than the default."""
    default = TrainConfig()
    return [flag for name, flag in TTQ_ONLY_FLAGS.items()
            if getattr(cfg, name) != getattr(default, name)]
