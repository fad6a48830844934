"""The typed network result: the one saving definition, by hand."""

from __future__ import annotations

import math

import pytest

from ttq_analysis.results import (EnergyTotals, NetworkResult, ScenarioEnergy, energy_saving,
                                  savings_over)


def test_energy_saving_by_hand():
    assert energy_saving(10.0, 4.0) == 2.5
    for fp, tq in [(None, 4.0), (10.0, None), (math.nan, 4.0), (10.0, 0.0), (0.0, 4.0)]:
        assert energy_saving(fp, tq) is None


def _net(ternary: bool, fp_dense: float, fp_meas: float, tq_dense=None, tq_meas=None):
    flat = {"ternary": ternary, "macs": 1.0, "fp_layer_macs": 0.0, "weight_bits": 2.0,
            "fp_weight_bits": 32.0, "fp32_dense_total_uJ": fp_dense,
            "fp32_measured_total_uJ": fp_meas, "ttq_dense_total_uJ": tq_dense,
            "ttq_measured_total_uJ": tq_meas}
    return NetworkResult.from_flat_dict(flat)


def test_savings_over_a_baseline_and_over_the_own_twin():
    fp = _net(False, 100.0, 40.0)
    tq = _net(True, 90.0, 50.0, tq_dense=20.0, tq_meas=8.0)
    # over the real FP model: its FP32 energy (100, 40) over the TTQ energy (20, 8)
    assert savings_over(fp, tq, "dense").saving == 5.0
    assert savings_over(fp, tq, "measured").saving == 5.0
    # over the twin: the ternary network's own FP32 count (90, 50)
    assert tq.saving("dense") == 4.5 and tq.saving("measured") == 6.25
    assert fp.saving("dense") is None          # an FP network has no TTQ energy
    assert tq.sizes.compression == 16.0
    with pytest.raises(ValueError):
        tq.energy.scenario("int8", "dense")


def test_energy_totals_from_pJ_sums():
    totals = {f"{p}_{a}_{part}_pJ": 1e6 * i for i, (p, a, part) in enumerate(
        (p, a, part) for p in ("fp32", "ttq") for a in ("dense", "measured")
        for part in ("compute", "memory", "total"))}
    totals["ttq_measured_total_pJ"] = math.nan      # a layer without a measured value
    e = EnergyTotals.from_pJ(totals)
    assert e.fp32_dense == ScenarioEnergy(0.0, 1.0, 2.0)
    assert e.ttq_dense.total_uJ == 8.0 and e.ttq_measured.total_uJ is None
