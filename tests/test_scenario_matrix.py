"""The scenario matrix: the saving under every combination of hardware assumptions.

Expected figures are hand calculations from the Horowitz (ISSCC 2014) numbers restated in
ARCHITECTURE.md (int8 mult 0.2, int32 add 0.1, fp32 add 0.9 / mult 3.7, SRAM 5 pJ and
DRAM 640 pJ per 32-bit word) on the two-layer table of ``tests/test_energy.py``.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ttq_analysis.scenario_matrix import (FACTORS, MATRIX_COLUMNS, describe_scenario,
                                          scenario_matrix, summarize)
from tests.test_energy import with_activations


def row(matrix, **where):
    sel = matrix
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, where
    return sel.iloc[0]


def test_matrix_shape_and_columns():
    m = scenario_matrix(with_activations(), ["horowitz45", "jouppi7"])
    assert list(m.columns) == list(MATRIX_COLUMNS)
    assert len(m) == 2 * 3 * 2 * 3 * 2   # models x precisions x weight memory x act memory x modes
    assert not m.duplicated(list(FACTORS)).any()


def test_default_scenario_is_the_original_saving():
    m = scenario_matrix(with_activations(), ["horowitz45"])
    r = row(m, activations="fp32", weight_memory="sram", act_memory="none", act_mode="dense")
    # test_energy.test_totals_by_hand: FP32 15,300 pJ, TTQ 6,670.5 pJ
    assert r["fp_total_uJ"] == pytest.approx(15300e-6)
    assert r["ttq_total_uJ"] == pytest.approx(6670.5e-6)
    assert r["saving"] == pytest.approx(15300 / 6670.5)


def test_int8_with_activation_memory_by_hand():
    m = scenario_matrix(with_activations(), ["horowitz45"])
    r = row(m, activations="int8", weight_memory="sram", act_memory="sram", act_mode="dense")
    fp_compute = 1000 * 0.3 + 2000 * 0.3                      # 900
    fp_weights = 100 * 8 * 5 / 32 + 200 * 8 * 5 / 32          # 375
    act = (1024 + 2048 + 2048 + 2048) * 8 * 5 / 32            # 8,960
    tq_compute = 1000 * 0.3 + 1500 * 0.1 + 40 * 0.2           # 458
    tq_weights = 125 + (2 * 200 + 64) * 5 / 32                # 197.5
    assert r["fp_compute_uJ"] == pytest.approx(fp_compute / 1e6)
    assert r["fp_weight_memory_uJ"] == pytest.approx(fp_weights / 1e6)
    assert r["fp_act_memory_uJ"] == pytest.approx(act / 1e6)
    assert r["ttq_act_memory_uJ"] == pytest.approx(act / 1e6)
    assert r["ttq_total_uJ"] == pytest.approx((tq_compute + tq_weights + act) / 1e6)
    assert r["saving"] == pytest.approx((fp_compute + fp_weights + act) / (tq_compute + tq_weights + act))
    # the parts sum to the total
    for side in ("fp", "ttq"):
        assert r[f"{side}_total_uJ"] == pytest.approx(
            r[f"{side}_compute_uJ"] + r[f"{side}_weight_memory_uJ"] + r[f"{side}_act_memory_uJ"])


def test_baseline_layers_give_the_fp_side():
    fp = with_activations(ternary=[False, False], weight_bits=[3200, 6400], macs=[1000, 4000])
    m = scenario_matrix(with_activations(), ["horowitz45"], baseline_layers=fp)
    r = row(m, activations="fp32", weight_memory="sram", act_memory="none", act_mode="dense")
    assert r["fp_total_uJ"] == pytest.approx((5000 * 4.6 + 9600 * 5 / 32) / 1e6)   # 24,500 pJ
    assert r["ttq_total_uJ"] == pytest.approx(6670.5e-6)


def test_fp_network_is_refused():
    with pytest.raises(ValueError, match="no ternary layer"):
        scenario_matrix(with_activations(ternary=[False, False]), ["horowitz45"])


def test_old_layer_table_leaves_activation_memory_rows_empty():
    old = with_activations().drop(columns=["in_elements", "out_elements", "out_act_sparsity"])
    m = scenario_matrix(old, ["horowitz45"])
    assert m[m["act_memory"] != "none"]["saving"].isna().all()
    assert m[m["act_memory"] == "none"]["saving"].notna().all()


def test_summary_range_and_strongest_assumption():
    base = {"energy_model": "m", "weight_memory": "sram", "act_memory": "none"}
    savings = {("fp32", "dense"): 4.0, ("fp32", "measured"): 8.0,
               ("int8", "dense"): 2.0, ("int8", "measured"): 3.0}
    m = pd.DataFrame([{**base, "activations": a, "act_mode": mode, "saving": s}
                      for (a, mode), s in savings.items()])
    s = summarize(m)
    assert s.scenarios == 4
    assert (s.lowest["activations"], s.lowest["act_mode"], s.lowest["saving"]) == ("int8", "dense", 2.0)
    assert (s.highest["activations"], s.highest["act_mode"]) == ("fp32", "measured")
    # activations: dense 4/2 = 2, measured 8/3; median 7/3.  act_mode: 8/4 = 2, 3/2; median 1.75
    assert s.effects == pytest.approx({"activations": 7 / 3, "act_mode": 1.75})
    assert s.strongest == "activations"
    assert summarize(m.assign(saving=math.nan)) is None


def test_describe_scenario():
    text = describe_scenario({"activations": "int8", "weight_memory": "dram", "act_memory": "none",
                              "act_mode": "measured", "energy_model": "jouppi7"})
    assert text == "int8 activations, weights in DRAM, activation traffic not counted, measured, jouppi7"
