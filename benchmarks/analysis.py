"""Benchmark: ``analyze`` of a ternary ResNet-20 over the whole CIFAR-10 test split versus a
plain ``eval()`` pass over the same data, in one run.

    python benchmarks/analysis.py [--data-dir ../shared/data] [--checkpoint CKPT] [--device cpu]

Each variant runs in its own fresh process, in alternating rounds (median time) (so peak memory is its own): a plain eval
pass, ``analyze`` without measured operation counts, and the full ``analyze``.  Times
exclude start-up and data loading (the decoded split is on the device before the clock
starts); peak memory is the process's peak resident set (CPU) or peak allocated CUDA
memory.  Targets (issue 3): full/plain ≤ 2.0 and no-ops/plain ≤ 1.3 on CPU; peak memory
within 1.5× of the plain pass.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_CKPT = Path(__file__).resolve().parent / "results" / "h200-2026-11-26" / "resnet20_ttq_best.pt"


def worker(variant: str, ckpt: str, data_dir: str | None, device: str, batch: int) -> dict:
    import torch
    from ttq_analysis import analyze
    from ttq_core.checkpoint import load_model
    from ttq_core.data import cifar10_split
    from ttq_core.train.loop import evaluate

    torch.set_flush_denormal(True)
    dev = torch.device(device)
    loaded = load_model(ckpt, device=dev)
    data = cifar10_split("test", loaded.checkpoint["normalization"], data_dir, device=dev,
                         progress=False)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    if variant == "plain":
        with torch.inference_mode():
            evaluate(loaded.model, data, batch, dev)
    else:
        analyze(loaded.model, data=data, device=dev, count_ops=(variant == "full"), progress=False)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"variant": variant, "seconds": seconds, "peak_MiB": peak, "images": len(data)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(DEFAULT_CKPT))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3,
                   help="alternating rounds of the three variants; median time (default 3)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.checkpoint, args.data_dir, args.device,
                                args.batch_size)))
        return
    runs: dict[str, list[dict]] = {"plain": [], "no_ops": [], "full": []}
    for _ in range(args.rounds):  # alternate, so slow spells of a shared machine hit all
        for variant in runs:
            cmd = [sys.executable, __file__, "--worker", variant, "--checkpoint", args.checkpoint,
                   "--device", args.device, "--batch-size", str(args.batch_size)]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
    results = {v: {"seconds": statistics.median(r["seconds"] for r in rs),
                   "peak_MiB": max(r["peak_MiB"] for r in rs), "images": rs[0]["images"]}
               for v, rs in runs.items()}
    base = results["plain"]
    print(f"ResNet-20 (ternary) over {base['images']} test images on {args.device}; "
          f"each variant in a fresh process; median of {args.rounds} alternating rounds")
    for variant, target in (("plain", None), ("no_ops", 1.3), ("full", 2.0)):
        r = results[variant]
        ratio = r["seconds"] / base["seconds"]
        mem = r["peak_MiB"] / base["peak_MiB"]
        verdict = "" if target is None else (
            f"  time target {target}: {'meets' if ratio <= target else 'MISSES'}; "
            f"memory target 1.5: {'meets' if mem <= 1.5 else 'MISSES'}")
        print(f"{variant:<7} {r['seconds']:7.2f} s  ratio {ratio:5.2f}   peak {r['peak_MiB']:8.1f} MiB"
              f"  ratio {mem:4.2f}{verdict}")


if __name__ == "__main__":
    main()
