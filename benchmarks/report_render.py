"""Benchmark: the figures of one report, built and rendered as ``ttq-report`` renders them.

    python benchmarks/report_render.py [--rounds 3] [--against REV] [--json OUT]

The committed ResNet-20 analyses (``results/h200-2026-11-26``: the TTQ network with 40
epochs of history and its FP baseline) give the figures of a ``--baseline`` report: the
TTQ network's seven (energy, sparsity, activation-sparsity histogram, training curves,
sparsity evolution, scales, gradient multipliers), its scenario-matrix heat map, and the
FP network's three.  Each figure is built (``reports.figures``), then written exactly as
the report writes it (:func:`reports.render.figure_item`: one SVG rendering, the ``.svg``
file, the inlined copy and the ``.png``).  No model runs and no data is read.

Times are CPU seconds of this process (``time.process_time``), best of ``--rounds``: the
figure is rebuilt each round, so nothing is cached between rounds.  CPU time is less
sensitive than wall time to other work on the same cores, but not immune to it (caches,
frequency): compare ratios measured in one run, not absolute times across runs.

``--against REV`` times a git revision (e.g. ``HEAD~3``, checked out into a temporary
worktree) and this checkout, each in its own process, alternating rounds, and prints the
ratio per figure (this checkout / REV).  Both sides render the same committed analyses.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "h200-2026-11-26"


def _figure_builders():
    """(network, builder) per figure of the report of the committed analyses; each builder
    returns that figure's FigureSpec (built on call, so building is timed per figure)."""
    from reports import figures as F
    from reports.scenarios import network_scenarios
    from ttq_analysis.analysis import Analysis
    from ttq_analysis.energy import load_energy_model
    from ttq_analysis.scenario_matrix import scenario_matrix

    ttq = Analysis.from_json(RESULTS / "resnet20_ttq_best.analysis.json")
    fp = Analysis.from_json(RESULTS / "resnet20_fp_best.analysis.json")
    models = [load_energy_model(ttq.meta["energy_model"])]
    matrix = scenario_matrix(ttq.layers, models, baseline_layers=fp.layers)
    builders = [("ttq", lambda: network_scenarios("ResNet-20 TTQ", "ttq", matrix)["figure"])]
    for net, a in (("ttq", ttq), ("fp", fp)):
        history = a.meta["checkpoint"].get("history")
        builders += [(net, lambda a=a: F.energy_by_layer(a)),
                     (net, lambda a=a: F.sparsity_by_layer(a)),
                     (net, lambda a=a: F.act_sparsity_distribution(a))]
        builders += [(net, lambda f=f, h=history, m=a.meta: f(h, m))
                     for f in (F.training_curves, F.sparsity_evolution, F.scales_evolution,
                               F.gradient_multipliers)]
    return builders


def one_round(folder: Path) -> dict[str, dict[str, float]]:
    """{figure: {"build": s, "render": s}} of one round (CPU seconds)."""
    from reports.render import figure_item
    out = {}
    for net, build in _figure_builders():
        t0 = time.process_time()
        spec = build()
        t1 = time.process_time()
        if spec is None:  # does not apply (e.g. no gradient statistics in the FP history)
            continue
        figure_item(spec, folder, 1)
        t2 = time.process_time()
        out[f"{net}:{spec.name}"] = {"build": t1 - t0, "render": t2 - t1}
    return out


def _best(rounds: list[dict]) -> dict[str, dict[str, float]]:
    return {k: {part: min(r[k][part] for r in rounds) for part in ("build", "render")}
            for k in rounds[0]}


def _table(best: dict, other: dict | None = None) -> str:
    lines = [f"{'figure':36s} {'build s':>8s} {'render s':>9s} {'total s':>8s}"
             + (f" {'REV s':>8s} {'ratio':>6s}" if other else "")]
    rows = list(best) + ["TOTAL"]
    for k in rows:
        if k == "TOTAL":
            b = {p: sum(v[p] for v in best.values()) for p in ("build", "render")}
            o = ({p: sum(v[p] for v in other.values()) for p in ("build", "render")}
                 if other else None)
        else:
            b, o = best[k], (other or {}).get(k)
        tot = b["build"] + b["render"]
        line = f"{k:36s} {b['build']:8.3f} {b['render']:9.3f} {tot:8.3f}"
        if other:
            ot = o["build"] + o["render"] if o else float("nan")
            line += f" {ot:8.3f} {tot / ot:6.2f}" if o else "        -      -"
        lines.append(line)
    return "\n".join(lines)


def _child(rounds: int) -> None:
    """Run ``rounds`` rounds in this process; print one JSON line per round."""
    import matplotlib
    matplotlib.use("Agg")
    one_round(Path(tempfile.mkdtemp()))  # warm-up: imports, font cache
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps(one_round(Path(d))), flush=True)


def _run_side(root: Path, rounds: int) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(root), MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                        "--rounds", str(rounds)], cwd=root, env=env, capture_output=True,
                       text=True)
    if r.returncode != 0:
        sys.exit(f"benchmark failed in {root}:\n{r.stderr[-3000:]}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds per side (best is kept)")
    p.add_argument("--against", metavar="REV", help="a git revision to compare with")
    p.add_argument("--json", metavar="OUT", help="write the best times (and REV's) here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.rounds)
        return 0
    if not args.against:
        best = _best(_run_side(REPO, args.rounds))
        print(_table(best))
        result = {"this": best}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            wt = Path(tmp) / "rev"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q",
                            str(wt), args.against], check=True)
            try:
                mine, theirs = [], []
                for _ in range(args.rounds):  # alternate, so drift in load hits both sides
                    theirs += _run_side(wt, 1)
                    mine += _run_side(REPO, 1)
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(wt)], check=False)
        best, other = _best(mine), _best(theirs)
        print(f"this checkout vs {args.against} (ratio < 1: this checkout is faster)")
        print(_table(best, other))
        result = {"this": best, "against": args.against, "rev": other}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
