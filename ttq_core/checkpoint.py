"""Checkpoint I/O: the toolkit's checkpoint format, atomic saving, and one loader for all inputs.

A toolkit checkpoint is a plain dict that ``torch.load(path, weights_only=True)`` reads
(tensors, numbers, strings, lists, dicts; never pickled objects or code)::

    format_version  int, currently 1
    arch            registry name, e.g. "resnet20"
    arch_kwargs     dict, build_model(arch, **arch_kwargs) rebuilds the float model
    dataset         "cifar10"
    normalization   {"mean": [r, g, b], "std": [r, g, b]} on [0, 1] pixel values
    quant           quantization record (ttq_core.quantize.api), None for an FP model
    state_dict      tensors on the CPU, PyTorch module names
    history         list, one dict per epoch (see ttq_core.train.history)
    metrics         dict of final/best numbers (test_acc, best_test_acc, ...)
    train_config    dict of the options the run used (optional for readers)
    optimizer       optimizer state (only in last.pt, for --resume)

:func:`load_model` is the single entry point that reads such a file, or a plain
third-party state_dict (bare, under ``state_dict``/``model``/``net``, with or without
``module.``/``_orig_mod.`` prefixes, with or without BatchNorm ``num_batches_tracked``: see
:mod:`ttq_core.legacy_state_dict`) when the architecture, or the model itself, is given.  Every failure is a one-line
:class:`~ttq_core.errors.CheckpointError`.  Nothing is unpickled beyond ``weights_only``.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .errors import CheckpointError, ConfigError, OutputError
from .io import atomic_open
from .legacy_state_dict import fill_defaultable_buffers, repair_notes, strip_wrapper_prefixes
from .models import build_model, list_models
from .quantize import apply_quant_record

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "arch", "arch_kwargs", "dataset", "normalization", "quant",
                 "state_dict", "history", "metrics")
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net")


def save_checkpoint(ckpt: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``ckpt`` to ``path`` atomically (:func:`ttq_core.io.atomic_open`): a crash
    leaves either the old or the new file."""
    try:
        with atomic_open(path, "wb") as f:
            torch.save(dict(ckpt), f)
    except OSError as e:
        raise OutputError(f"cannot write checkpoint {path}: {e.strerror or e}; any earlier "
                          f"{Path(path).name} is kept") from None
    except RuntimeError as e:  # torch's zip writer reports a failed write (disk full) so
        if "write" not in str(e).lower() and "inline_container" not in str(e):
            raise
        raise OutputError(f"cannot write checkpoint {path} (disk full or write error); any "
                          f"earlier {Path(path).name} is kept") from None


def read_checkpoint_file(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")`` with one-line errors."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {str(p)!r} does not exist")
    if p.is_dir():
        raise CheckpointError(f"checkpoint {str(p)!r} is a folder; pass a .pt file "
                              f"(e.g. {p / 'best.pt'})")
    if p.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {str(p)!r} is empty (0 bytes)")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "GLOBAL" in msg or "Unsupported global" in msg:  # a real class/function reference
            raise CheckpointError(
                f"{p} holds pickled Python objects that safe (weights_only) loading refuses; "
                f"re-save it as a plain state_dict of tensors") from None
        detail = msg.split("WeightsUnpickler error:")[-1]
        raise CheckpointError(f"{p} is corrupted: it cannot be unpickled "
                              f"({_first_line(detail)})") from None
    except Exception as e:  # the restricted unpickler raises KeyError/IndexError/... on garbage
        raise CheckpointError(f"{p} is not a readable PyTorch checkpoint (truncated or "
                              f"corrupted?): {type(e).__name__}: {_first_line(str(e))}") from None


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no detail"
    return line if len(line) <= limit else line[:limit] + "…"


@dataclass
class LoadedModel:
    """A model rebuilt from a file.

    ``checkpoint`` is the whole toolkit checkpoint dict, or ``None`` for a third-party
    state_dict; ``source_format`` is ``"ttq-toolkit"`` or ``"state_dict"``; ``notes``: one
    sentence per repair made while loading (prefixes removed, buffers filled).
    """

    model: nn.Module
    arch: str
    arch_kwargs: dict
    checkpoint: dict | None
    source_format: str
    notes: list[str] = field(default_factory=list)

    @property
    def is_ternary(self) -> bool:
        return bool(self.checkpoint and self.checkpoint.get("quant"))


def _summarize(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" … (+{len(names) - limit} more)" if len(names) > limit else "")


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, Any], what: str) -> None:
    """Load ``state_dict`` strictly, or raise one CheckpointError listing missing and
    unexpected keys and shape mismatches."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f"{k} {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in expected if k in state_dict and isinstance(state_dict[k], torch.Tensor)
              and state_dict[k].shape != expected[k].shape]
    not_tensor = [k for k in expected if k in state_dict
                  and not isinstance(state_dict[k], torch.Tensor)]
    if missing or unexpected or shapes or not_tensor:
        parts = []
        if missing:
            parts.append(f"missing keys: {_summarize(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_summarize(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {_summarize(shapes, 3)}")
        if not_tensor:
            parts.append(f"non-tensor values: {_summarize(not_tensor)}")
        raise CheckpointError(f"{what} does not fit the model ({'; '.join(parts)})")
    model.load_state_dict(state_dict, strict=True)


def _extract_state_dict(obj: Any, path: Path) -> tuple[dict, list[str]]:
    """The tensors of a third-party file and the wrapper prefixes removed from its keys."""
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = dict(obj)
    else:
        sd = None
        if isinstance(obj, Mapping):
            for key in _STATE_DICT_KEYS:
                cand = obj.get(key)
                if isinstance(cand, Mapping) and cand and all(
                        isinstance(v, torch.Tensor) for v in cand.values()):
                    sd = dict(cand)
                    break
        if sd is None:
            raise CheckpointError(
                f"{path} is neither a ttq toolkit checkpoint nor a state_dict of tensors "
                f"(looked for the keys {', '.join(_STATE_DICT_KEYS)})")
    return strip_wrapper_prefixes(sd)


def _build(arch: str, arch_kwargs: Mapping, path: Path) -> nn.Module:
    try:
        return build_model(arch, **dict(arch_kwargs))
    except ConfigError as e:
        raise CheckpointError(f"{path}: cannot rebuild the model from field 'arch_kwargs': "
                              f"{e}") from None
    except (TypeError, ValueError) as e:  # unknown or ill-typed keyword of the architecture
        raise CheckpointError(f"{path}: field 'arch_kwargs' does not fit {arch}: "
                              f"{_first_line(str(e))}") from None


# ----------------------------------------------------------------------------- field checks

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _optional(kind):
    return lambda v: v is None or kind(v)


def _mapping(v: Any) -> bool:
    return isinstance(v, Mapping)


def _normalization(v: Any) -> bool:
    if v is None:
        return True
    if not isinstance(v, Mapping):
        return False
    parts = [v.get("mean"), v.get("std")]
    return all(isinstance(p, (list, tuple)) and p and all(_is_number(x) for x in p)
               for p in parts) and len(parts[0]) == len(parts[1])


def _history(v: Any) -> bool:
    if not isinstance(v, list):
        return False
    for entry in v:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("epoch"), int):
            return False
        if any(not _optional(_is_number)(entry.get(k)) for k in HISTORY_NUMBERS):
            return False
        layers = entry.get("layers", {})
        if not isinstance(layers, Mapping) or not all(isinstance(x, Mapping) for x in layers.values()):
            return False
    return True


def _metrics(v: Any) -> bool:
    return v is None or (isinstance(v, Mapping) and all(_optional(_is_number)(x) for x in v.values()))


HISTORY_NUMBERS = ("lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")
# field -> (check, what it must be), for every field a reader of a checkpoint uses
FIELD_CHECKS = {
    "arch": (lambda v: isinstance(v, str), "an architecture name (string)"),
    "arch_kwargs": (_optional(_mapping), "a dict of keyword arguments"),
    "dataset": (lambda v: isinstance(v, str), "a dataset name (string)"),
    "normalization": (_normalization, "a dict with lists 'mean' and 'std' of equal length"),
    "quant": (_optional(_mapping), "a quantization record (dict) or None"),
    "state_dict": (_mapping, "a dict of tensors"),
    "history": (_history, "a list of dicts, each with an integer 'epoch', numbers for "
                          "losses/accuracies and a dict 'layers'"),
    "metrics": (_metrics, "a dict of numbers (or None values)"),
    "train_config": (_optional(_mapping), "a dict of training settings"),
    "optimizer": (_optional(_mapping), "an optimizer state_dict (dict)"),
}


def validate_fields(ckpt: Mapping, path: str | os.PathLike) -> None:
    """Type-check every field of a toolkit checkpoint that a reader uses, and the values
    inside them (:mod:`ttq_core.checkpoint_fields`); a hand-edited field of the wrong type
    or an impossible value (an accuracy of 5.0) gets one CheckpointError naming it."""
    for key, (check, what) in FIELD_CHECKS.items():
        if key in ckpt and not check(ckpt[key]):
            raise CheckpointError(f"{path}: field {key!r} is malformed: it must be {what}, "
                                  f"got {type(ckpt[key]).__name__}")
    from .checkpoint_fields import check_field_contents
    check_field_contents(ckpt, path)  # the values inside: types, accuracies in [0, 1]


def sanity_problems(loaded: "LoadedModel") -> list[str]:
    """What makes a report of this model meaningless: non-finite weights or buffers, a
    non-positive or non-finite normalisation std (one sentence each; empty when sane)."""
    problems = []
    bad = [(k, int((~torch.isfinite(v)).sum()), v.numel())
           for k, v in loaded.model.state_dict().items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        shown = ", ".join(f"{k} ({n} of {t})" for k, n, t in bad[:3])
        more = f" and {len(bad) - 3} more tensors" if len(bad) > 3 else ""
        problems.append(f"non-finite (NaN/Inf) values in {shown}{more}")
    norm = (loaded.checkpoint or {}).get("normalization")
    if norm:
        import math
        if any(not math.isfinite(x) for x in list(norm["mean"]) + list(norm["std"])):
            problems.append(f"non-finite normalisation mean/std {norm['mean']}/{norm['std']}")
        elif any(x <= 0 for x in norm["std"]):
            problems.append(f"normalisation std {norm['std']} is not positive")
    return problems


def load_model(path: str | os.PathLike, arch: str | None = None,
               arch_kwargs: Mapping | None = None, device: str | torch.device = "cpu", *,
               model: nn.Module | None = None, model_name: str | None = None) -> LoadedModel:
    """Rebuild a model from a toolkit checkpoint or a third-party state_dict.

    ``arch`` is required for a third-party state_dict (``arch_kwargs`` optional; the number
    of classes is read from the last linear layer's weight when not given), unless
    ``model`` is given: a built network (any ``nn.Module``, e.g. from
    :func:`ttq_core.user_model.build_user_model`) the state_dict is loaded into, named
    ``model_name`` in reports.  For a toolkit checkpoint, a given ``arch`` must match the
    stored one, and ``model`` is refused (the checkpoint rebuilds its own).  The model is
    returned in eval mode on ``device``.
    """
    path = Path(path)
    obj = read_checkpoint_file(path)
    if isinstance(obj, Mapping) and "format_version" in obj:
        if model is not None:
            raise CheckpointError(f"{path} is a ttq toolkit checkpoint, which rebuilds its own "
                                  f"{obj.get('arch')!r}; drop --model")
        loaded = _load_toolkit(obj, path, arch)
    elif model is not None:
        loaded = _load_into(obj, path, model, model_name or type(model).__name__)
    else:
        loaded = _load_third_party(obj, path, arch, arch_kwargs)
    loaded.model.to(device).eval()
    return loaded


def _load_toolkit(ckpt: Mapping, path: Path, arch: str | None) -> LoadedModel:
    version = ckpt.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: format_version is {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format_version {version}, newer than this toolkit "
                              f"reads ({FORMAT_VERSION}); upgrade the toolkit")
    if version < 1:
        raise CheckpointError(f"{path} has unknown format_version {version}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} lacks required checkpoint keys: {', '.join(missing)}")
    validate_fields(ckpt, path)
    stored = ckpt["arch"]
    if stored not in list_models():
        raise CheckpointError(f"{path}: unknown architecture {stored!r}; known: "
                              f"{', '.join(list_models())}")
    if arch is not None and arch != stored:
        raise CheckpointError(f"{path} holds a {stored}, but --arch {arch} was given; "
                              f"drop --arch or pass the matching checkpoint")
    model = _build(stored, ckpt["arch_kwargs"] or {}, path)
    if ckpt["quant"]:
        try:
            apply_quant_record(model, ckpt["quant"])
        except ConfigError as e:
            raise CheckpointError(f"{path}: bad quantization record: {e}") from None
    if not isinstance(ckpt["state_dict"], Mapping):
        raise CheckpointError(f"{path}: state_dict is not a dict")
    load_state_dict_checked(model, ckpt["state_dict"], f"{path} ({stored})")
    return LoadedModel(model, stored, dict(ckpt["arch_kwargs"] or {}), dict(ckpt), "ttq-toolkit")


def _last_linear_name(model: nn.Module) -> str | None:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def _load_repaired(model: nn.Module, sd: dict, removed: list[str], what: str) -> list[str]:
    """Fill the buffers PyTorch can default, load strictly, and return the repair notes."""
    sd, filled = fill_defaultable_buffers(model, sd)
    load_state_dict_checked(model, sd, what)
    return repair_notes(removed, filled)


def _load_into(obj: Any, path: Path, model: nn.Module, name: str) -> LoadedModel:
    sd, removed = _extract_state_dict(obj, path)
    notes = _load_repaired(model, sd, removed, f"{path} (into {name})")
    return LoadedModel(model, name, {}, None, "state_dict", notes)


def _load_third_party(obj: Any, path: Path, arch: str | None,
                      arch_kwargs: Mapping | None) -> LoadedModel:
    sd, removed = _extract_state_dict(obj, path)
    if arch is None:
        raise CheckpointError(f"{path} is a plain state_dict, not a ttq toolkit checkpoint; "
                              f"pass --arch (one of {', '.join(list_models())})")
    kwargs = dict(arch_kwargs or {})
    model = _build(arch, kwargs, path)
    last = _last_linear_name(model)
    if "num_classes" not in kwargs and last and f"{last}.weight" in sd:
        n = sd[f"{last}.weight"].shape[0]
        if n != model.get_submodule(last).out_features:
            kwargs["num_classes"] = int(n)
            model = _build(arch, kwargs, path)
    notes = _load_repaired(model, sd, removed, f"{path} (as {arch})")
    return LoadedModel(model, arch, kwargs, None, "state_dict", notes)
