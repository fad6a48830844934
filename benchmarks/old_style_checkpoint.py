"""Write a toolkit FP checkpoint as a pre-PyTorch-0.4.1-style CIFAR file, the shape many
published pretrained CIFAR ResNets have: ``{'state_dict': {'module.<key>': tensor},
'best_prec1': <percent>}`` without BatchNorm ``num_batches_tracked`` buffers.

    python benchmarks/old_style_checkpoint.py runs/r20-fp/best.pt /tmp/resnet20-old.th

Used to measure the "bring your own network" path (README) on a known network.
"""

from __future__ import annotations

import sys

import torch


def convert(src: str, dst: str) -> int:
    """Write ``dst`` from the toolkit checkpoint ``src``; return the number of tensors.
    An existing ``dst`` is never replaced (FileExistsError)."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    sd = {f"module.{k}": v for k, v in ckpt["state_dict"].items()
          if not k.endswith("num_batches_tracked")}
    acc = (ckpt.get("metrics") or {}).get("test_acc")
    with open(dst, "xb") as f:  # refuse to replace a file this script did not write
        torch.save({"state_dict": sd, "best_prec1": None if acc is None else round(100 * acc, 2)}, f)
    return len(sd)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/old_style_checkpoint.py TOOLKIT_CKPT OUT.th")
    try:
        n = convert(sys.argv[1], sys.argv[2])
    except FileExistsError:
        sys.exit(f"old_style_checkpoint: error: {sys.argv[2]} exists; not replacing it")
    print(f"{n} tensors written to {sys.argv[2]}")
