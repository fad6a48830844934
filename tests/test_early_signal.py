"""Rank correlations of early against final per-layer history values
(ttq_analysis.early_signal), checked against hand-computed values."""

import math

import pytest

from ttq_analysis.early_signal import early_vs_final, ranks, spearman, trend_vs


def test_spearman_by_hand():
    # no ties: d = (0, 1, 1, 0), rho = 1 - 6·2 / (4·15) = 0.8
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    # a tie: ranks (1.5, 1.5, 3, 4) vs (1, 2, 3, 4): 4.5 / sqrt(4.5·5)
    assert ranks([1, 1, 2, 3]).tolist() == [1.5, 1.5, 3, 4]
    assert spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))          # constant side
    assert math.isnan(spearman([1, 2, math.nan], [1, 2, 3]))  # < 3 pairs after NaN


def _history():
    """Three layers over 6 epochs: after epoch 1 the zero fractions rank a < b < c, after
    epoch 2 b < a < c, and from epoch 5 on c < b < a (reversed)."""
    z = {1: (0.1, 0.2, 0.3), 2: (0.2, 0.1, 0.3), 3: (0.3, 0.2, 0.1), 4: (0.3, 0.2, 0.1),
         5: (0.3, 0.2, 0.1), 6: (0.4, 0.3, 0.2)}
    return [{"epoch": e, "layers": {n: {"frac_zero": v, "wp": 1.0 + v, "wn": 1.0}
                                    for n, v in zip("abc", vals)}} for e, vals in z.items()]


def test_early_vs_final_by_hand():
    df = early_vs_final(_history(), keys=("frac_zero", "wn"), ks=(1, 2, 5, 6))
    rho = {(r.key, r.k): r.rho for r in df.itertuples()}
    assert rho[("frac_zero", 1)] == pytest.approx(-1.0)   # fully reversed
    assert rho[("frac_zero", 2)] == pytest.approx(-0.5)   # ranks (2,1,3) vs (3,2,1): 1 - 6·6/24
    assert rho[("frac_zero", 5)] == pytest.approx(1.0)
    assert ("frac_zero", 6) not in rho                    # k must precede the last epoch
    assert math.isnan(rho[("wn", 1)])                     # wn constant across layers
    assert set(df["final_epoch"]) == {6} and set(df["layers"]) == {3}


def test_trend_vs_sensitivity_by_hand():
    # trend 1 -> 5: a +0.2, b 0, c -0.2; sensitivity a > b > c: rho(trend) = 1,
    # rho(at epoch 1) = -1 (a sparsest last), rho(final) = +1
    t = trend_vs(_history(), {"a": 3.0, "b": 2.0, "c": 1.0})
    assert t["trend"] == pytest.approx(1.0)
    assert t["at_start"] == pytest.approx(-1.0)
    assert t["at_end"] == pytest.approx(1.0) and t["final"] == pytest.approx(1.0)
    assert t["layers"] == 3


def test_report_sentence_states_this_runs_rho():
    from reports.epoch_tradeoff import early_sentence
    s = early_sentence(_history())
    assert "ρ = -1.00 after epoch 1, -0.50 after epoch 2, 1.00 after epoch 5 (3 layers)" in s
    assert "epoch-6 ranking" in s
    assert early_sentence([]) is None
