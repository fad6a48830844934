"""Benchmark: TTQ / FP training-step time on the same model and batch, measured in one run.

    python benchmarks/train_step.py                       # CPU, and CUDA when present
    python benchmarks/train_step.py --arch resnet20 --batch-size 256 --steps 30 --compile

TTQ is timed twice: the default grouped path (all ternary layers in one autograd call per
forward, ttq_core.quantize.grouped) and the per-layer reference path.  A step is forward + cross-entropy + backward + SGD step (+ the Wp/Wn clamp for TTQ), on a
fixed random batch, gradient statistics off (as on most training steps).  FP and TTQ
steps are timed in alternating rounds so drift (clocks, other load) hits both alike; the
reported time is the median round.  CUDA: bf16 autocast, channels_last, CUDA-event
timing after warm-up; ``--compile`` also times torch.compile'd models and prints, per
model, dynamo's recompilations, graph breaks and captured graphs during warm-up (issue 20:
the TTQ model used to recompile once per layer shape and fall back to eager), and how
much faster compiled is than eager.

Targets: TTQ/FP at most 1.15 on CPU and 1.3 on GPU eager (issue 2); compiled TTQ/FP at
most 1.15, compiled faster than eager, no recompilation (issue 20).
GPU, one command: ``bash benchmarks/gpu_issue20.sh OUTDIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from ttq_core.models import build_model
from ttq_core.quantize import ternarize, ternary_layers


def make_step(model, device, amp):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    quantizers = [m.quantizer for _, m in ternary_layers(model)]
    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    def step(x, y):
        with ctx():
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for q in quantizers:
            q.clamp_scales_()
    return step


def time_steps(step, x, y, n, device) -> float:
    """Seconds per step, averaged over ``n`` steps."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            step(x, y)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000 / n
    t0 = time.perf_counter()
    for _ in range(n):
        step(x, y)
    return (time.perf_counter() - t0) / n


def bench(device: torch.device, arch: str, batch: int, steps: int, rounds: int,
          compiled: bool) -> tuple[dict, dict]:
    """(median seconds per step, dynamo facts of the warm-up when compiled) per model."""
    torch.manual_seed(0)
    fp = build_model(arch).to(device)
    ttq = ternarize(copy.deepcopy(fp))                                  # grouped (default)
    ttq_layer = ternarize(copy.deepcopy(fp), grouped=False)             # per-layer reference
    cuda = device.type == "cuda"
    models = {"fp": fp, "ttq": ttq, "ttq_per_layer": ttq_layer}
    if cuda:
        for m in models.values():
            m.to(memory_format=torch.channels_last)
    size = 32 if arch.startswith("resnet") and arch != "resnet18" else 224
    x = torch.randn(batch, 3, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    if compiled:
        models = {k: torch.compile(m) for k, m in models.items()}
    step = {k: make_step(m, device, cuda) for k, m in models.items()}
    dynamo = {}
    for k in step:  # warm-up (and compilation)
        if compiled:
            from torch._dynamo.utils import counters
            counters.clear()
        time_steps(step[k], x, y, 3 if not compiled else 10, device)
        if compiled:
            dynamo[k] = {"recompiles": sum(counters["recompiles"].values()),
                         "graph_breaks": sum(counters["graph_break"].values()),
                         "graphs": counters["stats"]["unique_graphs"]}
    times = {k: [] for k in step}
    for _ in range(rounds):
        for k in step:
            times[k].append(time_steps(step[k], x, y, steps, device))
    return {k: statistics.median(v) for k, v in times.items()}, dynamo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default 128 on CPU, 256 on CUDA")
    p.add_argument("--steps", type=int, default=None, help="steps per round (default 5 CPU, 50 CUDA)")
    p.add_argument("--rounds", type=int, default=5, help="alternating FP/TTQ rounds (median)")
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda if present")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd models (CUDA)")
    p.add_argument("--compile-cpu", action="store_true",
                   help="with --compile, compile on the CPU too (needs a C++ compiler; slow)")
    args = p.parse_args()
    torch.set_flush_denormal(True)  # as the trainer does: denormals slow CPU convs up to 10x
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    print(f"torch {torch.__version__}, arch {args.arch}; step = fwd+bwd+SGD, median of "
          f"{args.rounds} alternating rounds")
    for name in devices:
        device = torch.device(name)
        cuda = device.type == "cuda"
        batch = args.batch_size or (256 if cuda else 128)
        steps = args.steps or (50 if cuda else 5)
        label = torch.cuda.get_device_name(device) if cuda else f"cpu ({torch.get_num_threads()} threads)"
        modes = [False] + ([True] if args.compile and (cuda or args.compile_cpu) else [])
        eager = None
        for compiled in modes:
            t, dynamo = bench(device, args.arch, batch, steps, args.rounds, compiled)
            target = 1.15 if compiled or not cuda else 1.3
            ratio = t["ttq"] / t["fp"]
            verdict = "meets" if ratio <= target else "MISSES"
            print(f"{label:<28} {'compiled' if compiled else 'eager':<8} batch {batch:>4}: "
                  f"FP {t['fp'] * 1e3:8.2f} ms  TTQ {t['ttq'] * 1e3:8.2f} ms  "
                  f"ratio TTQ/FP {ratio:5.3f} ({verdict} target {target}); per-layer "
                  f"reference path {t['ttq_per_layer'] / t['fp']:5.3f}")
            if not compiled:
                eager = t
                continue
            for k, facts in dynamo.items():
                print(f"{'':<28} compiled {k:<14} eager/compiled {eager[k] / t[k]:5.2f}x  "
                      f"recompiles {facts['recompiles']}  graph breaks {facts['graph_breaks']}  "
                      f"graphs {facts['graphs']}"
                      f"{'' if facts['recompiles'] == 0 and eager[k] > t[k] else '  MISSES'}")


if __name__ == "__main__":
    main()
