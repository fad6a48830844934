"""reports.figures on the real ResNet-20 analyses (TTQ with 40 epochs of history, and FP)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import matplotlib.pyplot as plt  # only to check that no pyplot figure is ever opened
import numpy as np
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from reports import figures as F
from ttq_analysis.analysis import Analysis

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "h200-2026-11-26"
HISTORY_FIGURES = ("training_curves", "sparsity_evolution", "scales_evolution",
                   "gradient_multipliers")
ALL_NAMES = ["energy_by_layer", "sparsity_by_layer", "act_sparsity_distribution",
             "training_curves", "sparsity_evolution", "scales_evolution", "gradient_multipliers"]
UNIT_FACTORS = {"pJ": 1.0, "nJ": 1e3, "µJ": 1e6}


@pytest.fixture(scope="module")
def ttq():
    return Analysis.from_json(RESULTS / "resnet20_ttq_best.analysis.json")


@pytest.fixture(scope="module")
def fp():
    return Analysis.from_json(RESULTS / "resnet20_fp_best.analysis.json")


@pytest.fixture(scope="module")
def ttq_specs(ttq):
    return F.all_figures(ttq)


@pytest.fixture(scope="module")
def fp_specs(fp):
    return F.all_figures(fp)


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    assert plt.get_fignums() == []
    yield
    assert plt.get_fignums() == [], "a figure function opened a pyplot figure"


def test_all_figures_for_ttq(ttq_specs):
    assert [s.name for s in ttq_specs] == ALL_NAMES
    for s in ttq_specs:
        assert isinstance(s, F.FigureSpec) and isinstance(s.fig, Figure)
        assert s.fig.get_layout_engine() is not None  # constrained
        assert s.fig.axes


def test_fp_figures(fp, fp_specs):
    names = [s.name for s in fp_specs]
    assert fp.meta["checkpoint"]["history"] and all(h["layers"] == {} for h in
                                                     fp.meta["checkpoint"]["history"])
    assert "sparsity_evolution" not in names and "scales_evolution" not in names
    assert "gradient_multipliers" not in names
    for name in ("energy_by_layer", "sparsity_by_layer", "act_sparsity_distribution",
                 "training_curves"):
        assert name in names
    energy = next(s for s in fp_specs if s.name == "energy_by_layer")
    assert "fp32_measured" in energy.caption  # the ttq scenario does not apply to FP


@pytest.mark.parametrize("which", ["ttq", "fp"])
def test_captions_state_model_data_units(which, request):
    analysis = request.getfixturevalue(which)
    specs = request.getfixturevalue(f"{which}_specs")
    images = f"{analysis.meta['images']:,}"
    dataset = analysis.meta["checkpoint"]["dataset"]
    for s in specs:
        assert analysis.meta["arch"] in s.caption, s.name
        assert dataset in s.caption, s.name
        assert len(s.caption) > 80 and "\n" not in s.caption
        if s.name not in HISTORY_FIGURES:
            assert images in s.caption, s.name
    by_name = {s.name: s for s in specs}
    energy = by_name["energy_by_layer"].caption
    assert "µJ" in energy and analysis.meta["energy_model"]["name"] in energy
    assert analysis.meta["memory"].upper() in energy
    assert "fraction of zeros" in by_name["sparsity_by_layer"].caption
    assert "%" in by_name["training_curves"].caption and "nats" in by_name["training_curves"].caption


def test_energy_bars_equal_dataframe(ttq):
    spec = F.energy_by_layer(ttq)
    ax = spec.fig.axes[0]
    unit = re.search(r"\((pJ|nJ|µJ)\)", ax.get_ylabel()).group(1)
    factor = UNIT_FACTORS[unit]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [b.get_label() for b in bars] == ["compute", "weight memory"]
    compute = np.array([p.get_height() for p in bars[0]]) * factor
    memory = np.array([p.get_height() for p in bars[1]]) * factor
    bottoms = np.array([p.get_y() for p in bars[1]]) * factor
    df = ttq.layers
    np.testing.assert_allclose(compute, df["ttq_measured_compute_pJ"], rtol=1e-9)
    np.testing.assert_allclose(memory, df["ttq_measured_memory_pJ"], rtol=1e-9)
    np.testing.assert_allclose(bottoms, df["ttq_measured_compute_pJ"], rtol=1e-9)
    assert [t.get_text() for t in ax.get_xticklabels()] == df["layer"].tolist()


def test_energy_falls_back_to_dense_without_measurements(ttq):
    a = copy.deepcopy(ttq)
    a.layers["ttq_measured_compute_pJ"] = np.nan
    a.meta["images"] = 0
    spec = F.energy_by_layer(a)
    assert spec is not None and "ttq_dense" in spec.caption and "dense activations" in spec.caption
    heights = np.array([p.get_height() for p in spec.fig.axes[0].containers[0]])
    unit = re.search(r"\((pJ|nJ|µJ)\)", spec.fig.axes[0].get_ylabel()).group(1)
    np.testing.assert_allclose(heights * UNIT_FACTORS[unit], a.layers["ttq_dense_compute_pJ"])
    # nothing measured: no activation figures, weight sparsity only for the ternary net
    assert F.act_sparsity_distribution(a) is None
    assert "not measured" in F.sparsity_by_layer(a).caption


def test_sparsity_evolution_panels(ttq):
    history = ttq.meta["checkpoint"]["history"]
    spec = F.sparsity_evolution(history, ttq.meta)
    visible = [ax for ax in spec.fig.axes if ax.get_visible()]
    assert len(visible) == len(history[-1]["layers"]) + 1
    assert visible[-1].get_title() == "mean over layers"


@pytest.mark.parametrize("history", [None, []])
def test_history_figures_without_history(history):
    for name in HISTORY_FIGURES:
        assert getattr(F, name)(history) is None


def test_gradient_figure_skips_missing_stats(ttq):
    history = copy.deepcopy(ttq.meta["checkpoint"]["history"])
    for h in history:
        for stats in h["layers"].values():
            for k in list(stats):
                if k.startswith("grad_abs_mean"):
                    stats[k] = None
    assert F.gradient_multipliers(history) is None
    history[-1]["layers"]["layer1.0.conv1"]["grad_abs_mean_pos"] = 1e-3  # one value left
    assert F.gradient_multipliers(history) is not None


def test_to_svg_is_inlineable(ttq_specs):
    svg = F.to_svg(ttq_specs[0].fig)
    assert svg.startswith("<svg")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", svg))
    assert urls and all(u.startswith("http://www.w3.org/") for u in urls), urls
    assert "<text" in svg  # svg.fonttype none: text stays text
    assert F.to_svg(ttq_specs[0].fig) == svg  # deterministic


def test_save_writes_svg_and_png(ttq_specs, tmp_path):
    spec = next(s for s in ttq_specs if s.name == "training_curves")
    paths = F.save(spec, tmp_path / "figs")
    assert [p.name for p in paths] == ["training_curves.svg", "training_curves.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[0].read_text().startswith("<svg")
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_to_svg_id_prefix(ttq_specs):
    svg = F.to_svg(ttq_specs[0].fig, id_prefix="energy")
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    refs = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', svg))
    assert ids and all(i.startswith("energy-") for i in ids)
    assert refs and refs <= ids  # every reference still resolves
    with pytest.raises(ValueError):
        F.to_svg(ttq_specs[0].fig, id_prefix="bad prefix")
