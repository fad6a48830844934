"""ttq_analysis.analyze: MACs and parameters against ARCHITECTURE.md ("Reference figures")
and torch's flop counter, activation sparsity against a direct computation, streaming = one batch, dense ternary
operations and energy against hand formulas, FP models, JSON round trip."""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ttq_analysis import Analysis, analyze
from ttq_core.data import cifar10_split
from ttq_core.errors import ConfigError
from ttq_core.models import build_model
from ttq_core.quantize import ternarize

from conftest import CIFAR_ARCHIVE, needs_cifar

# ARCHITECTURE.md, "Reference figures": conv+linear MACs and parameters
REFERENCE = {
    ("resnet20", 10): (40_551_040, 269_722),
    ("resnet32", 10): (68_862_592, 464_154),
    ("resnet44", 10): (97_174_144, 658_586),
    ("resnet56", 10): (125_485_696, 853_018),
    ("resnet18", 1000): (1_814_073_344, 11_689_512),
    ("alexnet", 1000): (714_188_480, 61_100_840),
}


def _flop_counter_macs(model, shape):
    """conv + linear flops of torch.utils.flop_counter, / 2 (it counts 2 per MAC)."""
    with FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, *shape))
    counts = counter.get_flop_counts()["Global"]
    ops = {k: v for k, v in counts.items()
           if any(s in str(k) for s in ("convolution", "addmm", "mm"))}
    return sum(ops.values()) // 2


@pytest.mark.parametrize("arch,classes", list(REFERENCE))
def test_macs_and_params_match_guide_and_flop_counter(arch, classes):
    model = build_model(arch, num_classes=classes)
    a = analyze(model, device="cpu", progress=False)
    macs, params = REFERENCE[(arch, classes)]
    assert a.network.counts.macs == macs
    assert a.network.sizes.params == params
    assert a.network.counts.macs == _flop_counter_macs(model, a.meta["input_shape"])
    assert a.meta["input_shape"] == ([3, 224, 224] if classes == 1000 else [3, 32, 32])


def test_other_and_unsupported_ops_are_reported():
    a = analyze(build_model("resnet20"), device="cpu", progress=False)
    assert a.meta["other_ops"]["batch_norm"] > 0          # reported apart from MACs
    assert "aten::add" in a.meta["unsupported_ops"]        # listed, not dropped


def _ternary_resnet20(seed=0):
    torch.manual_seed(seed)
    return ternarize(build_model("resnet20"))


def test_dense_ternary_ops_equal_hand_formula():
    model = _ternary_resnet20()
    a = analyze(model, device="cpu", progress=False)
    row = a.layers.set_index("layer").loc["layer2.0.conv1"]
    codes = model.layer2[0].conv1.ternary_codes()            # (32, 16, 3, 3)
    adds = mults = 0
    for filt in codes:                                        # one output channel
        npos, nneg = int((filt == 1).sum()), int((filt == -1).sum())
        adds += max(npos + nneg - 1, 0) * 16 * 16             # stride 2: 16x16 outputs
        mults += ((npos > 0) + (nneg > 0)) * 16 * 16
    assert row["ternary_adds"] == adds and row["ternary_mults"] == mults
    assert row["weight_sparsity"] == pytest.approx(float((codes == 0).float().mean()))
    assert row["weight_bits"] == 2 * codes.numel() + 64


def test_fp_model_gets_fp32_energy_and_empty_ternary_columns():
    model = build_model("resnet20")
    a = analyze(model, device="cpu", progress=False)
    assert not a.layers["ternary"].any()
    assert a.layers["ternary_adds"].isna().all() and a.layers["wp"].isna().all()
    assert a.layers["ttq_dense_total_pJ"].isna().all()
    # Horowitz 45 nm: fp32 mult 3.7 + add 0.9 pJ per MAC; SRAM 5 pJ per 32-bit weight
    compute = 40_551_040 * (3.7 + 0.9)
    conv_linear_params = sum(p.numel() for m in model.modules()
                             if isinstance(m, (nn.Conv2d, nn.Linear)) for p in m.parameters())
    memory = conv_linear_params * 5.0
    assert a.network.energy.fp32_dense.compute_uJ == pytest.approx(compute / 1e6)
    assert a.network.energy.fp32_dense.memory_uJ == pytest.approx(memory / 1e6)
    assert a.network.energy.fp32_dense.total_uJ == pytest.approx((compute + memory) / 1e6)
    assert a.network.energy.ttq_dense.total_uJ is None and a.network.ternary is False
    dram = analyze(model, device="cpu", progress=False, memory="dram")
    assert dram.network.energy.fp32_dense.memory_uJ == pytest.approx(conv_linear_params * 640.0 / 1e6)


def test_ternary_network_energy_equals_hand_sum():
    model = _ternary_resnet20()
    a = analyze(model, device="cpu", progress=False)
    L = a.layers
    tern, fp = L[L["ternary"]], L[~L["ternary"]]
    compute = ((tern["ternary_adds"] * 0.9 + tern["ternary_mults"] * 3.7).sum()
               + (fp["macs"] * (3.7 + 0.9)).sum())
    memory = (tern["weight_bits"].sum() + fp["weight_bits"].sum()) * 5.0 / 32
    assert a.network.energy.ttq_dense.total_uJ == pytest.approx((compute + memory) / 1e6)
    assert a.network.saving("dense") == pytest.approx(
        a.network.energy.fp32_dense.total_uJ / a.network.energy.ttq_dense.total_uJ)
    assert a.network.saving("dense") > 1


@pytest.fixture(scope="module")
def real_batch():
    if not CIFAR_ARCHIVE.exists():
        pytest.skip("real CIFAR-10 archive absent")
    data = cifar10_split("test", data_dir=str(CIFAR_ARCHIVE), limit=64, progress=False)
    x, _ = next(data.batches(64))
    return x


@needs_cifar
def test_activation_sparsity_equals_direct_computation(real_batch):
    torch.manual_seed(0)
    model = ternarize(build_model("resnet20")).eval()
    x = real_batch
    a = analyze(model, data=x, device="cpu", progress=False)
    got = a.layers.set_index("layer")["act_sparsity"]
    with torch.no_grad():  # the inputs of three layers, written out by hand
        stem = F.relu(model.bn1(model.conv1(x)))
        block = model.layer1[0]
        mid = F.relu(block.bn1(block.conv1(stem)))
        feats = model.layer3(model.layer2(model.layer1(stem)))
        pooled = F.adaptive_avg_pool2d(feats, 1).flatten(1)
    for name, inp in (("conv1", x), ("layer1.0.conv2", mid), ("linear", pooled)):
        per_image = (inp == 0).flatten(1).float().mean(1)
        assert got[name] == pytest.approx(per_image.mean().item(), abs=1e-12)
    std = (mid == 0).flatten(1).float().mean(1).double().std(unbiased=False).item()
    assert a.layers.set_index("layer").loc["layer1.0.conv2", "act_sparsity_std"] == pytest.approx(std)
    assert 0.2 < got["layer1.0.conv2"] < 0.9      # ReLU outputs: many exact zeros
    assert a.network.images == 64


@needs_cifar
def test_measured_accuracy_equals_plain_evaluation():
    from ttq_core.train.loop import evaluate
    model = _ternary_resnet20().eval()
    data = cifar10_split("test", data_dir=str(CIFAR_ARCHIVE), limit=300, progress=False)
    _, acc = evaluate(model, data, 100, torch.device("cpu"))
    a = analyze(model, data=data, device="cpu", progress=False, count_ops=False)
    assert a.network.accuracy.measured_acc == acc
    assert analyze(model, data=next(data.batches(64))[0], device="cpu",
                   progress=False).network.accuracy.measured_acc is None   # no labels, no accuracy


@needs_cifar
def test_streaming_many_batches_equals_one_batch(real_batch):
    model = _ternary_resnet20()
    one = analyze(model, data=[real_batch], device="cpu", progress=False)
    many = analyze(model, data=[(b, None) for b in real_batch.split(16)], device="cpu", progress=False)
    pd.testing.assert_frame_equal(one.layers, many.layers)
    assert one.network == many.network
    assert one.histograms == many.histograms


@needs_cifar
def test_measured_counts_bounded_by_dense(real_batch):
    a = analyze(_ternary_resnet20(), data=real_batch, device="cpu", progress=False)
    L = a.layers
    t = L[L["ternary"]]
    assert (t["effective_adds"] <= t["ternary_adds"]).all()
    assert (t["effective_mults"] <= t["ternary_mults"]).all()
    assert (L["effective_macs"] <= L["macs"]).all()
    assert a.network.energy.ttq_measured.total_uJ < a.network.energy.ttq_dense.total_uJ
    assert a.network.energy.fp32_measured.total_uJ < a.network.energy.fp32_dense.total_uJ


@needs_cifar
def test_json_round_trip_is_exact(real_batch, tmp_path):
    a = analyze(_ternary_resnet20(), data=real_batch, device="cpu", progress=False)
    path = tmp_path / "analysis.json"
    a.to_json(path)
    b = Analysis.from_json(path)
    pd.testing.assert_frame_equal(a.layers, b.layers, check_exact=True)
    assert a.network == b.network and a.meta == b.meta and a.histograms == b.histograms
    assert Analysis.from_json(a.to_json()).network == a.network
    assert "NaN" not in path.read_text()       # strict JSON: missing values are null


def test_bad_inputs_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="input_shape"):
        analyze(nn.Sequential(nn.Linear(4, 2)), device="cpu", progress=False)
    with pytest.raises(ConfigError, match="no conv or linear"):
        analyze(nn.Sequential(nn.ReLU()), input_shape=(4,), device="cpu", progress=False)
    with pytest.raises(ConfigError, match="unknown energy model"):
        analyze(build_model("resnet20"), energy_model="nosuch", device="cpu", progress=False)
    with pytest.raises(ConfigError, match="not a ttq analysis"):
        Analysis.from_json('{"a": 1}')


def test_analysis_leaves_model_unchanged():
    model = _ternary_resnet20()
    before = copy.deepcopy(model.state_dict())
    analyze(model, data=torch.randn(8, 3, 32, 32), device="cpu", progress=False)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model._forward_pre_hooks or all(
        "ActivationProbe" not in repr(h) for h in model._forward_pre_hooks.values())
    assert all(not m._forward_pre_hooks for n, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert math.isfinite(analyze(model, device="cpu", progress=False).network.counts.macs)


def test_torchscript_deprecation_warnings_are_silenced_and_nothing_else():
    """fvcore traces with TorchScript, whose deprecation warnings are noise for users;
    exactly those are silenced (a fresh process, so fvcore's import happens here)."""
    import subprocess
    import sys
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from ttq_analysis import analyze\n"
            "from ttq_core.models import build_model\n"
            "analyze(build_model('resnet20'), device='cpu', progress=False)\n"
            "warnings.warn('a user warning stays visible', UserWarning)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "is deprecated" not in result.stderr
    assert "a user warning stays visible" in result.stderr


def test_analysis_json_of_2026_11_27_loads_into_the_typed_result_and_round_trips():
    """``tests/data/analysis_2026-11-27.json`` was written by the toolkit before
    ``Analysis.network`` became a typed :class:`NetworkResult` (the ternary network of
    ``reports/examples/resnet20``, histograms and history dropped to keep it small): it
    loads, every named field holds the number stored under the old flat key, and writing
    it back gives the same network dict, keys in the same order."""
    import json
    from pathlib import Path

    from ttq_analysis.results import NetworkResult
    path = Path(__file__).parent / "data" / "analysis_2026-11-27.json"
    raw = json.loads(path.read_text())
    a = Analysis.from_json(path)
    assert isinstance(a.network, NetworkResult)
    old = raw["network"]
    net = a.network
    assert net.energy.ttq_measured.total_uJ == old["ttq_measured_total_uJ"]
    assert net.energy.fp32_dense.memory_uJ == old["fp32_dense_memory_uJ"]
    assert net.counts.ternary_adds == old["ternary_adds"]
    assert net.sparsity.weight_sparsity == old["weight_sparsity"]
    assert net.accuracy.test_acc == old["test_acc"]
    assert net.accuracy.test_acc_source == old["test_acc_source"]
    assert net.saving("dense") == old["saving_dense"]
    assert net.sizes.compression == old["compression"]
    back = a.to_dict()["network"]
    assert list(back) == list(old) and back == old
    assert Analysis.from_json(a.to_json()).network == net
