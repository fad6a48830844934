"""The method axis of ttq-sweep: setting grammar, replicates, the training config it
builds, and the ranking of methods across hardware scenarios (energies by hand)."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from reports.comparison import SweepEntry
from reports.method_ranking import method_points, ranking_findings, ranking_table, ttq_finding
from reports.sweep import _train_config, build_parser, parse_setting, settings_from_args
from ttq_core.errors import ConfigError


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["--init", "fp.pt", "--out", "x", *argv])


def test_method_settings_and_seeds():
    settings = settings_from_args(_args("--methods", "fp", "ttq", "twn", "bwn", "int4", "int8",
                                        "--seeds", "0", "1"))
    assert [s.label for s in settings[:4]] == ["fp (seed=0)", "fp (seed=1)", "ttq (seed=0)",
                                               "ttq (seed=1)"]
    assert len(settings) == 12
    # replicates of one method share a replicate key, different methods do not
    assert settings[0].replicate_key == settings[1].replicate_key != settings[2].replicate_key
    # a setting naming its own seed is not replicated
    own = settings_from_args(_args("--setting", "method=twn,seed=5", "--seeds", "0", "1"))
    assert [s.overrides["seed"] for s in own] == [5]


@pytest.mark.parametrize("spec, message", [
    ("method=ternary", "unknown method 'ternary'"),
    ("method=twn,ste", "ste only apply to TTQ"),
    ("method=int4,scale-init=one", "scale-init only apply to TTQ"),
])
def test_bad_method_settings_are_one_line_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_setting(spec)


def test_ttq_method_keeps_ttq_options():
    s = parse_setting("method=ttq,ste,scale-init=least-squares")
    assert not s.grad_scaling and s.overrides == {"scale_init": "least-squares"}


def test_train_config_per_method(tmp_path: Path):
    args = _args("--methods", "fp", "int4", "--epochs", "3")
    args.arch_name = "resnet20"
    fp, int4 = settings_from_args(args)
    cfg = _train_config(args, int4, tmp_path / "a", None)
    assert (cfg.mode, cfg.quantizer, cfg.epochs) == ("ttq", "int4", 3)
    cfg = _train_config(args, fp, tmp_path / "b", None)
    # the FP fine-tune gets the quantized runs' recipe, not FP-from-scratch defaults
    resolved = cfg.resolved()
    assert (cfg.mode, resolved.lr, resolved.weight_decay, resolved.warmup_epochs) == \
        ("fp", 0.1, 2e-4, 0)


# ----------------------------------------------------------------------------- ranking

def _layers(fmt: str, **counts) -> pd.DataFrame:
    """A one-layer table with the columns energy_columns reads."""
    row = {"ternary": fmt == "ternary", "weight_format": fmt, "macs": 1000.0,
           "ternary_adds": float("nan"), "ternary_mults": float("nan"),
           "effective_adds": float("nan"), "effective_mults": float("nan"),
           "effective_macs": 600.0, "fp_weight_bits": 3200.0, "weight_bits": 3200.0,
           "in_elements": 100.0, "out_elements": 100.0, "act_sparsity": 0.5,
           "out_act_sparsity": 0.0}
    row.update(counts)
    return pd.DataFrame([row])


def _entry(label: str, method: str, layers: pd.DataFrame, acc: float) -> SweepEntry:
    analysis = SimpleNamespace(layers=layers, meta={"images": 10_000})
    return SweepEntry(label, "", analysis, [{"test_acc": acc - 0.01}, {"test_acc": acc}],
                      extra={"method": method})


def test_ranking_energies_and_front_by_hand():
    fp = _layers("fp")
    tern = _layers("ternary", ternary_adds=900.0, ternary_mults=20.0, effective_adds=500.0,
                   effective_mults=20.0, weight_bits=264.0)
    entries = [_entry("fp (seed=0)", "fp", fp, 0.90), _entry("fp (seed=1)", "fp", fp, 0.92),
               _entry("ttq (seed=0)", "ttq", tern, 0.86)]
    points = method_points(entries)
    assert [p.label for p in points] == ["fp", "ttq"]
    assert points[0].accuracy == pytest.approx(0.91)  # mean of the two seeds' best epochs
    table = ranking_table(points, "horowitz45")
    assert len(table.df) == 36
    df = table.df.set_index(["activations", "weight_memory", "act_memory", "act_mode"])
    # horowitz45, fp32, weights in SRAM (5 pJ / 32 bits), no activation memory, dense:
    # fp:  1000 MACs x (3.7 + 0.9) + 3200 bits x 5/32 = 4600 + 500 = 5100 pJ
    # ttq: 900 adds x 0.9 + 20 mults x 3.7 + 264 bits x 5/32 = 810 + 74 + 41.25 = 925.25 pJ
    row = df.loc[("fp32", "sram", "none", "dense")]
    assert row["fp_uJ"] == pytest.approx(5100e-6)
    assert row["ttq_uJ"] == pytest.approx(925.25e-6)
    # int8 activations, weights in DRAM (640 pJ / 32 bits), measured:
    # fp:  600 x (0.2 + 0.1) + 3200 x 8/32 x 20 = 180 + 16000 = 16180 pJ
    # ttq: 500 x 0.1 (int32 add) + 20 x 0.2 + 264 x 20 = 50 + 4 + 5280 = 5334 pJ
    row = df.loc[("int8", "dram", "none", "measured")]
    assert row["fp_uJ"] == pytest.approx(16180e-6)
    assert row["ttq_uJ"] == pytest.approx(5334e-6)
    # ttq is cheaper everywhere but fp is more accurate: both on every front
    assert set(table.df["cheapest"]) == {"ttq"}
    assert set(table.df["front"]) == {"ttq < fp"}
    sentences = ranking_findings(points, table)
    assert sentences[0] == ("Method front across the hardware scenarios (cheapest first): "
                            "ttq < fp in 36 of 36.")
    assert "none of the factors" in sentences[2]
    answer = ttq_finding(points, table, 10_000)
    # 0.86 - 0.91 = -5 points; se = hypot(sqrt(.86*.14/1e4), sqrt(.91*.09/1e4))
    #   = hypot(0.003470, 0.002862) = 0.004498 -> 2 se = 0.90 points
    # fp/ttq energy in the default scenario (fp32, SRAM, none, measured):
    # fp 600 x 4.6 + 500 = 3260 pJ, ttq 500 x 0.9 + 20 x 3.7 + 41.25 = 565.25 pJ -> 5.77x
    assert "fp 91.00% at 5.77× TTQ's energy (TTQ minus fp: -5.00 points, beyond ±0.90)" in answer


# ----------------------------------------------------------------------------- figures

@pytest.mark.parametrize("method", ["bwn", "int4"])
def test_energy_figure_draws_the_quantized_network(method):
    """A BWN or INT4 network's energy-by-layer figure draws its own (quantized) energy,
    not the FP32 twin's: the drawn bars sum to the network's ttq_dense total (no data
    analysed), which differs from the fp32_dense total."""
    import matplotlib.pyplot as plt
    import numpy as np

    from reports.figures import energy_by_layer
    from ttq_analysis import analyze
    from ttq_core.models import build_model
    from ttq_core.quantize import ternarize
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = ternarize(build_model("resnet20"), method=method)
    a = analyze(model, data=None, arch="resnet20", progress=False, device="cpu")
    spec = energy_by_layer(a, "ttq_dense")
    try:
        assert "quantized network" in spec.caption and "FP32 network" not in spec.caption
        bars = [p.get_height() for p in spec.fig.axes[0].patches]
        own = a.layers["ttq_dense_compute_pJ"] + a.layers["ttq_dense_memory_pJ"]
        fp = a.layers["fp32_dense_compute_pJ"] + a.layers["fp32_dense_memory_pJ"]
        assert not np.isclose(own.sum(), fp.sum())
        # stacked compute + memory bars, drawn in pJ, nJ or µJ: their sum is the total
        assert min(abs(sum(bars) - own.sum() / u) for u in (1, 1e3, 1e6)) < 1e-6 * own.sum()
    finally:
        plt.close(spec.fig)
