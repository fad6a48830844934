"""State dicts as people have them: wrapper prefixes and buffers older PyTorch never saved.

Two repairs, each reported as one sentence (``notes``) so a report can say what was done:

* **Wrapper prefixes.**  ``nn.DataParallel``/``DistributedDataParallel`` save every key as
  ``module.<name>``, ``torch.compile`` as ``_orig_mod.<name>`` (and the two nest).  A
  prefix is removed only when *every* key carries it, repeatedly, in any order.
* **Defaultable buffers.**  A buffer whose value PyTorch itself supplies when a state
  dict lacks it.  Today that is BatchNorm's ``num_batches_tracked`` (added in PyTorch
  0.4.1): ``_BatchNorm._load_from_state_dict`` fills a missing one from the module's own
  counter, which is 0 in a freshly built model.  It only counts training batches (it
  matters only for ``momentum=None``) and never changes an inference.  Running mean and
  variance, weights and biases are *not* defaultable: a missing one stays an error.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

WRAPPER_PREFIXES = ("module.", "_orig_mod.")

# (module type, buffer name) -> the value PyTorch loads when the state dict lacks it
DEFAULTABLE_BUFFERS: dict[tuple[type, str], Callable[[nn.Module], torch.Tensor]] = {
    (nn.modules.batchnorm._BatchNorm, "num_batches_tracked"):
        lambda m: torch.tensor(0, dtype=torch.long),
}


def strip_wrapper_prefixes(state_dict: Mapping[str, torch.Tensor]
                           ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``state_dict`` without the wrapper prefixes every key shares, and the prefixes
    removed (outermost first), e.g. ``(..., ["module."])``."""
    sd = dict(state_dict)
    removed: list[str] = []
    while sd:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in sd)), None)
        if prefix is None:
            break
        sd = {k[len(prefix):]: v for k, v in sd.items()}
        removed.append(prefix)
    return sd, removed


def fill_defaultable_buffers(model: nn.Module, state_dict: Mapping[str, torch.Tensor]
                             ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``state_dict`` with every missing :data:`DEFAULTABLE_BUFFERS` entry of ``model``
    added as PyTorch would load it, and the keys added (module order)."""
    sd = dict(state_dict)
    filled: list[str] = []
    for prefix, module in model.named_modules():
        for name, buf in module.named_buffers(recurse=False):
            key = f"{prefix}.{name}" if prefix else name
            if key in sd or buf is None:
                continue
            for (kind, buffer_name), default in DEFAULTABLE_BUFFERS.items():
                if isinstance(module, kind) and name == buffer_name:
                    sd[key] = default(module)
                    filled.append(key)
                    break
    return sd, filled


def repair_notes(removed_prefixes: list[str], filled: list[str]) -> list[str]:
    """One sentence per repair, for a report (empty when nothing was repaired)."""
    notes = []
    if removed_prefixes:
        shown = " then ".join(f"'{p}'" for p in removed_prefixes)
        notes.append(f"Removed the wrapper prefix {shown} from every key (saved from "
                     f"DataParallel/DistributedDataParallel or torch.compile).")
    if filled:
        names = sorted({k.rsplit(".", 1)[-1] for k in filled})
        notes.append(f"Filled {len(filled)} missing buffer(s) ({', '.join(names)}) as PyTorch "
                     f"does when loading state_dicts saved before PyTorch 0.4.1: BatchNorm "
                     f"num_batches_tracked = 0 (it counts training batches and does not "
                     f"change inference).")
    return notes


__all__ = ["WRAPPER_PREFIXES", "DEFAULTABLE_BUFFERS", "strip_wrapper_prefixes",
           "fill_defaultable_buffers", "repair_notes"]
