"""reports.tables: Table 3 numbers equal the analyses' network values (with and without a
real FP baseline), FP-only entries, layer and cost-model tables, CSV/LaTeX/Markdown
exports (escaping, same numbers, atomic), HTML escaping and data-value attributes,
captions that state data and assumptions.  Real ResNet-20 analyses, no model is run."""

from __future__ import annotations

import copy
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from reports.tables import (Table, cost_model_table, export, layer_table, summary_text,
                            table3, to_html)
from ttq_analysis.analysis import Analysis
from ttq_analysis.results import NetworkResult
from ttq_core.errors import ConfigError

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "h200-2026-11-26"
LABEL = "ResNet-20"
ENERGY = ("compute_dense_uJ", "memory_uJ", "total_dense_uJ", "compute_measured_uJ",
          "total_measured_uJ")
# table-3 column -> (activations, part) of the network's scenario energy
NETWORK_KEYS = {"compute_dense_uJ": ("dense", "compute"), "memory_uJ": ("dense", "memory"),
                "total_dense_uJ": ("dense", "total"), "compute_measured_uJ": ("measured", "compute"),
                "total_measured_uJ": ("measured", "total")}


def _energy_of(a, precision, key):
    act, part = key
    return getattr(a.network.energy.scenario(precision, act), f"{part}_uJ")


@pytest.fixture(scope="module")
def ttq() -> Analysis:
    return Analysis.from_json(RESULTS / "resnet20_ttq_best.analysis.json")


@pytest.fixture(scope="module")
def fp() -> Analysis:
    return Analysis.from_json(RESULTS / "resnet20_fp_best.analysis.json")


def _row(table: Table, precision: str, network: str = LABEL) -> pd.Series:
    df = table.df
    rows = df[(df["network"] == network) & (df["precision"] == precision)]
    assert len(rows) == 1
    return rows.iloc[0]


# ----------------------------------------------------------------------------- table 3

def test_table3_with_baseline_equals_network_values(ttq, fp):
    t = table3([(LABEL, ttq)], baseline={LABEL: fp}, baseline_labels={LABEL: "r20-fp/best"})
    assert len(t.df) == 2
    assert list(t.df["precision"]) == ["FP32", "TTQ"]
    # the FP32 row is the baseline, under its own name; one row block with the TTQ row
    fp_row, tq_row = _row(t, "FP32", "r20-fp/best"), _row(t, "TTQ")
    assert t.groups == [0, 0]
    for col, key in NETWORK_KEYS.items():
        assert fp_row[col] == _energy_of(fp, "fp32", key)
        assert tq_row[col] == _energy_of(ttq, "ttq", key)
    assert fp_row["test_acc"] == fp.network.accuracy.test_acc
    assert tq_row["test_acc"] == ttq.network.accuracy.test_acc
    assert fp_row["act_sparsity"] == fp.network.sparsity.act_sparsity_macs_weighted
    assert tq_row["act_sparsity"] == ttq.network.sparsity.act_sparsity_macs_weighted
    assert fp_row["weight_bits"] == fp.network.sizes.fp_weight_bits
    assert tq_row["weight_bits"] == ttq.network.sizes.weight_bits
    assert tq_row["ternary_adds"] == ttq.network.counts.ternary_adds
    assert tq_row["ternary_mults"] == ttq.network.counts.ternary_mults
    assert math.isnan(fp_row["ternary_adds"]) and math.isnan(fp_row["ternary_mults"])
    assert tq_row["macs"] == fp_row["macs"] == 40_551_040
    assert tq_row["saving_dense"] == pytest.approx(
        fp.network.energy.fp32_dense.total_uJ / ttq.network.energy.ttq_dense.total_uJ, rel=1e-12)
    assert tq_row["saving_measured"] == pytest.approx(
        fp.network.energy.fp32_measured.total_uJ / ttq.network.energy.ttq_measured.total_uJ, rel=1e-12)
    # the FP model's own activations differ from the ternary network's
    assert tq_row["saving_measured"] != pytest.approx(ttq.network.saving("measured"))
    assert math.isnan(fp_row["saving_dense"]) and math.isnan(fp_row["saving_measured"])
    # raw floats, never formatted strings
    for col in ENERGY + ("test_acc", "macs", "saving_dense"):
        assert pd.api.types.is_float_dtype(t.df[col])
    assert ("ResNet-20 is compared with the FP32 row of r20-fp/best: the trained "
            "full-precision checkpoint") in t.caption
    # without a name for it, the baseline row says which file it is
    unnamed = table3([(LABEL, ttq)], baseline={LABEL: fp})
    assert unnamed.df["network"][0] == "resnet20 (resnet20_fp_best.pt)"


def test_table3_lists_a_baseline_that_is_also_an_entry_once(ttq, fp):
    """An FP network and a ternary network compared with it (a what-if estimate, or a
    --baseline also given as an input): one FP32 row, and the savings are over it."""
    t = table3([("fp", fp), ("tern", ttq)], baseline={"tern": fp})
    assert list(zip(t.df["network"], t.df["precision"])) == [("fp", "FP32"), ("tern", "TTQ")]
    assert t.groups == [0, 0]
    want = fp.network.energy.fp32_dense.total_uJ / ttq.network.energy.ttq_dense.total_uJ
    assert t.df["saving_dense"][1] == pytest.approx(want, rel=1e-12)
    later = table3([("tern", ttq), ("fp", fp)], baseline={"tern": fp})  # the FP entry after
    assert list(zip(later.df["network"], later.df["precision"])) == [("fp", "FP32"),
                                                                      ("tern", "TTQ")]


def test_table3_without_baseline_uses_the_fp_twin(ttq):
    t = table3([(LABEL, ttq)])
    fp_row, tq_row = _row(t, "FP32"), _row(t, "TTQ")
    for col, key in NETWORK_KEYS.items():
        assert fp_row[col] == _energy_of(ttq, "fp32", key)
    assert math.isnan(fp_row["test_acc"])  # the twin was never trained
    assert fp_row["act_sparsity"] == ttq.network.sparsity.act_sparsity_macs_weighted
    assert tq_row["saving_dense"] == pytest.approx(ttq.network.saving("dense"), rel=1e-12)
    assert tq_row["saving_measured"] == pytest.approx(ttq.network.saving("measured"), rel=1e-12)
    assert "same architecture counted in FP32" in t.caption


def test_table3_fp_only_entry_has_its_energy(ttq, fp):
    t = table3([("FP", fp)])
    assert len(t.df) == 1
    row = t.df.iloc[0]
    assert row["precision"] == "FP32"
    assert row["total_dense_uJ"] == fp.network.energy.fp32_dense.total_uJ > 0
    assert row["total_measured_uJ"] == fp.network.energy.fp32_measured.total_uJ > 0
    assert row["test_acc"] == fp.network.accuracy.test_acc
    both = table3([(LABEL, ttq), ("FP", fp)])
    assert list(zip(both.df["network"], both.df["precision"])) == [
        (LABEL, "FP32"), (LABEL, "TTQ"), ("FP", "FP32")]
    assert not both.df["network"].str.contains("total", case=False).any()  # no totals row


def test_table3_missing_accuracy_is_nan(ttq):
    a = copy.deepcopy(ttq)
    a.network = a.network.with_accuracy(None, None)
    assert math.isnan(_row(table3([(LABEL, a)]), "TTQ")["test_acc"])


def test_table3_rejects_bad_baselines(ttq, fp):
    with pytest.raises(ConfigError, match="matches no entry"):
        table3([(LABEL, ttq)], baseline={"ResNet-32": fp})
    with pytest.raises(ConfigError, match="ternary analysis"):
        table3([(LABEL, ttq)], baseline={LABEL: ttq})
    dram = copy.deepcopy(fp)
    dram.meta["memory"] = "dram"
    with pytest.raises(ConfigError, match="memory level"):
        table3([(LABEL, ttq)], baseline={LABEL: dram})
    with pytest.raises(ConfigError):
        table3([])


def test_captions_state_data_and_assumptions(ttq, fp):
    name = ttq.meta["energy_model"]["name"]
    for t in (table3([(LABEL, ttq)], {LABEL: fp}), table3([(LABEL, ttq)]), layer_table(ttq),
              cost_model_table(ttq)):
        assert name in t.caption
        assert ttq.meta["memory"].upper() in t.caption
    for t in (table3([(LABEL, ttq)], {LABEL: fp}), layer_table(ttq)):
        assert f"{ttq.meta['images']:,} images" in t.caption
        assert ttq.meta["checkpoint"]["dataset"] in t.caption
        assert "per inference of one input" in t.caption
        assert "dense" in t.caption and "measured" in t.caption


# ----------------------------------------------------------------------------- other tables

def test_layer_table(ttq):
    t = layer_table(ttq)
    assert len(t.df) == len(ttq.layers)
    assert list(t.df["layer"]) == list(ttq.layers["layer"])
    for scenario in ("fp32_dense", "fp32_measured", "ttq_dense", "ttq_measured"):
        col = f"{scenario}_total_pJ"
        assert t.df[col].tolist() == ttq.layers[col].tolist()
        assert t.df[col].sum() / 1e6 == pytest.approx(getattr(ttq.network.energy, scenario).total_uJ)
    assert {"wp", "wn", "effective_adds", "act_sparsity"} <= set(t.df.columns)


def test_cost_model_table_has_every_number_with_source(ttq):
    raw = ttq.meta["energy_model"]
    t = cost_model_table(ttq)
    n = len(raw["ops"]) + len(raw["memory"]) + len(raw.get("cache_pJ_per_64bit", {}))
    assert len(t.df) == n
    assert (t.df["source"].str.len() > 0).all()
    values = dict(zip(t.df["quantity"], t.df["value_pJ"]))
    assert values["fp32 mult"] == raw["ops"]["fp32_mult"]["pJ"]
    assert values["SRAM read"] == raw["memory"]["sram"]["pJ_per_32bit"]
    assert set(t.df.loc[t.df["used"], "quantity"]) == {"fp32 add", "fp32 mult", "SRAM read"}


# ----------------------------------------------------------------------------- exports

def _nasty_layers(ttq) -> Analysis:
    a = copy.deepcopy(ttq)
    a.layers["layer"] = a.layers["layer"].astype(object)
    a.layers.loc[0, "layer"] = "stem_conv & 50%"
    return a


def test_export_csv_round_trip_and_atomic(ttq, fp, tmp_path):
    t = table3([(LABEL, ttq)], {LABEL: fp})
    paths = export(t, tmp_path / "out")
    assert set(paths) == {"csv", "tex", "md"}
    assert all(p.exists() for p in paths.values())
    assert not list((tmp_path / "out").glob("*.tmp")) and not list((tmp_path / "out").glob(".*"))
    back = pd.read_csv(paths["csv"])
    assert list(back.columns) == list(t.df.columns)
    pd.testing.assert_frame_equal(back, t.df, check_dtype=False, rtol=0, atol=0)
    lt = layer_table(_nasty_layers(ttq))
    back = pd.read_csv(export(lt, tmp_path)["csv"])
    assert back.loc[0, "layer"] == "stem_conv & 50%"
    for col in lt.df.columns:
        if pd.api.types.is_float_dtype(lt.df[col]):
            assert back[col].tolist() == pytest.approx(lt.df[col].tolist(), rel=0, abs=0,
                                                       nan_ok=True)


def _tex_rows(tex: str) -> list[list[str]]:
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    return [[c.strip() for c in line.rstrip("\\ ").split(" & ")]
            for line in body.strip().splitlines() if line.strip() and line.strip() != "\\midrule"]


def test_latex_is_booktabs_escaped_and_holds_the_csv_numbers(ttq, fp, tmp_path):
    lt = layer_table(_nasty_layers(ttq))
    tex = export(lt, tmp_path)["tex"].read_text()
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert rule in tex
    assert "\\label{tab:layers}" in tex and "\\caption{" in tex
    assert r"stem\_conv \& 50\%" in tex
    assert "stem_conv" not in tex
    assert r"ttq\_dense\_total\_pJ" in tex  # headers escaped too
    rows = _tex_rows(tex)
    header = list(lt.df.columns)
    csv = pd.read_csv(tmp_path / "layers.csv")
    assert len(rows) == len(csv)
    i = 3
    macs = float(rows[i][header.index("macs")].replace(",", ""))
    assert macs == csv.loc[i, "macs"]
    pj = float(rows[i][header.index("ttq_dense_total_pJ")].replace(",", ""))
    assert pj == pytest.approx(csv.loc[i, "ttq_dense_total_pJ"], abs=0.5)
    # table 3: energies and savings printed with their display formats
    t = table3([(LABEL, ttq)], {LABEL: fp})
    paths = export(t, tmp_path)
    rows, csv = _tex_rows(paths["tex"].read_text()), pd.read_csv(paths["csv"])
    cols = list(t.df.columns)
    for col in ("total_dense_uJ", "saving_dense", "test_acc"):
        printed = float(rows[1][cols.index(col)])
        assert printed == pytest.approx(csv.loc[1, col], abs=0.006)
    assert rows[0][cols.index("saving_dense")] == "--"  # NaN


def test_markdown_has_header_separator(ttq, tmp_path):
    md = export(layer_table(_nasty_layers(ttq)), tmp_path)["md"].read_text()
    lines = [l for l in md.splitlines() if l.startswith("|")]
    assert lines[0].startswith("| layer | kind |")
    assert re.fullmatch(r"\|( -{3,}:? \|)+", lines[1])
    assert len(lines) == 2 + len(ttq.layers)
    assert "| stem_conv & 50% |" in md


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if tag == "td" and "data-value" in attrs:
            assert attrs.get("class") == "num"
            self.values.append(attrs["data-value"])


def test_html_escapes_text_and_keeps_raw_numbers(ttq, fp):
    evil = "<script>alert(1)</script>"
    t = table3([(evil, ttq)], {evil: fp})
    html = str(to_html(t))
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    parser = _Cells()
    parser.feed(html)
    assert {"table", "caption", "thead", "tbody", "th", "td"} <= parser.tags
    assert "script" not in parser.tags
    # the HTML shows the columns in parts (each a table of the same rows), every
    # numeric column exactly once
    parts = [[c for c in cols if c in t.df.columns] for _, cols in t.html_parts]
    numeric = [c for c in t.df.columns if c not in ("network", "precision")]
    assert sorted(c for cols in parts for c in cols if c in numeric) == sorted(numeric)
    expected = [t.df.loc[r, c] for cols in parts for r in range(len(t.df)) for c in cols
                if c in numeric]
    assert len(parser.values) == len(expected)
    for got, want in zip(parser.values, expected):
        if math.isnan(want):
            assert got == "NaN"
        else:
            assert float(got) == want  # the exact number, not the displayed one
    assert f'data-value="{ttq.network.energy.ttq_dense.total_uJ!r}"' in html
    assert f'data-value="{fp.network.energy.fp32_dense.total_uJ!r}"' in html
    assert ">38.53<" in html  # displayed with the table's format


def test_summary_text(ttq, fp):
    text = summary_text([("ResNet-20 TTQ", ttq), ("ResNet-20 FP", fp)])
    assert "ResNet-20 TTQ" in text and "ResNet-20 FP" in text
    assert "85.98" in text and "38.53" in text and "187.88" in text and "4.88x" in text
    assert "horowitz45" in text
    # with the real FP baseline the terminal shows Table 3's pairing, not the network dict's
    paired = summary_text([("ResNet-20", ttq)], {"ResNet-20": fp})
    want = fp.network.energy.fp32_measured.total_uJ / ttq.network.energy.ttq_measured.total_uJ
    assert f"{want:.2f}x" in paired and "87.74" in paired


# ----------------------------------------------------------------------------- dense assumption

def _net_analysis(ternary: bool, dense: float, measured: float, dc: float, mc: float) -> Analysis:
    s = "ttq" if ternary else "fp32"
    net = {"ternary": ternary, "images": 500, "act_sparsity_macs_weighted": 0.5,
           f"{s}_dense_total_uJ": dense, f"{s}_measured_total_uJ": measured,
           f"{s}_dense_compute_uJ": dc, f"{s}_measured_compute_uJ": mc}
    return Analysis(pd.DataFrame(), NetworkResult.from_flat_dict(net), {}, {})


def test_dense_assumption_by_hand():
    from reports.tables import dense_assumption
    # ternary: 40 µJ dense vs 20 µJ measured (compute 36 vs 16): 2.00x, compute 2.25x
    d = dense_assumption(_net_analysis(True, 40.0, 20.0, 36.0, 16.0))
    assert d["scenario"] == "ttq" and d["ratio"] == 2.0 and d["compute_ratio"] == 2.25
    assert not d["holds"]
    assert "overstates its energy 2.00× (+100.0%; compute alone 2.25×)" in d["statement"]
    assert "does not hold" in d["statement"] and "500 images" in d["statement"]
    # FP: 10.5 vs 10 µJ is within the 10 % tolerance
    d = dense_assumption(_net_analysis(False, 10.5, 10.0, 9.5, 9.0))
    assert d["scenario"] == "fp32" and d["holds"] and d["ratio"] == pytest.approx(1.05)
    assert "holds for this network" in d["statement"]
    # nothing measured: no statement
    assert dense_assumption(_net_analysis(True, 40.0, None, 36.0, None)) is None


def test_dense_assumption_on_the_real_resnet20(ttq, fp):
    from reports.tables import dense_assumption
    d = dense_assumption(ttq)
    assert d["ratio"] == pytest.approx(ttq.network.energy.ttq_dense.total_uJ
                                       / ttq.network.energy.ttq_measured.total_uJ, rel=1e-12)
    text = summary_text([(LABEL, ttq)], {LABEL: fp})
    assert f"Dense-activation assumption, {LABEL}: dense / measured = {d['ratio']:.2f}x" in text


def test_run_description_states_data_schedule_and_hardware(ttq):
    from reports.tables import run_description
    text = run_description(ttq)
    cfg = ttq.meta["checkpoint"]["train_config"]
    for fact in ("TTQ training of resnet20 on cifar10", "50,000 training images",
                 "tested on 10,000 images", f"40 of {cfg['epochs']} epochs", "batch 128",
                 "peak LR 0.01", "cosine schedule", "NVIDIA H200", "latent-gradient scaling on"):
        assert fact in text
    bare = Analysis(pd.DataFrame(), NetworkResult.from_flat_dict({}), {"checkpoint": {"source": "x.th"}}, {})
    assert run_description(bare) is None


def test_run_description_names_the_process_count(ttq):
    from reports.tables import run_description
    meta = copy.deepcopy(ttq.meta)
    meta["checkpoint"]["distributed"] = {"world_size": 2}
    text = run_description(Analysis(ttq.layers, ttq.network, meta, {}))
    assert "NVIDIA H200 × 2 processes" in text
