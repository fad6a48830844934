"""Threshold-plan files: per-layer threshold-rule values chosen by a planner, as JSON.

A plan is what :mod:`ttq_analysis.threshold_plan` writes and ``ttq-train --threshold-plan``
reads (the core only reads; planners that need data or a cost model live downstream)::

    {"format": "ttq-threshold-plan", "version": 1,
     "rule": "sparsity",                        # a registered threshold rule
     "layers": {"layer1.0.conv1": 0.42, ...},   # one value per ternary layer (no globs)
     "keep_fp": ["conv1", "linear"],            # layers the plan leaves full precision
     "method": "energy-aware", "details": {...}}  # how it was chosen (free-form, JSON)

Only ``format``, ``version``, ``rule``, ``layers`` and ``keep_fp`` are read here.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .rules import get_rule

PLAN_FORMAT = "ttq-threshold-plan"
PLAN_VERSION = 1


@dataclass
class ThresholdPlan:
    """Per-layer rule values (``layers``: exact layer name -> value) and their provenance."""

    rule: str
    layers: dict[str, float]
    keep_fp: list[str] | None = None
    method: str = "manual"
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "version": PLAN_VERSION, "rule": self.rule,
                "layers": dict(self.layers), "keep_fp": self.keep_fp, "method": self.method,
                "details": self.details}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    def save(self, path: str | os.PathLike) -> None:
        from ..io import atomic_write_text
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, d: Any, origin: str = "threshold plan") -> "ThresholdPlan":
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise ConfigError(f"{origin} is not a threshold plan (no \"format\": \"{PLAN_FORMAT}\")")
        if d.get("version") != PLAN_VERSION:
            raise ConfigError(f"{origin} has plan version {d.get('version')!r}; this toolkit "
                              f"reads version {PLAN_VERSION}")
        rule = get_rule(str(d.get("rule")))
        layers = d.get("layers")
        if not isinstance(layers, dict) or not layers:
            raise ConfigError(f"{origin}: \"layers\" must map layer names to {rule.meaning}")
        values = {}
        for name, v in layers.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{origin}: layer {name!r} has value {v!r}, not a number")
            values[str(name)] = rule.check(v, f" for {name} in {origin}")
        keep_fp = d.get("keep_fp")
        if keep_fp is not None and (not isinstance(keep_fp, list)
                                    or not all(isinstance(x, str) for x in keep_fp)):
            raise ConfigError(f"{origin}: \"keep_fp\" must be a list of layer names")
        details = d.get("details") if isinstance(d.get("details"), dict) else {}
        return cls(rule.name, values, keep_fp, str(d.get("method", "manual")), details)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ThresholdPlan":
        from ..user_files import parse_json, read_text
        try:  # a regular file only (a FIFO would block), small, UTF-8, not nested too deeply
            data = parse_json(read_text(path, f"threshold plan {path}"), f"threshold plan {path}")
        except FileNotFoundError:
            raise ConfigError(f"threshold plan {path} does not exist") from None
        except OSError as e:
            raise ConfigError(f"cannot read threshold plan {path}: {e.strerror or e}") from None
        return cls.from_dict(data, origin=f"threshold plan {path}")
