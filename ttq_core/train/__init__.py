"""Training: config, LR schedules, history, the loop behind ``ttq-train``."""

from .config import MODE_DEFAULTS, TrainConfig
from .schedule import LRSchedule

__all__ = ["LRSchedule", "MODE_DEFAULTS", "TrainConfig", "train", "Trainer"]


def __getattr__(name):  # the loop imports data/checkpoint code: load it on first use
    if name in ("train", "Trainer"):
        from . import loop
        return getattr(loop, name)
    raise AttributeError(name)
