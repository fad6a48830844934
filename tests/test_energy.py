"""Energy cost models (data files with citations) and per-layer energy per scenario.

Expected figures are worked out by hand below from the Horowitz (ISSCC 2014) table restated in ARCHITECTURE.md,
never copied from the code's output.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ttq_analysis.energy import (
    ENERGY_COLUMNS,
    SCENARIOS,
    EnergyModel,
    EnergyModelError,
    available_energy_models,
    describe,
    energy_columns,
    load_energy_model,
    scenario_totals,
)
from ttq_core.errors import ConfigError, TTQError

NAN = float("nan")

# ARCHITECTURE.md, "Reference figures": energy per operation at 45 nm (Horowitz, ISSCC 2014), pJ.
FP32_ADD, FP32_MULT = 0.9, 3.7
SRAM_BIT, DRAM_BIT = 5.0 / 32, 640.0 / 32


# ----------------------------------------------------------------------------- shipped model

def test_horowitz45_is_shipped_and_matches_the_guide():
    assert "horowitz45" in available_energy_models()
    model = load_energy_model("horowitz45")
    assert model.name == "horowitz45"
    assert model.ops_pJ == {
        "fp32_add": 0.9, "fp32_mult": 3.7, "fp16_add": 0.4, "fp16_mult": 1.1,
        "int8_add": 0.03, "int8_mult": 0.2, "int32_add": 0.1, "int32_mult": 3.1,
    }
    assert model.op("fp32_add") == 0.9 and model.op("fp32_mult") == 3.7
    assert model.memory_pJ_per_bit == {"sram": 5 / 32, "dram": 640 / 32}
    assert {size: spec["pJ"] for size, spec in model.raw["cache_pJ_per_64bit"].items()} == {
        "8KB": 10, "32KB": 20, "1MB": 100}


def test_every_number_has_a_source():
    model = load_energy_model("horowitz45")
    expected = ({f"ops.{op}" for op in model.ops_pJ} | {"memory.sram", "memory.dram"}
                | {"cache_pJ_per_64bit.8KB", "cache_pJ_per_64bit.32KB", "cache_pJ_per_64bit.1MB"})
    assert set(model.sources) == expected
    for key, source in model.sources.items():
        assert isinstance(source, str) and len(source) > 20, key
    assert "Horowitz" in model.sources["ops.fp32_add"] and "ISSCC 2014" in model.sources["ops.fp32_add"]
    assert "Han" in model.sources["memory.dram"]


def test_raw_is_json_and_round_trips(tmp_path):
    model = load_energy_model("horowitz45")
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(model.raw))
    again = load_energy_model(path)
    assert again.ops_pJ == model.ops_pJ and again.memory_pJ_per_bit == model.memory_pJ_per_bit
    assert again.sources == model.sources and again.raw == model.raw


def test_load_passes_a_model_through():
    model = load_energy_model("horowitz45")
    assert load_energy_model(model) is model


def test_unknown_operation_lists_known_ones():
    model = load_energy_model("horowitz45")
    with pytest.raises(EnergyModelError, match=r"unknown operation 'fp64_add'.*fp32_add"):
        model.op("fp64_add")


def test_describe_rows():
    rows = describe("horowitz45")
    assert all(set(row) == {"quantity", "value", "unit", "source"} for row in rows)
    by_quantity = {row["quantity"]: row for row in rows}
    assert by_quantity["fp32 mult"]["value"] == 3.7
    assert by_quantity["SRAM read, 32-bit word"]["value"] == pytest.approx(5.0)
    assert by_quantity["DRAM read, 32-bit word"]["value"] == pytest.approx(640.0)
    assert all(row["source"] for row in rows)
    assert len(rows) == 8 + 2 + 3


# ----------------------------------------------------------------------------- energy by hand

def two_layer_network(**overrides) -> pd.DataFrame:
    """Layer A: full precision, 100 weights.  Layer B: ternary, 200 weights."""
    table = pd.DataFrame(
        {
            "ternary": [False, True],
            "macs": [1000, 2000],
            "ternary_adds": [NAN, 1500],
            "ternary_mults": [NAN, 40],
            "effective_adds": [NAN, 700],
            "effective_mults": [NAN, 30],
            "effective_macs": [600, 1200],
            "fp_weight_bits": [32 * 100, 32 * 200],
            "weight_bits": [32 * 100, 2 * 200 + 64],
        },
        index=["conv1", "layer1.0.conv1"],
    )
    for column, values in overrides.items():
        table[column] = values
    return table


# Per layer, SRAM (5/32 pJ per bit), fp32 (add 0.9, mult 3.7, one MAC = 4.6 pJ):
EXPECTED_SRAM = {
    "conv1": {
        "fp32_dense_compute_pJ": 1000 * (3.7 + 0.9),         # 4600
        "fp32_dense_memory_pJ": 3200 * 5 / 32,               # 500
        "fp32_dense_total_pJ": 4600 + 500,                   # 5100
        "fp32_measured_compute_pJ": 600 * (3.7 + 0.9),       # 2760
        "fp32_measured_memory_pJ": 3200 * 5 / 32,            # 500
        "fp32_measured_total_pJ": 2760 + 500,                # 3260
        "ttq_dense_compute_pJ": 1000 * (3.7 + 0.9),          # FP layer counts as FP32: 4600
        "ttq_dense_memory_pJ": 3200 * 5 / 32,                # 32 bits per weight: 500
        "ttq_dense_total_pJ": 4600 + 500,                    # 5100
        "ttq_measured_compute_pJ": 600 * (3.7 + 0.9),        # 2760
        "ttq_measured_memory_pJ": 3200 * 5 / 32,             # 500
        "ttq_measured_total_pJ": 2760 + 500,                 # 3260
    },
    "layer1.0.conv1": {
        "fp32_dense_compute_pJ": 2000 * (3.7 + 0.9),         # 9200
        "fp32_dense_memory_pJ": 6400 * 5 / 32,               # 1000
        "fp32_dense_total_pJ": 9200 + 1000,                  # 10200
        "fp32_measured_compute_pJ": 1200 * (3.7 + 0.9),      # 5520
        "fp32_measured_memory_pJ": 6400 * 5 / 32,            # 1000
        "fp32_measured_total_pJ": 5520 + 1000,               # 6520
        "ttq_dense_compute_pJ": 1500 * 0.9 + 40 * 3.7,       # 1350 + 148 = 1498
        "ttq_dense_memory_pJ": 464 * 5 / 32,                 # 72.5
        "ttq_dense_total_pJ": 1498 + 72.5,                   # 1570.5
        "ttq_measured_compute_pJ": 700 * 0.9 + 30 * 3.7,     # 630 + 111 = 741
        "ttq_measured_memory_pJ": 464 * 5 / 32,              # 72.5
        "ttq_measured_total_pJ": 741 + 72.5,                 # 813.5
    },
}


def test_columns_and_index():
    energy = energy_columns(two_layer_network(), load_energy_model("horowitz45"))
    assert list(energy.index) == ["conv1", "layer1.0.conv1"]
    assert list(energy.columns) == [f"{s}_{p}_pJ" for s in SCENARIOS
                                    for p in ("compute", "memory", "act_memory", "total")]
    assert tuple(energy.columns) == ENERGY_COLUMNS


def test_two_layer_network_by_hand_sram():
    energy = energy_columns(two_layer_network(), "horowitz45", memory="sram")
    for layer, expected in EXPECTED_SRAM.items():
        for column, value in expected.items():
            assert energy.loc[layer, column] == pytest.approx(value), (layer, column)


def test_totals_by_hand():
    totals = scenario_totals(energy_columns(two_layer_network(), "horowitz45"))
    assert set(totals) == set(ENERGY_COLUMNS)
    assert totals["fp32_dense_total_pJ"] == pytest.approx(5100 + 10200)       # 15300
    assert totals["fp32_measured_total_pJ"] == pytest.approx(3260 + 6520)     # 9780
    assert totals["ttq_dense_compute_pJ"] == pytest.approx(4600 + 1498)       # 6098
    assert totals["ttq_dense_memory_pJ"] == pytest.approx(500 + 72.5)         # 572.5
    assert totals["ttq_dense_total_pJ"] == pytest.approx(5100 + 1570.5)       # 6670.5
    assert totals["ttq_measured_total_pJ"] == pytest.approx(3260 + 813.5)     # 4073.5
    assert all(isinstance(v, float) for v in totals.values())


def test_dram_memory_by_hand():
    energy = energy_columns(two_layer_network(), "horowitz45", memory="dram")
    # ternary layer: (2 x 200 + 64) bits x 640/32 pJ per bit = 464 x 20
    assert energy.loc["layer1.0.conv1", "ttq_dense_memory_pJ"] == pytest.approx(9280)
    # FP32 twin of it: 6400 bits x 20 = 128000; compute unchanged by the memory level
    assert energy.loc["layer1.0.conv1", "fp32_dense_memory_pJ"] == pytest.approx(128000)
    assert energy.loc["layer1.0.conv1", "ttq_dense_total_pJ"] == pytest.approx(1498 + 9280)


def test_fp16_precision_uses_fp16_ops():
    energy = energy_columns(two_layer_network(), "horowitz45", precision="fp16")
    assert energy.loc["conv1", "fp32_dense_compute_pJ"] == pytest.approx(1000 * (1.1 + 0.4))
    assert energy.loc["layer1.0.conv1", "ttq_dense_compute_pJ"] == pytest.approx(1500 * 0.4 + 40 * 1.1)


def test_fp_only_network_has_no_ttq_energy():
    fp = two_layer_network(ternary=[False, False], ternary_adds=[NAN, NAN], ternary_mults=[NAN, NAN],
                           effective_adds=[NAN, NAN], effective_mults=[NAN, NAN],
                           weight_bits=[3200, 6400])
    energy = energy_columns(fp, "horowitz45")
    for scenario in ("ttq_dense", "ttq_measured"):
        for part in ("compute", "memory", "total"):
            assert energy[f"{scenario}_{part}_pJ"].isna().all()
    assert energy.loc["layer1.0.conv1", "fp32_dense_total_pJ"] == pytest.approx(9200 + 1000)
    totals = scenario_totals(energy)
    assert math.isnan(totals["ttq_dense_total_pJ"])
    assert totals["fp32_dense_total_pJ"] == pytest.approx(15300)


def test_without_data_measured_columns_are_nan():
    no_data = two_layer_network(effective_adds=[NAN, NAN], effective_mults=[NAN, NAN],
                                effective_macs=[NAN, NAN])
    energy = energy_columns(no_data, "horowitz45")
    for scenario in ("fp32_measured", "ttq_measured"):
        assert energy[f"{scenario}_compute_pJ"].isna().all()
        assert energy[f"{scenario}_total_pJ"].isna().all()
    for scenario in ("fp32_dense", "ttq_dense"):
        assert np.isfinite(energy[[f"{scenario}_{p}_pJ" for p in ("compute", "memory", "total")]]).all().all()
    totals = scenario_totals(energy)
    assert math.isnan(totals["ttq_measured_total_pJ"])
    assert totals["ttq_dense_total_pJ"] == pytest.approx(6670.5)


def test_one_missing_layer_makes_the_total_nan():
    partial = two_layer_network(effective_macs=[600, NAN])
    totals = scenario_totals(energy_columns(partial, "horowitz45"))
    assert math.isnan(totals["fp32_measured_total_pJ"])


def test_unknown_memory_level():
    with pytest.raises(EnergyModelError, match=r"unknown memory level 'l2'.*sram, dram") as info:
        energy_columns(two_layer_network(), "horowitz45", memory="l2")
    assert "\n" not in str(info.value)


def test_unknown_precision():
    with pytest.raises(EnergyModelError, match=r"unknown activation precision 'bf16'; choose one of: fp32, fp16, int8"):
        energy_columns(two_layer_network(), "horowitz45", precision="bf16")


def test_missing_layer_column():
    with pytest.raises(ValueError, match="effective_macs"):
        energy_columns(two_layer_network().drop(columns="effective_macs"), "horowitz45")


# ----------------------------------------------------------------------------- user files

def valid_model() -> dict:
    return {
        "name": "mine",
        "description": "test model",
        "ops": {
            "fp32_add": {"pJ": 1.0, "source": "my lab's measurement, report 7"},
            "fp32_mult": {"pJ": 4.0, "source": "my lab's measurement, report 7"},
        },
        "memory": {
            "sram": {"pJ_per_32bit": 8.0, "source": "my lab's measurement, report 7"},
            "dram": {"pJ_per_32bit": 320.0, "source": "my lab's measurement, report 7"},
        },
    }


def write_json(tmp_path, data, name="my.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_user_json_file_loads(tmp_path):
    model = load_energy_model(write_json(tmp_path, valid_model()))
    assert model.name == "mine"
    assert model.ops_pJ == {"fp32_add": 1.0, "fp32_mult": 4.0}
    assert model.memory_pJ_per_bit == {"sram": 8 / 32, "dram": 320 / 32}
    # the same file given as a string path
    assert load_energy_model(str(tmp_path / "my.json")).name == "mine"
    energy = energy_columns(two_layer_network(), model)
    assert energy.loc["conv1", "fp32_dense_total_pJ"] == pytest.approx(1000 * (4 + 1) + 3200 * 8 / 32)


def test_user_toml_file_loads(tmp_path):
    path = tmp_path / "my.toml"
    path.write_text(
        'name = "mine-toml"\n'
        'description = "toml test"\n'
        '[ops.fp32_add]\npJ = 1.0\nsource = "datasheet p. 3"\n'
        '[ops.fp32_mult]\npJ = 4\nsource = "datasheet p. 3"\n'
        '[memory.sram]\npJ_per_32bit = 8.0\nsource = "datasheet p. 4"\n'
        '[memory.dram]\npJ_per_32bit = 320.0\nsource = "datasheet p. 4"\n'
    )
    model = load_energy_model(path)
    assert isinstance(model, EnergyModel)
    assert model.name == "mine-toml"
    assert model.ops_pJ == {"fp32_add": 1.0, "fp32_mult": 4.0}
    assert model.memory_pJ_per_bit["dram"] == 10.0
    assert model.sources["memory.sram"] == "datasheet p. 4"


def broken(mutate):
    data = valid_model()
    mutate(data)
    return data


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda d: d.pop("ops"), r"my\.json: ops must be a non-empty table"),
        (lambda d: d["ops"]["fp32_add"].update(pJ=-0.9),
         r"my\.json: ops\.fp32_add\.pJ must be a positive number, got -0\.9"),
        (lambda d: d["ops"]["fp32_add"].update(pJ="abc"),
         r"my\.json: ops\.fp32_add\.pJ must be a positive number, got 'abc'"),
        (lambda d: d["ops"]["fp32_mult"].update(pJ=True),
         r"my\.json: ops\.fp32_mult\.pJ must be a positive number, got True"),
        (lambda d: d["ops"]["fp32_add"].update(pJ=0),
         r"ops\.fp32_add\.pJ must be a positive number, got 0"),
        (lambda d: d["ops"]["fp32_add"].pop("source"),
         r"my\.json: ops\.fp32_add\.source must be a non-empty citation"),
        (lambda d: d["memory"]["dram"].update(source="  "),
         r"memory\.dram\.source must be a non-empty citation"),
        (lambda d: d["memory"].pop("dram"), r"memory\.dram is missing"),
        (lambda d: d["ops"].pop("fp32_mult"), r"ops\.fp32_mult is missing"),
        (lambda d: d["memory"]["sram"].update(pJ_per_32bit=float("inf")),
         r"memory\.sram\.pJ_per_32bit must be a positive number, got inf"),
        (lambda d: d.pop("name"), r"name must be a non-empty string"),
        (lambda d: d.update(memroy={}), r"unknown field 'memroy'"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path, mutate, pattern):
    path = write_json(tmp_path, broken(mutate))
    with pytest.raises(EnergyModelError, match=pattern) as info:
        load_energy_model(path)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, TTQError)


def test_invalid_json_syntax(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x",\n "ops": {,}\n}')
    with pytest.raises(EnergyModelError, match=r"bad\.json: invalid JSON: .*line 2") as info:
        load_energy_model(path)
    assert "\n" not in str(info.value)


def test_invalid_toml_syntax(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[ops\n')
    with pytest.raises(EnergyModelError, match=r"bad\.toml: invalid TOML") as info:
        load_energy_model(path)
    assert "\n" not in str(info.value)


def test_unknown_name_lists_shipped_models():
    with pytest.raises(EnergyModelError, match=r"unknown energy model 'horowitz22'.*horowitz45.*\.json or \.toml"):
        load_energy_model("horowitz22")


def test_missing_file(tmp_path):
    with pytest.raises(EnergyModelError, match=r"nope\.json: file not found.*horowitz45"):
        load_energy_model(tmp_path / "nope.json")


def test_wrong_suffix(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("name: x\n")
    with pytest.raises(EnergyModelError, match=r"must end in \.json or \.toml"):
        load_energy_model(path)


# ----------------------------------------------------------------------------- activation
# precision and activation memory (issue 12).  Layer A: FP, reads 1,024 and writes 2,048
# activations, no zeros.  Layer B: ternary, reads 2,048 (half zero) and writes 2,048
# (a quarter zero).  horowitz45: int8 mult 0.2, int32 add 0.1, SRAM 5/32 pJ per bit.

def with_activations(**overrides) -> pd.DataFrame:
    return two_layer_network(**{"in_elements": [1024, 2048], "out_elements": [2048, 2048],
                                "act_sparsity": [0.0, 0.5], "out_act_sparsity": [0.0, 0.25],
                                **overrides})


def test_int8_arithmetic_and_weight_widths_by_hand():
    e = energy_columns(with_activations(), "horowitz45", precision="int8")
    # a MAC = int8 mult + int32 add = 0.3 pJ
    assert e.loc["conv1", "fp32_dense_compute_pJ"] == pytest.approx(1000 * 0.3)      # 300
    assert e.loc["conv1", "fp32_measured_compute_pJ"] == pytest.approx(600 * 0.3)    # 180
    # ternary: 1500 int32 additions + 40 Wp/Wn int8 multiplications
    assert e.loc["layer1.0.conv1", "ttq_dense_compute_pJ"] == pytest.approx(1500 * 0.1 + 40 * 0.2)
    assert e.loc["layer1.0.conv1", "ttq_measured_compute_pJ"] == pytest.approx(700 * 0.1 + 30 * 0.2)
    # the int8 baseline stores 8 bits per weight: 100 x 8 x 5/32 = 125 and 200 x 8 x 5/32 = 250
    assert e.loc["conv1", "fp32_dense_memory_pJ"] == pytest.approx(125)
    assert e.loc["layer1.0.conv1", "fp32_dense_memory_pJ"] == pytest.approx(250)
    # the ternary network: its FP layer at int8 too, the ternary one 2 bits + Wp/Wn
    assert e.loc["conv1", "ttq_dense_memory_pJ"] == pytest.approx(125)
    assert e.loc["layer1.0.conv1", "ttq_dense_memory_pJ"] == pytest.approx(464 * 5 / 32)  # 72.5
    # no activation memory by default
    assert (e[[f"{s}_act_memory_pJ" for s in SCENARIOS]] == 0).all().all()
    totals = scenario_totals(e)
    assert totals["fp32_dense_total_pJ"] == pytest.approx(300 + 125 + 2000 * 0.3 + 250)  # 1275
    assert totals["ttq_dense_total_pJ"] == pytest.approx(300 + 125 + 158 + 72.5)         # 655.5


def test_fp16_weights_are_stored_at_16_bits():
    e = energy_columns(with_activations(), "horowitz45", precision="fp16")
    assert e.loc["conv1", "fp32_dense_memory_pJ"] == pytest.approx(3200 / 2 * 5 / 32)  # 250
    assert e.loc["conv1", "ttq_dense_memory_pJ"] == pytest.approx(250)


def test_activation_memory_dense_and_zero_skipping_by_hand():
    e = energy_columns(with_activations(), "horowitz45", precision="int8", act_memory="sram")
    q = 5 / 32
    # dense: (in + out) x 8 bits x q
    assert e.loc["conv1", "ttq_dense_act_memory_pJ"] == pytest.approx(3072 * 8 * q)     # 3840
    assert e.loc["layer1.0.conv1", "fp32_dense_act_memory_pJ"] == pytest.approx(4096 * 8 * q)  # 5120
    # zero-skipping: 1 bit per element + 8 bits per nonzero
    assert e.loc["conv1", "ttq_measured_act_memory_pJ"] == pytest.approx(
        (1024 * 9 + 2048 * 9) * q)                                                       # 4320
    assert e.loc["layer1.0.conv1", "ttq_measured_act_memory_pJ"] == pytest.approx(
        (2048 * (1 + 0.5 * 8) + 2048 * (1 + 0.75 * 8)) * q)                              # 3840
    # the baseline and the ternary network share the activations
    assert e.loc["layer1.0.conv1", "fp32_measured_act_memory_pJ"] == pytest.approx(3840)
    # total = compute + weight memory + activation memory
    assert e.loc["layer1.0.conv1", "ttq_measured_total_pJ"] == pytest.approx(
        700 * 0.1 + 30 * 0.2 + 72.5 + 3840)
    dram = energy_columns(with_activations(), "horowitz45", precision="int8", act_memory="dram")
    assert dram.loc["conv1", "ttq_dense_act_memory_pJ"] == pytest.approx(3072 * 8 * 20)
    assert dram.loc["conv1", "ttq_dense_memory_pJ"] == pytest.approx(125)  # weights stay in SRAM


def test_activation_memory_unmeasured_is_nan_for_measured_scenarios():
    e = energy_columns(with_activations(act_sparsity=[NAN, NAN], out_act_sparsity=[NAN, NAN]),
                       "horowitz45", act_memory="sram")
    assert e["ttq_measured_act_memory_pJ"].isna().all()
    assert e.loc["conv1", "ttq_dense_act_memory_pJ"] == pytest.approx(3072 * 32 * 5 / 32)


def test_activation_memory_needs_the_element_counts():
    with pytest.raises(ValueError, match="in_elements"):
        energy_columns(two_layer_network(), "horowitz45", act_memory="sram")
    with pytest.raises(EnergyModelError, match=r"unknown activation memory 'l3'; choose one of: none, sram, dram"):
        energy_columns(with_activations(), "horowitz45", act_memory="l3")


def test_default_flags_reproduce_the_stored_energies_of_2026_11_27():
    """``tests/data/analysis_2026-11-27.json`` was written before activation precision and
    activation memory existed: recomputing its layers with the defaults gives its stored
    energies exactly, and the added activation-memory columns are zero."""
    from pathlib import Path

    from ttq_analysis import Analysis
    a = Analysis.from_json(Path(__file__).parent / "data" / "analysis_2026-11-27.json")
    assert a.meta["precision"] == "fp32" and a.meta["memory"] == "sram"
    e = energy_columns(a.layers, "horowitz45")
    old_columns = [f"{s}_{p}_pJ" for s in SCENARIOS for p in ("compute", "memory", "total")]
    pd.testing.assert_frame_equal(e[old_columns], a.layers[old_columns], check_exact=True)
    assert (e[[f"{s}_act_memory_pJ" for s in SCENARIOS]] == 0).all().all()


def test_an_embedded_model_dict_loads_and_is_validated():
    """``Analysis.meta["energy_model"]`` (a model's content) loads back to the same model;
    a damaged one is the usual one-line error."""
    raw = load_energy_model("horowitz45").raw
    again = load_energy_model(raw)
    assert again.ops_pJ["int8_mult"] == 0.2 and again.memory_pJ_per_bit["dram"] == 640 / 32
    broken = {**raw, "ops": {**raw["ops"], "fp32_add": {"pJ": -1, "source": "x"}}}
    with pytest.raises(EnergyModelError, match=r"ops\.fp32_add\.pJ must be a positive number") as info:
        load_energy_model(broken)
    assert "\n" not in str(info.value)
