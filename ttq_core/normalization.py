"""Which input normalisation a network is measured with, and where that choice came from.

A network expects its inputs as ``(x - mean) / std`` per channel, on [0, 1] pixel values,
with the statistics it was trained with.  A toolkit checkpoint records them (field
``normalization``); a plain state_dict does not, so the user says it
(``ttq-report --normalization imagenet`` or ``--mean 0.5 0.5 0.5 --std 0.25 0.25 0.25``).
Precedence, for each input file (:func:`choose_normalization`):

1. the checkpoint's own record (a request given too is ignored for it, and the origin
   says so);
2. the user's request;
3. the measurement data's default (CIFAR-10: its train split's channel statistics,
   ≈ (0.4913, 0.4821, 0.4465) / (0.2452, 0.2428, 0.2606) on the JPEG copy; ImageNet:
   torchvision's constants).

Named statistics: ``imagenet`` is torchvision's (0.485, 0.456, 0.406) / (0.229, 0.224,
0.225); ``cifar10`` is the CIFAR-10 train split's per-channel mean and population std as
``ttq-train`` computes and records them (so it needs the CIFAR-10 data).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from .data.imagenet import IMAGENET_MEAN, IMAGENET_STD  # torchvision's constants
from .errors import ConfigError

NAMES = ("cifar10", "imagenet")


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``mean``/``std`` of [0, 1] pixel values and a sentence saying where they
    came from (``origin``)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    origin: str

    def as_meta(self) -> dict:
        """JSON-able: {"mean": [...], "std": [...], "origin": "..."}."""
        return {"mean": list(self.mean), "std": list(self.std), "origin": self.origin}

    def as_dict(self) -> dict:
        """The checkpoint-style {"mean": [...], "std": [...]}."""
        return {"mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class NormalizationRequest:
    """What the user asked for: a ``name`` from :data:`NAMES`, or explicit ``mean``/``std``."""

    name: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def describe(self) -> str:
        if self.name:
            return f"--normalization {self.name}"
        return (f"--mean {' '.join(f'{v:g}' for v in self.mean)} "
                f"--std {' '.join(f'{v:g}' for v in self.std)}")


def normalization_request(name: str | None = None, mean: Sequence[float] | None = None,
                          std: Sequence[float] | None = None,
                          channels: int = 3) -> NormalizationRequest | None:
    """Check the user's flags; ``None`` when nothing was asked.  One ConfigError line for a
    name and numbers together, a mean without std, wrong lengths, or a std that is not a
    positive finite number."""
    if name is not None and (mean is not None or std is not None):
        raise ConfigError("give either --normalization or --mean/--std, not both")
    if name is not None:
        if name not in NAMES:
            raise ConfigError(f"--normalization: unknown name {name!r}; known: {', '.join(NAMES)} "
                              f"(or give --mean and --std)")
        return NormalizationRequest(name=name)
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ConfigError("--mean and --std go together: give both (per channel, on [0, 1] "
                          "pixel values, e.g. --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225)")
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    for flag, values in (("--mean", mean), ("--std", std)):
        if len(values) not in (1, channels):
            raise ConfigError(f"{flag} needs 1 or {channels} values (one per channel), got "
                              f"{len(values)}")
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"{flag} values must be finite numbers, got {list(values)}")
    if any(v <= 0 for v in std):
        raise ConfigError(f"--std values must be positive, got {list(std)}")
    mean = mean * channels if len(mean) == 1 else mean
    std = std * channels if len(std) == 1 else std
    return NormalizationRequest(mean=mean, std=std)


def choose_normalization(recorded: Mapping | None, request: NormalizationRequest | None,
                         named: Mapping[str, Normalization],
                         default: Normalization) -> Normalization:
    """The normalisation one input is measured with (precedence in the module doc).

    ``recorded``: the checkpoint's ``normalization`` field or None; ``named``: the
    statistics the measurement data can offer by name (a name it lacks is a ConfigError);
    ``default``: what the data uses when nothing else says."""
    if recorded:
        mean = tuple(float(v) for v in recorded["mean"])
        std = tuple(float(v) for v in recorded["std"])
        origin = "recorded in the checkpoint"
        if request is not None:
            asked = (named.get(request.name) if request.name is not None
                     else Normalization(request.mean, request.std, ""))
            if asked is not None and _same_statistics(asked, mean, std):
                origin += f" (the same statistics as {request.describe()})"
            else:
                origin += (f"; {request.describe()} was not applied to it: that flag sets "
                           f"the statistics of inputs that record none")
        return Normalization(mean, std, origin)
    if request is None:
        return default
    if request.name is not None:
        if request.name not in named:
            raise ConfigError(f"--normalization {request.name} is not available with this "
                              f"dataset (offered: {', '.join(named)}); give --mean/--std")
        n = named[request.name]
        return Normalization(n.mean, n.std, f"--normalization {request.name}: {n.origin}")
    return Normalization(request.mean, request.std, f"given as {request.describe()}")


def _same_statistics(n: Normalization, mean, std, rel: float = 1e-4) -> bool:
    return (len(n.mean) == len(mean) and len(n.std) == len(std)
            and all(math.isclose(a, b, rel_tol=rel) for a, b in zip(n.mean + n.std, mean + std)))


def renormalized(source, normalization: Normalization):
    """A shallow copy of a ``BatchSource`` (``DeviceData``, ImageNet ``LoaderData``) that
    normalises with ``normalization`` instead (the images are shared, not copied)."""
    import torch
    out = copy.copy(source)
    out.mean = torch.tensor(normalization.mean, dtype=torch.float32,
                            device=source.device).view(1, -1, 1, 1)
    out.std = torch.tensor(normalization.std, dtype=torch.float32,
                           device=source.device).view(1, -1, 1, 1)
    return out


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "NAMES", "Normalization", "NormalizationRequest",
           "normalization_request", "choose_normalization", "renormalized"]
