"""Benchmark: ``analyze`` of a ternary ResNet-20 against a plain eval pass over the same
images, two ways, in one run.

    python benchmarks/analysis.py [--data-dir ../shared/data] [--checkpoint CKPT] [--device cpu]

1. **In one process** (the figure the project tracks): ``--images`` real test images
   (default 2,000, a fixed class-balanced subset) as one in-memory ``TensorDataset`` in a
   ``DataLoader`` of batch 250; ``analyze(model, data=loader)`` with and without measured
   operation counts (default ``partial_sums="window"``) against a loop of ``model(x)``
   under ``no_grad`` over the same loader, best of ``--rounds`` passes each.  Targets:
   full ≤ 1.3×, without measured counts ≤ 1.1×.  ``--compare-exact`` also times
   ``partial_sums="exact"`` (one indicator convolution per layer) and prints how far the
   window counts are from the per-output ones on these images; ``--profile`` prints a
   cProfile of one pass of each variant (where the time goes when a target is missed).
2. **Peak memory, each variant in a fresh process** (so the peak is its own), over
   ``--memory-images`` test images (default: the whole split): the process's peak resident
   set (CPU) or peak allocated CUDA memory.  Target: full ≤ 1.3× the plain pass.

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
TIME_TARGETS = {"no_ops": 1.1, "full": 1.3, "exact": None}
MEMORY_TARGET = 1.3


def in_process_ratios(ckpt: str, data_dir: str | None, device: str, images: int = 2000,
                      batch: int = 250, rounds: int = 2, compare_exact: bool = False,
                      profile: bool = False) -> dict:
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

    variants = [("no_ops", False, "window"), ("full", True, "window")]
    if compare_exact:
        variants.append(("exact", True, "exact"))
    results = {}

    def analysis(variant, count_ops, partial_sums):
        def run():
            options = {} if partial_sums == "window" else {"partial_sums": partial_sums}
            results[variant] = analyze(model, data=loader, device=dev, count_ops=count_ops,
                                       progress=False, **options)
            sync()
        return run

    runs = {"plain": plain, **{v[0]: analysis(*v) for v in variants}}
    if profile:  # where the time goes: one pass of each variant under cProfile
        import cProfile
        import io
        import pstats
        plain()
        profiles = {}
        for name, fn in runs.items():
            prof = cProfile.Profile()
            prof.enable()
            fn()
            prof.disable()
            text = io.StringIO()
            pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(12)
            profiles[name] = text.getvalue()
    plain()  # warm-up (allocator, oneDNN primitives)
    out = {name: float("inf") for name in runs}
    cpu = {name: float("inf") for name in runs}
    for _ in range(rounds):  # alternate the variants, so slow spells of a shared machine hit all
        for name, fn in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            out[name] = min(out[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    out["cpu_seconds"] = cpu
    out["images"] = len(y)
    if profile:
        out["profiles"] = profiles
    if compare_exact:
        window, exact = results["full"].layers, results["exact"].layers
        t = window["ternary"]
        out["difference"] = {}
        for col in ("effective_adds", "effective_mults"):
            rel = (window.loc[t, col] - exact.loc[t, col]) / exact.loc[t, col]
            worst = rel.abs().idxmax()
            out["difference"][col] = {
                "window": float(window.loc[t, col].sum()), "exact": float(exact.loc[t, col].sum()),
                "worst_layer": str(window.loc[worst, "layer"]), "worst_rel": float(rel[worst])}
    return out


def worker(variant: str, ckpt: str, data_dir: str | None, device: str, batch: int,
           images: int | None = None) -> dict:
    import torch
    from ttq_analysis import analyze
    from ttq_core.checkpoint import load_model
    from ttq_core.data import cifar10_split
    from ttq_core.train.loop import evaluate

    torch.set_flush_denormal(True)
    dev = torch.device(device)
    loaded = load_model(ckpt, device=dev)
    data = cifar10_split("test", loaded.checkpoint["normalization"], data_dir, device=dev,
                         limit=images, progress=False)
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
    p.add_argument("--images", type=int, default=2000, help="images of part 1 (default 2000)")
    p.add_argument("--memory-images", type=int, default=None,
                   help="images of part 2 (default: the whole test split)")
    p.add_argument("--compare-exact", action="store_true",
                   help='also time partial_sums="exact" and print the count differences')
    p.add_argument("--profile", action="store_true",
                   help="also print a cProfile of one pass of each variant (top 12 by own time)")
    p.add_argument("--skip-memory", action="store_true", help="only the in-process timing")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.checkpoint, args.data_dir, args.device,
                                args.batch_size, args.memory_images)))
        return
    import torch
    torch.set_flush_denormal(True)
    r = in_process_ratios(args.checkpoint, args.data_dir, args.device, images=args.images,
                          rounds=args.rounds, compare_exact=args.compare_exact,
                          profile=args.profile)
    print(f"1. in one process: ternary ResNet-20, {r['images']:,} test images, DataLoader of "
          f"batch 250, {args.device} ({torch.get_num_threads()} threads), best of "
          f"{args.rounds} passes")
    print(f"   plain eval   {r['plain']:7.2f} s")
    labels = {"no_ops": "(no measured counts)", "full": "(full)", "exact": "(exact partial sums)"}
    for variant in ("no_ops", "full", "exact"):
        if variant not in r:
            continue
        ratio = r[variant] / r["plain"]
        target = TIME_TARGETS[variant]
        verdict = "" if target is None else (
            f"  target {target}: {'meets' if ratio <= target else 'MISSES'}")
        cpu_ratio = r["cpu_seconds"][variant] / r["cpu_seconds"]["plain"]
        print(f"   analyze {labels[variant]:<21}{r[variant]:7.2f} s  ratio {ratio:5.2f}{verdict}"
              f"  (process CPU time ratio {cpu_ratio:4.2f})")
    for col, d in r.get("difference", {}).items():
        print(f"   {col} per image, ternary layers: window {d['window']:,.1f}, exact "
              f"{d['exact']:,.1f} ({(d['window'] - d['exact']) / d['exact']:+.5%}); worst "
              f"layer {d['worst_layer']} {d['worst_rel']:+.4%}")
    for name, text in r.get("profiles", {}).items():
        print(f"   profile, one pass of {name}:")
        print("\n".join("     " + line for line in text.strip().splitlines()[-14:]))
    if args.skip_memory:
        return
    runs: dict[str, list[dict]] = {"plain": [], "no_ops": [], "full": []}
    for _ in range(args.rounds):  # alternate, so slow spells of a shared machine hit all
        for variant in runs:
            cmd = [sys.executable, __file__, "--worker", variant, "--checkpoint", args.checkpoint,
                   "--device", args.device, "--batch-size", str(args.batch_size)]
            if args.memory_images:
                cmd += ["--memory-images", str(args.memory_images)]
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
