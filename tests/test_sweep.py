"""ttq-sweep on a tiny real subset: every kind of setting trains, plans meet their budgets
after fine-tuning, the sparsity rule holds exactly, the ablation pair's gradient statistics
behave as the scaling says, the Pareto front by hand, reruns reuse finished runs, bad
settings fail in one line."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from reports.comparison import pareto_front
from reports.sweep import main as sweep_main, parse_setting
from ttq_core.errors import ConfigError

from conftest import CIFAR_ARCHIVE, chromium_console_errors, external_references, needs_cifar

REPO = Path(__file__).resolve().parents[1]
FP_CKPT = REPO / "benchmarks" / "results" / "h200-2026-11-26" / "resnet20_fp_best.pt"
TINY = ["--init", str(FP_CKPT), "--data-dir", str(CIFAR_ARCHIVE), "--limit-train", "256",
        "--limit-test", "100", "--batch-size", "64", "--epochs", "1", "--device", "cpu",
        "--calibration-images", "32", "--no-progress"]
SETTINGS = ["--thresholds", "0.05", "--sparsities", "0.5", "--energy-budgets", "0.7",
            "--uniform-budgets", "0.7", "--ablate-grad-scaling"]


def test_pareto_front_by_hand():
    # (energy, accuracy): B dominates A (cheaper, as accurate); C is more accurate but dearer;
    # D is dominated by B; E is NaN
    energy = [10.0, 8.0, 12.0, 9.0, math.nan]
    acc = [0.80, 0.80, 0.85, 0.79, 0.99]
    assert pareto_front(energy, acc) == [False, True, True, False, False]
    assert pareto_front([1.0, 1.0], [0.5, 0.5]) == [True, True]   # duplicates both kept


def test_parse_setting():
    s = parse_setting("energy=25uJ,ste,scale-lr-mult=0.1,label=mine")
    assert (s.kind, s.value, s.grad_scaling, s.overrides, s.label) == \
        ("energy", "25uJ", False, {"scale_lr_mult": 0.1}, "mine")
    assert parse_setting("t=0.1").label == "t=0.1"
    assert parse_setting("t=0.1,ste").key == parse_setting("t=0.1").key
    s0, s1 = parse_setting("t=0.05,seed=0"), parse_setting("t=0.05,seed=1,ste")
    assert s1.overrides == {"seed": 1} and s0.key != s1.key   # seeds are separate runs ...
    assert s0.replicate_key == s1.replicate_key == parse_setting("t=0.05").replicate_key
    assert parse_setting("t=0.05,scale-init=least-squares").replicate_key != s0.replicate_key
    for bad, msg in [("x=1", "unknown kind"), ("t=0.1,seed=1.5", "seed: an integer"), ("t=abc", "not a number"), ("t=1.5", "must be in"),
                     ("energy=3", "a fraction must be in"), ("t=0.1,fast", "unknown option"),
                     ("0.1", "expected KIND=VALUE")]:
        with pytest.raises(ConfigError, match=msg):
            parse_setting(bad)


def test_replicate_findings_summarise_seeds_by_hand():
    """Two seeds of one ablation pair: means and per-seed differences computed by hand."""
    from reports.comparison import SweepEntry, _replicate_findings

    def entry(label, on, zero):
        hist = [{"epoch": 1, "layers": {"a": {"frac_zero": zero}, "b": {"frac_zero": zero + 0.2}}}]
        return SweepEntry(label, "", None, hist, on, label.replace(",ste", ""), replicate_key="k")
    pairs = [(entry("s0", True, 0.1), entry("s0,ste", False, 0.3)),
             (entry("s1", True, 0.2), entry("s1,ste", False, 0.4))]
    df = pd.DataFrame({"best_test_acc": [0.80, 0.78, 0.84, 0.85]},
                      index=["s0", "s0,ste", "s1", "s1,ste"])
    (text,) = _replicate_findings(pairs, df)
    # with: (80 + 84) / 2 = 82.00; without: (78 + 85) / 2 = 81.50; differences +2, -1
    # zero fractions: mean over layers a, b then over seeds: with (0.2 + 0.3) / 2 = 0.25,
    # without (0.4 + 0.5) / 2 = 0.45
    assert "Over 2 seeds" in text and "82.00% with gradient scaling and 81.50% without" in text
    assert "+2.00, -1.00 points (the sign changes between seeds)" in text
    assert "0.250 with and 0.450 without" in text
    assert _replicate_findings(pairs[:1], df) == []   # one seed: nothing to summarise


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    if not CIFAR_ARCHIVE.exists():
        pytest.skip("real CIFAR-10 archive absent")
    out = tmp_path_factory.mktemp("sweep") / "s"
    assert sweep_main([*TINY, *SETTINGS, "--out", str(out)]) == 0
    return out


@needs_cifar
def test_sweep_report_and_tables(sweep):
    report = sweep / "report"
    html = (report / "report.html").read_text()
    for section in ('id="comparison"', 'id="ablation"', 'id="fig-pareto"', 'id="dense"',
                    "Pareto front", "Dense-activation assumption", "How it was trained"):
        assert section in html
    for f in ("comparison.csv", "comparison.tex", "comparison.md", "ablation_grad_scaling.csv",
              "pareto.svg", "pareto.png", "convergence.svg", "ablation_gradients.png",
              "sweep.json"):
        assert (report / f).stat().st_size > 0
    df = pd.read_csv(report / "comparison.csv")
    assert list(df["setting"]) == ["FP32 baseline", "t=0.05", "sparsity 0.5", "energy-aware 0.7",
                                   "uniform 0.7", "t=0.05 (plain STE)"]
    # the sparsity rule keeps exactly half of every (even-sized) ternary layer zero
    assert df.loc[df["setting"] == "sparsity 0.5", "weight_sparsity"].item() == pytest.approx(0.5, abs=1e-12)
    # each row's Pareto flag agrees with a brute-force dominance check on the table itself
    tern = df[df["setting"] != "FP32 baseline"]
    for _, r in tern.iterrows():
        dominated = any((o["energy_measured_uJ"] <= r["energy_measured_uJ"]
                         and o["best_test_acc"] >= r["best_test_acc"]
                         and (o["energy_measured_uJ"] < r["energy_measured_uJ"]
                              or o["best_test_acc"] > r["best_test_acc"]))
                        for _, o in tern.iterrows() if o["setting"] != r["setting"])
        assert bool(r["pareto_measured"]) == (not dominated)


@needs_cifar
def test_planned_budgets_hold_after_fine_tuning(sweep):
    import json
    df = pd.read_csv(sweep / "report" / "comparison.csv")
    html = (sweep / "report" / "report.html").read_text()
    for label, slug in (("energy-aware 0.7", "energy-aware-0-7"), ("uniform 0.7", "uniform-0-7")):
        plan = json.loads((sweep / "plans" / f"{slug}.json").read_text())
        budget = plan["details"]["budget_uJ"]
        assert budget == pytest.approx(0.7 * plan["details"]["reference_uJ"], rel=1e-12)
        dense = df.loc[df["setting"] == label, "energy_dense_uJ"].item()
        assert plan["details"]["predicted_uJ"] <= budget * (1 + 1e-12)
        # fine-tuning keeps every layer's zero count; only filters emptied or gaining a
        # first weight of a sign move the dense energy, by far less than 1 %
        assert dense == pytest.approx(plan["details"]["predicted_uJ"], rel=1e-2)
        assert f"after fine-tuning {dense:.2f} µJ" in html


@needs_cifar
def test_ablation_gradient_statistics(sweep):
    abl = pd.read_csv(sweep / "report" / "ablation_grad_scaling.csv")
    on = abl[abl["grad_scaling"] == "on"].iloc[0]
    off = abl[abl["grad_scaling"] == "off"].iloc[0]
    for region in ("pos", "zero", "neg"):
        # plain STE applies the gradient unchanged
        assert off[f"grad_{region}_applied"] == pytest.approx(off[f"grad_{region}_raw"], rel=1e-9)
    # TTQ: the zero region's multiplier is 1, the ± regions' are Wp, Wn: the applied/raw
    # ratio lies within the range the scales took (they start at 1, the authors' choice)
    assert on["grad_zero_applied"] == pytest.approx(on["grad_zero_raw"], rel=1e-9)
    history = torch.load(sweep / "runs" / "t-0-05" / "last.pt", weights_only=True)["history"]
    for region, scale in (("pos", "wp"), ("neg", "wn")):
        values = [1.0] + [v[scale] for e in history for v in e["layers"].values()]
        ratio = on[f"grad_{region}_applied"] / on[f"grad_{region}_raw"]
        assert min(values) * (1 - 1e-6) <= ratio <= max(values) * (1 + 1e-6)


@needs_cifar
def test_rerun_reuses_finished_runs(sweep, capsys):
    last = sweep / "runs" / "t-0-05" / "last.pt"
    before = last.stat().st_mtime_ns
    assert sweep_main([*TINY, *SETTINGS, "--out", str(sweep)]) == 0
    assert "finished run found" in capsys.readouterr().out
    assert last.stat().st_mtime_ns == before
    # the same folder with another setting under an existing name is refused
    code = sweep_main([*TINY, "--setting", "t=0.05,lr=0.5,label=t=0.05", "--out", str(sweep)])
    err = capsys.readouterr().err
    assert code == 1 and "holds a run with different settings" in err


def test_bad_sweep_input_one_line(tmp_path, capsys):
    for args, msg in [(["--setting", "bogus=1"], "unknown kind"),
                      ([], "no settings"),
                      (["--thresholds", "0.1", "--setting", "t=0.1"], "share a name"),
                      (["--thresholds", "0.1", "--epochs", "0"], "--epochs must be at least 1")]:
        code = sweep_main(["--init", str(FP_CKPT), *args, "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err
        assert code == 1 and err.startswith("ttq-sweep: error:") and msg in err, err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@needs_cifar
def test_findings_compare_plans_and_ablation_with_their_noise(sweep):
    import re
    html = (sweep / "report" / "report.html").read_text()
    df = pd.read_csv(sweep / "report" / "comparison.csv").set_index("setting")
    m = re.search(r"Budget 0\.7: .*?energy-aware minus uniform is ([+-]\d+\.\d\d) points, "
                  r"(within|beyond) twice the standard error of the difference "
                  r"\(±(\d+\.\d\d) points on 100 test images\)", html)
    assert m, "no energy-aware vs uniform finding"
    pa, pu = df.loc["energy-aware 0.7", "best_test_acc"], df.loc["uniform 0.7", "best_test_acc"]
    assert float(m.group(1)) == pytest.approx(100 * (pa - pu), abs=0.006)
    # two binomial standard errors on 100 images each, combined in quadrature
    two_se = 200 * math.sqrt(pa * (1 - pa) / 100 + pu * (1 - pu) / 100)
    assert float(m.group(3)) == pytest.approx(two_se, abs=0.006)
    assert m.group(2) == ("within" if abs(pa - pu) * 100 <= two_se else "beyond")
    assert "Latent-gradient scaling (t=0.05 vs t=0.05 (plain STE))" in html


@needs_cifar
def test_sweep_report_is_offline_and_opens_in_chromium(sweep, tmp_path):
    html = sweep / "report" / "report.html"
    assert external_references(html.read_text()) == []
    if shutil.which("chromium") is None:
        pytest.skip("headless Chromium not installed")
    assert chromium_console_errors(html, tmp_path) == []


@pytest.mark.parametrize("module", ["reports.sweep", "ttq_analysis.plan_cli"])
def test_help_teaches(module, capsys):
    import importlib
    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "examples:" in out and "--energy-budget" in out


def test_front_change_under_another_hardware_scenario_by_hand():
    """The sweep was costed with int8 activations in SRAM; under the default scenario the
    measured TTQ energy of each setting is (two-layer table of test_energy, horowitz45):
    FP layer 600 x 4.6 + 500 = 3,260 pJ, plus the ternary layer's effective_adds x 0.9 +
    30 x 3.7 + 72.5: A (700 adds) 4,073.5, B (300) 3,713.5, C (1,000) 4,343.5 pJ.  With
    accuracies A 0.69, B 0.70, C 0.85 the default front is {B, C} (A costs more than B
    and is less accurate); the chosen scenario's front, as stated in the table, is {A, C}."""
    from reports.comparison import SweepEntry, _front_under_default_scenario
    from tests.test_energy import with_activations
    from ttq_analysis import Analysis, load_energy_model
    meta = {"precision": "int8", "act_memory": "sram", "memory": "sram",
            "energy_model": load_energy_model("horowitz45").raw}
    entries = [SweepEntry(label, "", Analysis(with_activations(effective_adds=[float("nan"), adds]),
                                              None, dict(meta)), [])
               for label, adds in (("A", 700), ("B", 300), ("C", 1000))]
    df = pd.DataFrame({"best_test_acc": [0.69, 0.70, 0.85],
                       "pareto_measured": [True, False, True]}, index=["A", "B", "C"])
    text = _front_under_default_scenario(entries, df)
    assert text.startswith("Hardware scenario: under int8 activations, activations read and "
                           "written in SRAM the Pareto front on measured energy is A, C;")
    assert "it would be B, C: the front changes (A joins; B drops out)." in text
    df["pareto_measured"] = [False, True, True]
    assert "is the same as under the default scenario" in _front_under_default_scenario(entries, df)
    for e in entries:
        e.analysis.meta.update(precision="fp32", act_memory="none")
    assert _front_under_default_scenario(entries, df) is None


@needs_cifar
def test_sweep_under_another_hardware_scenario_reuses_runs_and_says_if_the_front_moved(
        sweep, tmp_path, capsys):
    """The finished runs of ``sweep`` (copied) re-analysed under int8 activations kept in
    SRAM: nothing is retrained, every energy is costed under that scenario, and a finding
    compares the Pareto front with the default scenario's."""
    out = tmp_path / "s"
    out.mkdir()
    for name in ("t-0-05", "sparsity-0-5"):
        shutil.copytree(sweep / "runs" / name, out / "runs" / name)
    code = sweep_main([*TINY, "--thresholds", "0.05", "--sparsities", "0.5",
                       "--activations", "int8", "--act-memory", "sram", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.count("finished run found") == 2
    dump = json.loads((out / "report" / "sweep.json").read_text())
    for s in dump["settings"]:
        meta, net = s["analysis"]["meta"], s["analysis"]["network"]
        assert (meta["precision"], meta["act_memory"]) == ("int8", "sram")
        assert net["ttq_dense_act_memory_uJ"] > 0
        assert net["ttq_measured_total_uJ"] == pytest.approx(
            net["ttq_measured_compute_uJ"] + net["ttq_measured_memory_uJ"]
            + net["ttq_measured_act_memory_uJ"])
    html = (out / "report" / "report.html").read_text()
    assert "Hardware scenario: under int8 activations, activations read and written in SRAM" in html
