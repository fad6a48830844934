"""Energy per epoch from a run's history (ttq_analysis.epoch_energy), the accuracy–energy
front across epochs in the report, and the two ttq-train options behind it: --probe-images
(activation sparsity per epoch) and --keep-epochs (every epoch's weights).

Expected numbers are derived independently: by hand from the counting convention for a
synthetic layer table, and, on a real two-epoch CIFAR-10 run, from an exact analysis of the
kept epoch-1 checkpoint and from the analysis's own activation measurement."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from torch import nn

from reports.cli import main as report_main
from reports.epoch_tradeoff import epoch_table, front_sentence
from ttq_analysis import analyze, load_energy_model
from ttq_analysis.epoch_energy import check_filters, epoch_energies, from_analysis
from ttq_core.checkpoint import load_model
from ttq_core.train.cli import main as train_main

from conftest import CIFAR_ARCHIVE, needs_cifar
from test_reliability import TINY


# ----------------------------------------------------------------------------- by hand

def _table() -> pd.DataFrame:
    """Two ternary convs and one FP linear, counts written from the convention by hand.

    a: 2 filters of 1x3x3 = 18 weights, 4 output positions; 6 zeros (12 nonzero) with both
       signs in each filter: adds = 4 x (12 - 2) = 40, mults = 4 x 2 x 2 = 16.
    b: 4 filters of 2x1x1 = 8 weights, 9 positions; 2 zeros: adds = 9 x (6 - 4) = 18,
       mults = 9 x 4 x 2 = 72.
    fc: 10 x 4 FP weights, 40 MACs."""
    rows = [
        dict(layer="a", kind="conv", ternary=True, weight_format="ternary", params=18, macs=72.0,
             output_positions=4, weight_sparsity=6 / 18, ternary_adds=40.0, ternary_mults=16.0,
             weight_bits=2 * 18 + 64.0, fp_weight_bits=32 * 18.0, in_elements=36.0,
             out_elements=8.0),
        dict(layer="b", kind="conv", ternary=True, weight_format="ternary", params=8, macs=72.0,
             output_positions=9, weight_sparsity=2 / 8, ternary_adds=18.0, ternary_mults=72.0,
             weight_bits=2 * 8 + 64.0, fp_weight_bits=32 * 8.0, in_elements=18.0,
             out_elements=36.0),
        dict(layer="fc", kind="linear", ternary=False, weight_format="fp", params=40, macs=40.0,
             output_positions=1, weight_sparsity=0.0, ternary_adds=math.nan,
             ternary_mults=math.nan, weight_bits=32 * 40.0, fp_weight_bits=32 * 40.0,
             in_elements=4.0, out_elements=10.0),
    ]
    df = pd.DataFrame(rows)
    for col in ("effective_adds", "effective_mults", "effective_macs", "act_sparsity",
                "out_act_sparsity"):
        df[col] = math.nan
    return df


def test_epoch_energy_by_hand():
    """Epoch 1 has 9 zeros in a (9 nonzero) and 4 in b (4 nonzero); epoch 2 is the
    checkpoint's own weights.  Horowitz 45 nm, fp32, SRAM weights."""
    history = [
        {"epoch": 1, "test_acc": 0.50, "layers": {"a": {"frac_zero": 9 / 18}, "b": {"frac_zero": 4 / 8}}},
        {"epoch": 2, "test_acc": 0.60, "layers": {"a": {"frac_zero": 6 / 18}, "b": {"frac_zero": 2 / 8}}},
    ]
    model = load_energy_model("horowitz45")
    add, mult = model.ops_pJ["fp32_add"], model.ops_pJ["fp32_mult"]
    sram = model.memory_pJ_per_bit["sram"]
    df = epoch_energies(_table(), history, model)
    # epoch 1: a adds = 4 x (9 - 2) = 28, b adds = 9 x (4 - 4) = 0; mults unchanged 16 + 72
    assert df["ternary_adds"].tolist() == [28.0, 58.0]
    assert df["ternary_mults"].tolist() == [88.0, 88.0]
    fc = 40 * (add + mult)
    memory = (2 * 18 + 64 + 2 * 8 + 64 + 32 * 40) * sram
    e1 = (28 * add + 88 * mult + fc + memory) / 1e6
    e2 = (58 * add + 88 * mult + fc + memory) / 1e6
    assert df["ttq_dense_total_uJ"].tolist() == pytest.approx([e1, e2], rel=1e-12)
    assert df["ttq_dense_compute_uJ"].tolist() == pytest.approx(
        [(28 * add + 88 * mult + fc) / 1e6, (58 * add + 88 * mult + fc) / 1e6], rel=1e-12)
    # zeros over all ternary weights: (9 + 4) / 26 and (6 + 2) / 26
    assert df["weight_sparsity"].tolist() == pytest.approx([13 / 26, 8 / 26])
    # epoch 1 is cheaper but less accurate: both on the front
    assert df["on_front"].tolist() == [True, True]
    assert df["probe_act_sparsity"].isna().all()
    assert check_filters(_table()) == {"filters": 6, "missing_signs": 0}


def test_epoch_missing_from_history_is_nan_not_a_mix():
    history = [{"epoch": 1, "test_acc": 0.5, "layers": {"a": {"frac_zero": 0.5}}}]  # no b
    df = epoch_energies(_table(), history, "horowitz45")
    assert math.isnan(df["ttq_dense_total_uJ"].iloc[0])
    assert not df["on_front"].iloc[0]


# ----------------------------------------------------------------------------- a real run

@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A real two-epoch TTQ run (256 CIFAR-10 training images) with every epoch kept and a
    64-image probe; its test split is the 64-image class-balanced subset."""
    if not CIFAR_ARCHIVE.exists():
        pytest.skip("real CIFAR-10 archive absent")
    out = tmp_path_factory.mktemp("epochs") / "run"
    flags = [a for a in TINY]
    flags[flags.index("--limit-test") + 1] = "64"
    assert train_main([*flags, "--out", str(out), "--epochs", "2", "--keep-epochs",
                       "--probe-images", "64", "--threshold", "0.15"]) == 0
    return out, flags


@needs_cifar
def test_epoch_energy_matches_an_exact_analysis_of_the_kept_epoch(two_epochs):
    """Epoch 1's energy from epoch 2's counts + the history equals the exact dense count of
    the epoch-1 checkpoint itself, and the hand formula over the layer shapes."""
    out, _ = two_epochs
    assert sorted(p.name for p in (out / "epochs").iterdir()) == ["epoch-001.pt", "epoch-002.pt"]
    last = analyze(out / "last.pt", progress=False, device="cpu")
    first = analyze(out / "epochs" / "epoch-001.pt", progress=False, device="cpu")
    assert check_filters(last.layers)["missing_signs"] == 0
    assert check_filters(first.layers)["missing_signs"] == 0
    df = from_analysis(last)
    assert df["epoch"].tolist() == [1, 2]
    assert df["ttq_dense_total_uJ"].iloc[1] == pytest.approx(
        last.network.energy.ttq_dense.total_uJ, rel=1e-12)
    assert df["ttq_dense_total_uJ"].iloc[0] == pytest.approx(
        first.network.energy.ttq_dense.total_uJ, rel=1e-12)
    # by hand: Σ over ternary layers of positions x (nonzero weights - filters), from the
    # epoch-1 weights and the module shapes
    model = load_model(out / "epochs" / "epoch-001.pt").model
    hist = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    positions = dict(zip(first.layers["layer"], first.layers["output_positions"]))
    adds = 0
    for name, rec in hist["layers"].items():
        m = model.get_submodule(name)
        n = m.weight.numel()
        nonzero = round((1 - rec["frac_zero"]) * n)
        adds += positions[name] * (nonzero - m.weight.shape[0])
    assert df["ternary_adds"].iloc[0] == adds
    # the two epochs differ (the threshold moved weights), so the check has teeth
    assert df["ternary_adds"].iloc[0] != df["ternary_adds"].iloc[1]


@needs_cifar
def test_probe_records_what_the_analysis_measures(two_epochs, tmp_path):
    """The probe's per-layer input zero fractions after epoch 2 equal the analysis's
    measured act_sparsity of last.pt on the same 64 test images (another code path:
    ttq_analysis.activations), and its cost is recorded."""
    out, flags = two_epochs
    entries = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    probe = entries[-1]["probe"]
    assert probe["images"] == 64 and probe["seconds"] > 0
    report = tmp_path / "report"
    data = flags[flags.index("--data-dir") + 1]
    assert report_main([str(out / "last.pt"), "--data-dir", data, "--limit-test", "64",
                        "--device", "cpu", "--no-progress", "--out", str(report)]) == 0
    summary = json.loads((report / "analysis.json").read_text())
    layers = summary["networks"][0]["analysis"]["layers"]
    measured = {r[0]: dict(zip(layers["columns"], r))["act_sparsity"] for r in layers["data"]}
    assert set(probe["act_sparsity"]) == set(measured)
    for name, value in measured.items():
        assert probe["act_sparsity"][name] == pytest.approx(value, abs=1e-9), name
    assert any(v > 0.1 for v in measured.values())  # ReLU inputs: real zeros, not all 0
    # the report shows the trade-off with the probe column and names the kept files
    html = (report / "report.html").read_text()
    assert "accuracy–energy front" in html and "probe_act_sparsity" in html
    csv = pd.read_csv(next(report.glob("epochs_*.csv")))
    assert csv["checkpoint"].fillna("").str.contains("epochs/epoch-001.pt").iloc[0]
    assert "last.pt" in csv["checkpoint"].iloc[1]


@needs_cifar
def test_fresh_run_refuses_a_folder_with_kept_epochs(two_epochs, tmp_path):
    """A folder whose only run files are kept epochs is still a run: refused, nothing lost."""
    out, flags = two_epochs
    folder = tmp_path / "old"
    (folder / "epochs").mkdir(parents=True)
    kept = folder / "epochs" / "epoch-001.pt"
    kept.write_bytes((out / "epochs" / "epoch-001.pt").read_bytes())
    before = kept.read_bytes()
    assert train_main([*flags, "--out", str(folder), "--epochs", "1", "--keep-epochs"]) == 1
    assert kept.read_bytes() == before
    assert sorted(p.name for p in folder.rglob("*")) == ["epoch-001.pt", "epochs"]


def test_front_sentence_names_the_trade_off():
    from reports.table_format import Table
    df = pd.DataFrame({"epoch": [1, 2, 3], "test_acc_pct": [80.0, 82.0, 81.0],
                       "ttq_dense_total_uJ": [10.0, 12.0, 11.0], "on_front": [True, True, True]})
    s = front_sentence(Table("e", "t", df, "c"))
    # most accurate: epoch 2 at 12 µJ; cheapest front epoch: epoch 1 at 10 µJ: 1 - 10/12 = 16.7%
    assert "epoch 2 (82.00%, 12.000 µJ), costs 16.7% more energy" in s
    assert "epochs 1, 3, 2" in s


def test_no_table_when_the_history_does_not_record_the_quantized_layers():
    """A what-if ternarization of an FP checkpoint: its history (FP training) has no
    per-layer records of the ternary layers, so there is no per-epoch energy to show."""
    from ttq_analysis.analysis import Analysis
    history = [{"epoch": 1, "test_acc": 0.8, "layers": {}}, {"epoch": 2, "test_acc": 0.85}]
    a = Analysis(meta={"checkpoint": {"history": history},
                       "energy_model": load_energy_model("horowitz45").raw},
                 network=None, histograms={}, layers=_table())
    assert epoch_table(a) is None
