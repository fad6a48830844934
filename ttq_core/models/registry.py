"""Name -> builder registry of the toolkit's network architectures.

Builders are plain functions that take only keyword arguments with defaults
(``num_classes`` among them) and return an ``nn.Module``.  They are registered with
the :func:`register_model` decorator under a lower-case name (``"resnet20"``,
``"alexnet_bn"``); one builder may be registered under several names with different
``defaults``.  :func:`build_model` resolves the full keyword set a model is built
with (registered defaults, then the caller's overrides, then the builder's own
signature defaults), checks that every value is plain JSON (bool, int, float, str,
None, lists and dicts of those), and records it on the model as ``model.arch_name``
and ``model.arch_kwargs``, so that ``build_model(model.arch_name, **model.arch_kwargs)``
rebuilds the same architecture, e.g. from a checkpoint.

Mistakes a user can make (unknown name, unknown or ill-typed option) raise
:class:`ttq_core.errors.ConfigError` with a one-line message.
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch.nn as nn

from ttq_core.errors import ConfigError

__all__ = [
    "ModelSpec",
    "register_model",
    "build_model",
    "list_models",
    "model_spec",
    "check_bool",
    "check_int",
    "check_float",
]


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model name.

    ``input_size`` is the default (C, H, W) of one input sample, ``family`` a short
    group label (``"cifar-resnet"``, ``"imagenet-resnet"``, ``"alexnet"``) and
    ``defaults`` the keyword arguments this name passes to ``builder`` unless the
    caller overrides them (read-only mapping).
    """

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]
    family: str
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)


_REGISTRY: dict[str, ModelSpec] = {}


def _is_plain_json(value: Any) -> bool:
    """True if ``value`` survives a JSON round trip unchanged (no tuples, no numpy)."""
    if isinstance(value, float) and not math.isfinite(value):
        return False
    try:
        return json.loads(json.dumps(value, allow_nan=False)) == value and _same_types(
            value, json.loads(json.dumps(value))
        )
    except (TypeError, ValueError):
        return False


def _same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return all(_same_types(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return all(_same_types(a[k], b[k]) for k in a)
    return True


def _builder_params(builder: Callable[..., nn.Module]) -> Mapping[str, inspect.Parameter]:
    params = inspect.signature(builder).parameters
    for p in params.values():
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) or p.default is p.empty:
            raise TypeError(
                f"model builder {builder.__qualname__} must take only keyword arguments "
                f"with defaults; {p.name!r} does not"
            )
    if "num_classes" not in params:
        raise TypeError(f"model builder {builder.__qualname__} must accept num_classes")
    return params


def register_model(
    name: str,
    *,
    input_size: tuple[int, int, int],
    family: str,
    defaults: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a builder function under ``name``; returns it unchanged.

    Registering a name twice, defaults the builder does not accept, or defaults that
    are not plain JSON values are programming errors (``ValueError``/``TypeError``).
    """
    defaults = dict(defaults or {})

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered")
        params = _builder_params(builder)
        for key, value in defaults.items():
            if key == "num_classes":
                raise TypeError(f"model {name!r}: num_classes is set by build_model, not by defaults")
            if key not in params:
                raise TypeError(f"default {key!r} of model {name!r} is not an argument of the builder")
            if not _is_plain_json(value):
                raise TypeError(f"default {key!r}={value!r} of model {name!r} is not a plain JSON value")
        size = tuple(int(s) for s in input_size)
        if len(size) != 3:
            raise ValueError(f"input_size of model {name!r} must be (C, H, W), got {input_size!r}")
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=builder,
            input_size=size,  # type: ignore[arg-type]
            family=family,
            defaults=MappingProxyType(dict(defaults)),
        )
        return builder

    return decorator


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; ConfigError if the name is unknown."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown model {name!r}; known models: {', '.join(list_models())}"
        ) from None


def resolve_arch_kwargs(name: str, num_classes: int = 10, **kwargs: Any) -> dict[str, Any]:
    """The complete keyword set ``build_model(name, num_classes, **kwargs)`` builds with.

    Merges the registered defaults, the caller's ``kwargs`` and ``num_classes``, fills
    in the builder's signature defaults, and checks every value is plain JSON.
    """
    spec = model_spec(name)
    params = inspect.signature(spec.builder).parameters
    merged: dict[str, Any] = dict(spec.defaults)
    merged.update(kwargs)
    merged["num_classes"] = num_classes
    unknown = sorted(set(merged) - set(params))
    if unknown:
        accepted = ", ".join(sorted(params))
        raise ConfigError(
            f"model {name!r} got unknown option(s) {', '.join(unknown)}; accepted: {accepted}"
        )
    resolved = {key: merged.get(key, p.default) for key, p in params.items()}
    for key, value in resolved.items():
        if not _is_plain_json(value):
            raise ConfigError(
                f"option {key}={value!r} of model {name!r} must be a plain JSON value "
                f"(bool, int, float, str, None, list, dict), got {type(value).__name__}"
            )
    return resolved


def build_model(name: str, num_classes: int = 10, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``.

    The model carries ``arch_name`` (str) and ``arch_kwargs`` (dict of plain JSON
    values, ``num_classes`` included); ``build_model(arch_name, **arch_kwargs)``
    rebuilds the same architecture.  Unknown name or bad options -> ConfigError.
    """
    arch_kwargs = resolve_arch_kwargs(name, num_classes, **kwargs)
    model = model_spec(name).builder(**arch_kwargs)
    model.arch_name = name
    model.arch_kwargs = dict(arch_kwargs)
    return model


# --- argument checks shared by the builders (raise ConfigError) -------------------


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"option {name} must be true or false, got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"option {name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_float(name: str, value: Any, low: float, high: float) -> float:
    """Check ``low <= value < high``; ints are accepted and converted."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value < high):
        raise ConfigError(f"option {name} must be a number in [{low}, {high}), got {value!r}")
    return float(value)
