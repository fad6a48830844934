"""Benchmark: ``analyze`` of a ternary ResNet-20 against a plain eval pass over the same
images, two ways, in one run.

    python benchmarks/analysis.py [--data-dir ../shared/data] [--checkpoint CKPT] [--device cpu]

1. **In one process** (the figure the project tracks): 2,000 real test images (a fixed
   class-balanced subset) as one in-memory ``TensorDataset`` in a ``DataLoader`` of batch
   250; ``analyze(model, data=loader)`` with and without exact measured operation counts
   against a loop of ``model(x)`` under ``no_grad`` over the same loader, best of
   ``--rounds`` passes each.  Targets: full ≤ 1.5×, without measured counts ≤ 1.15×.
2. **Peak memory, each variant in a fresh process** (so the peak is its own), over the
   whole test split: the process's peak resident set (CPU) or peak allocated CUDA memory.
   Target: full ≤ 1.3× the plain pass.

Times exclude start-up and data loading.  Run it on a quiet machine: other work on the
same cores changes the ratios.
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

DEFAULT_CKPT = Path(__file__).resolve().parent / "results" / "cpu-2026-11-27" / "resnet20_ttq_best.pt"
TIME_TARGETS = {"no_ops": 1.15, "full": 1.5}
MEMORY_TARGET = 1.3


def in_process_ratios(ckpt: str, data_dir: str | None, device: str, images: int = 2000,
                      batch: int = 250, rounds: int = 2) -> dict:
    """Seconds of the plain pass and of ``analyze`` (with and without measured counts), best
    of ``rounds`` each, on one in-memory DataLoader, in this process."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from ttq_analysis import analyze
    from ttq_core.checkpoint import load_model
    from ttq_core.data import CifarSplit

    dev = torch.device(device)
    loaded = load_model(ckpt, device=dev)
    model = loaded.model.eval()
    data = CifarSplit.load("test", data_dir, limit=images, progress=False).for_checkpoint(
        loaded.checkpoint, "cpu")
    xs, ys = zip(*data.batches(batch))
    x, y = torch.cat(xs), torch.cat(ys)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def plain():
        with torch.no_grad():
            for xb, _ in loader:
                model(xb.to(dev))
        sync()

    def timed(fn) -> float:
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    plain()  # warm-up (allocator, oneDNN primitives)
    out = {"plain": timed(plain)}
    for variant, count_ops in (("no_ops", False), ("full", True)):
        out[variant] = timed(lambda: (analyze(model, data=loader, device=dev, count_ops=count_ops,
                                              progress=False), sync()))
    out["images"] = len(y)
    return out


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
    p.add_argument("--rounds", type=int, default=2,
                   help="passes per variant: best time in one process; alternating fresh-"
                        "process rounds for memory (default 2)")
    p.add_argument("--skip-memory", action="store_true", help="only the in-process timing")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.checkpoint, args.data_dir, args.device,
                                args.batch_size)))
        return
    import torch
    torch.set_flush_denormal(True)
    r = in_process_ratios(args.checkpoint, args.data_dir, args.device, rounds=args.rounds)
    print(f"1. in one process: ternary ResNet-20, {r['images']:,} test images, DataLoader of "
          f"batch 250, {args.device} ({torch.get_num_threads()} threads), best of "
          f"{args.rounds} passes")
    print(f"   plain eval   {r['plain']:7.2f} s")
    for variant in ("no_ops", "full"):
        ratio = r[variant] / r["plain"]
        target = TIME_TARGETS[variant]
        print(f"   analyze {'(no measured counts)' if variant == 'no_ops' else '(full)':<21}"
              f"{r[variant]:7.2f} s  ratio {ratio:5.2f}  target {target}: "
              f"{'meets' if ratio <= target else 'MISSES'}")
    if args.skip_memory:
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
    print(f"2. each variant in a fresh process over {base['images']:,} test images; peak "
          f"memory (max of {args.rounds}), median time")
    for variant in runs:
        r = results[variant]
        mem = r["peak_MiB"] / base["peak_MiB"]
        verdict = "" if variant == "plain" else (
            f"  memory target {MEMORY_TARGET}: {'meets' if mem <= MEMORY_TARGET else 'MISSES'}")
        print(f"   {variant:<7} {r['seconds']:7.2f} s  ratio {r['seconds'] / base['seconds']:5.2f}"
              f"   peak {r['peak_MiB']:8.1f} MiB  ratio {mem:4.2f}{verdict}")


if __name__ == "__main__":
    main()
