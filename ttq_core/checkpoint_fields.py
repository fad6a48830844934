"""The inside of a checkpoint's fields: every value a reader uses, checked when the file is read.

:data:`ttq_core.checkpoint.FIELD_CHECKS` checks each top-level field's kind (a dict, a
list, ...).  A hand-edited file can still hold a string where a report later formats a
number (``f"{images:,}"``), an int where it calls ``.upper()``, or an accuracy of 5.0
that a report would print as "500.00 %".  :func:`check_field_contents` checks, at load
time and with one line naming the field and the key:

* ``train_config``: every key :class:`~ttq_core.train.config.TrainConfig` defines has a
  value of the field's annotated type (``int`` for ``bn_recal_images``, ``str`` for
  ``mode``, ...; the dataclass is the one statement of that schema); unknown keys (a
  future or a removed option) are left alone;
* ``metrics`` and every ``history`` entry: an accuracy (a key ending in ``_acc``) is a
  fraction in [0, 1]; each history layer record maps names to numbers (or None);
* ``quant``: method (absent: ttq), rule and scale initialisation are strings, ``layers``
  maps layer names to ``{"rule": str, "value": number}``, ``fp_layers`` is a list of
  names, ``min_scale`` a positive number, ``scale_grad`` a boolean;
* the provenance fields a report prints: ``software`` (names → version strings),
  ``device`` and ``data_source`` (strings), ``distributed`` (``world_size`` an int),
  ``bn_refresh`` (image counts ints, accuracies fractions, its previous settings typed
  as ``train_config``).

Assumption: every field is optional here (``REQUIRED_KEYS`` is checked elsewhere), and a
value of None means "not recorded".
"""

from __future__ import annotations

import functools
import math
import os
import types
import typing
from typing import Any, Mapping

from .errors import CheckpointError


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as stored by ``dataclasses.asdict``) has the annotated type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return _number(value)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, (list, tuple)) and all(_fits(x, args[0]) for x in value)
    if origin is dict:
        return isinstance(value, Mapping) and all(
            _fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    return True  # a kind this check does not know: not checked


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "") if typing.get_origin(hint) else hint.__name__


@functools.lru_cache(maxsize=1)
def _train_config_types() -> dict[str, Any]:
    from .train.config import TrainConfig  # the one statement of a run's settings
    return typing.get_type_hints(TrainConfig)


def _check_train_config(cfg: Mapping, field: str, absent_as_none: bool = False) -> str | None:
    """``absent_as_none``: None also stands for "the run did not have this setting"."""
    for key, hint in _train_config_types().items():
        if key in cfg and not _fits(cfg[key], hint) and not (absent_as_none and cfg[key] is None):
            return (f"field {field!r} is malformed: {key!r} must be {_type_name(hint)}, got "
                    f"{type(cfg[key]).__name__} {cfg[key]!r:.40}")
    return None


def _fraction(v: Any) -> bool:
    return v is None or (_number(v) and 0 <= v <= 1)


def _check_accuracies(d: Mapping, where: str) -> str | None:
    for key, v in d.items():
        if isinstance(key, str) and key.endswith("_acc") and not _fraction(v):
            return (f"{where}: {key!r} is {v!r}, but an accuracy is a fraction in [0, 1] "
                    f"(0.87 for 87 %)")
    return None


def _check_history(history: list) -> str | None:
    for entry in history:
        where = f"field 'history' is malformed (epoch {entry.get('epoch')})"
        problem = _check_accuracies(entry, where)
        if problem:
            return problem
        for layer, record in (entry.get("layers") or {}).items():
            bad = [k for k, v in record.items() if v is not None and not _number(v)]
            if bad:
                return (f"{where}: layer {layer!r} records {bad[0]!r} as "
                        f"{type(record[bad[0]]).__name__} {record[bad[0]]!r:.40}, not a number")
    return None


def _check_quant(q: Mapping) -> str | None:
    where = "field 'quant' (the quantization record) is malformed"
    for key in ("method", "rule", "scale_init"):
        if key in q and not isinstance(q[key], str):
            return f"{where}: {key!r} must be a string, got {type(q[key]).__name__}"
    layers = q.get("layers")
    if not isinstance(layers, Mapping) or not all(
            isinstance(s, Mapping) and isinstance(s.get("rule"), str) and _number(s.get("value"))
            for s in layers.values()):
        return f"{where}: 'layers' must map layer names to {{'rule': str, 'value': number}}"
    if "fp_layers" in q and not _fits(q["fp_layers"], list[str]):
        return f"{where}: 'fp_layers' must be a list of layer names"
    if "scale_grad" in q and not isinstance(q["scale_grad"], bool):
        return f"{where}: 'scale_grad' must be true or false, got {type(q['scale_grad']).__name__}"
    if "min_scale" in q and not (_number(q["min_scale"]) and 0 < q["min_scale"] < math.inf):
        return (f"{where}: 'min_scale' must be a positive number, got "
                f"{type(q['min_scale']).__name__} {q['min_scale']!r:.40}")
    return None


def _check_provenance(ckpt: Mapping) -> str | None:
    sw = ckpt.get("software")
    if sw is not None and not _fits(sw, dict[str, str]):
        return "field 'software' is malformed: it must map names to version strings"
    for key in ("device", "data_source"):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], str):
            return (f"field {key!r} is malformed: it must be a string, got "
                    f"{type(ckpt[key]).__name__}")
    dist = ckpt.get("distributed")
    if dist is not None and not (isinstance(dist, Mapping)
                                 and _fits(dist.get("world_size"), int | None)):
        return "field 'distributed' is malformed: it must be a dict with an integer 'world_size'"
    refresh = ckpt.get("bn_refresh")
    if refresh is not None:
        where = "field 'bn_refresh' is malformed"
        if not isinstance(refresh, Mapping):
            return f"{where}: it must be a dict"
        for key in ("images", "test_images"):
            if not _fits(refresh.get(key), int | None):
                return f"{where}: {key!r} must be a number of images"
        for key in ("test_acc_before", "test_acc_after"):
            if not _fraction(refresh.get(key)):
                return f"{where}: {key!r} is {refresh.get(key)!r}, not a fraction in [0, 1]"
        prev = refresh.get("previous_train_config")
        if prev is not None:
            if not isinstance(prev, Mapping):
                return f"{where}: 'previous_train_config' must be a dict"
            return _check_train_config(prev, "bn_refresh.previous_train_config", True)
    return None


def check_field_contents(ckpt: Mapping, path: str | os.PathLike) -> None:
    """Raise one :class:`CheckpointError` naming the first value a reader cannot use
    (module doc); the top-level kinds are assumed checked already."""
    problems = (
        _check_train_config(ckpt["train_config"], "train_config")
        if isinstance(ckpt.get("train_config"), Mapping) else None,
        _check_accuracies(ckpt["metrics"], "field 'metrics' is malformed")
        if isinstance(ckpt.get("metrics"), Mapping) else None,
        _check_history(ckpt["history"]) if isinstance(ckpt.get("history"), list) else None,
        _check_quant(ckpt["quant"]) if isinstance(ckpt.get("quant"), Mapping) and ckpt["quant"]
        else None,
        _check_provenance(ckpt),
    )
    for problem in problems:
        if problem:
            raise CheckpointError(f"{path}: {problem}; fix the field or use the original file")


__all__ = ["check_field_contents"]
