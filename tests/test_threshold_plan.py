"""Per-layer threshold rules and plans: targets met exactly (brute-force counts), energy
budgets met (checked through analyze(), an independent path), the greedy's choice on a
hand-built case, loss sensitivity against TernaryConv2d, plan files, and ttq-plan."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ttq_analysis import analyze
from ttq_analysis.threshold_plan import (SENSITIVITIES, EnergyBudget, _sensitivity_loss,
                                         energy_aware_plan, uniform_plan)
from ttq_core.checkpoint import load_model
from ttq_core.errors import ConfigError
from ttq_core.quantize import ternarize, ternary_layers
from ttq_core.quantize.plan_file import ThresholdPlan
from ttq_core.train import TrainConfig
from ttq_core.train.loop import train

from conftest import CIFAR_ARCHIVE, needs_cifar

REPO = Path(__file__).resolve().parents[1]
FP_CKPT = REPO / "benchmarks" / "results" / "h200-2026-11-26" / "resnet20_fp_best.pt"


@pytest.fixture(scope="module")
def fp_model():
    """The real ResNet-20 trained on CIFAR-10 (H200 run, committed)."""
    return load_model(FP_CKPT).model.eval()


def _zeros_by_brute_force(layer) -> int:
    """Zero weights counted element by element from the latent weights and Δ."""
    w = layer.weight.detach().flatten().tolist()
    d = float(layer.quantizer.delta(layer.weight))
    return sum(1 for v in w if abs(v) <= d)


def _ttq_dense_uJ(model, layer_sparsity: dict[str, float], keep_fp) -> float:
    m = ternarize(copy.deepcopy(model), threshold=layer_sparsity, rule="sparsity", keep_fp=keep_fp)
    return analyze(m, data=None, device="cpu", count_ops=False,
                   progress=False).network.energy.ttq_dense.total_uJ


def test_per_layer_target_sparsity_is_met_exactly(fp_model):
    m = ternarize(copy.deepcopy(fp_model), rule="sparsity",
                  threshold={"layer1.*": 0.3, "layer2.0.conv1": 0.55, "*": 0.7})
    names = dict(ternary_layers(m))
    assert len(names) == 18
    for name, layer in names.items():
        r = 0.3 if name.startswith("layer1.") else 0.55 if name == "layer2.0.conv1" else 0.7
        n = layer.weight.numel()
        # trained float weights have no ties, so exactly round(r·n) weights are zero
        assert _zeros_by_brute_force(layer) == round(r * n)
        assert int((layer.ternary_codes() == 0).sum()) == round(r * n)


def test_energy_budget_parsing():
    assert EnergyBudget.parse("0.6") == EnergyBudget(fraction=0.6)
    assert EnergyBudget.parse("25uJ") == EnergyBudget(uJ=25.0)
    assert EnergyBudget.parse("1.5e1 µJ").resolve_pJ(0) == 15e6
    assert EnergyBudget.parse(0.5).resolve_pJ(10.0) == 5.0
    for bad in ("1.5", "0", "-3uJ", "lots", "0uJ"):
        with pytest.raises(ConfigError, match="energy budget"):
            EnergyBudget.parse(bad)


def test_uniform_plan_meets_budget_and_is_minimal(fp_model):
    plan = uniform_plan(fp_model, "0.7")
    r = set(plan.layers.values())
    assert len(r) == 1 and plan.method == "uniform" and plan.rule == "sparsity"
    (r,) = r
    reference = analyze(ternarize(copy.deepcopy(fp_model), threshold=0.05), data=None,
                        device="cpu", count_ops=False, progress=False).network.energy.ttq_dense.total_uJ
    assert plan.details["reference_uJ"] == pytest.approx(reference, rel=1e-12)
    budget = 0.7 * reference
    measured = _ttq_dense_uJ(fp_model, {"*": r}, plan.keep_fp)
    assert measured == pytest.approx(plan.details["predicted_uJ"], rel=1e-12)
    assert measured <= budget
    # minimal: a slightly denser network is over budget
    assert _ttq_dense_uJ(fp_model, {"*": r - 0.002}, plan.keep_fp) > budget


def test_energy_aware_plan_meets_budget_via_analyze(fp_model):
    plan = energy_aware_plan(fp_model, "0.45", sensitivity="weight_error")
    assert plan.method == "energy-aware" and set(plan.keep_fp) == {"conv1", "linear"}
    measured = _ttq_dense_uJ(fp_model, plan.layers, plan.keep_fp)
    assert measured == pytest.approx(plan.details["predicted_uJ"], rel=1e-12)
    assert measured <= 0.45 * plan.details["reference_uJ"] * (1 + 1e-12)
    # an absolute budget reads the same way
    plan_uj = energy_aware_plan(fp_model, f"{measured}uJ", sensitivity="weight_error")
    assert plan_uj.details["predicted_uJ"] <= measured * (1 + 1e-12)


def test_unreachable_budget_is_a_clear_error(fp_model):
    with pytest.raises(ConfigError, match="unreachable"):
        energy_aware_plan(fp_model, "0.01", sensitivity="weight_error")
    with pytest.raises(ConfigError, match="unreachable"):
        uniform_plan(fp_model, "0.01uJ")


class _TwoLayer(nn.Module):
    """conv(3→8, FP) → A: conv(8→8) → B: conv(8→8) → linear (FP): A and B cost the same."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        return self.head(self.b(self.a(self.stem(x))).flatten(1))


def test_greedy_keeps_the_sensitive_layer_dense(monkeypatch):
    model = _TwoLayer()
    keep = ["stem", "head"]
    # A is 100x as sensitive as B at every sparsity; both sensitivities grow with r
    monkeypatch.setitem(SENSITIVITIES, "test_fixed", lambda model, targets, grid, **_: {
        "a": [100 * r for r in grid], "b": [r for r in grid]})

    def energy(ra, rb):
        m = ternarize(copy.deepcopy(model), threshold={"a": ra, "b": rb}, rule="sparsity",
                      keep_fp=keep)
        return analyze(m, data=None, input_shape=(3, 6, 6), device="cpu", count_ops=False,
                       progress=False).network.energy.ttq_dense.total_uJ

    budget = energy(0.0, 0.8) * (1 + 1e-9)   # reachable with B alone at 0.8
    plan = energy_aware_plan(model, f"{budget!r}uJ", sensitivity="test_fixed",
                             grid=[0.0, 0.2, 0.4, 0.6, 0.8, 0.9], keep_fp=keep,
                             input_shape=(3, 6, 6))
    # by hand: sparsify B first (1/100 of A's cost per pJ), jump to its sparsest point,
    # then give back what the budget allows: B at 0.8, A untouched
    assert plan.layers == {"a": 0.0, "b": 0.8}
    assert plan.details["predicted_uJ"] == pytest.approx(energy(0.0, 0.8), rel=1e-12)


@needs_cifar
def test_loss_sensitivity_equals_ternarizing_one_layer(fp_model):
    from ttq_core.data.splits import cifar10_split
    from ttq_analysis.threshold_plan import calibration_batch
    norm = load_model(FP_CKPT).checkpoint["normalization"]
    data = cifar10_split("train", norm, str(CIFAR_ARCHIVE), limit=100, progress=False)
    x, y = calibration_batch(data, 100)
    model = copy.deepcopy(fp_model)
    targets = {n: model.get_submodule(n) for n in ("layer2.0.conv1", "layer3.2.conv2")}
    sens = _sensitivity_loss(model, targets, [0.0, 0.5], calibration=(x, y))
    with torch.no_grad():
        fp_loss = float(F.cross_entropy(fp_model(x), y))
        for name, values in sens.items():
            for r, value in zip([0.0, 0.5], values):
                # independent path: the toolkit's TernaryConv2d with least-squares scales,
                # only this layer ternary
                others = [n for n, m in fp_model.named_modules()
                          if isinstance(m, (nn.Conv2d, nn.Linear)) and n != name]
                one = ternarize(copy.deepcopy(fp_model), threshold=r, rule="sparsity",
                                keep_fp=others).eval()
                assert value == pytest.approx(float(F.cross_entropy(one(x), y)) - fp_loss,
                                              abs=1e-5)
    # the model given to the planner is restored
    for n, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert torch.equal(m.weight, fp_model.get_submodule(n).weight)


def test_plan_file_round_trip_and_errors(tmp_path):
    plan = ThresholdPlan("sparsity", {"layer1.0.conv1": 0.5}, ["conv1", "linear"], "uniform",
                         {"budget": "0.5"})
    path = tmp_path / "p.json"
    plan.save(path)
    assert ThresholdPlan.load(path) == plan
    (tmp_path / "bad.json").write_text(json.dumps({**plan.to_dict(), "layers": {"x": 1.5}}))
    with pytest.raises(ConfigError, match="target sparsity r .* must be in"):
        ThresholdPlan.load(tmp_path / "bad.json")
    (tmp_path / "notplan.json").write_text("{}")
    with pytest.raises(ConfigError, match="is not a threshold plan"):
        ThresholdPlan.load(tmp_path / "notplan.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ThresholdPlan.load(tmp_path / "broken.json")


@needs_cifar
def test_training_with_a_plan_keeps_each_layers_target(fp_model, tmp_path):
    plan = energy_aware_plan(fp_model, "0.5", sensitivity="weight_error")
    plan.save(tmp_path / "plan.json")
    cfg = TrainConfig(mode="ttq", init=str(FP_CKPT), epochs=1, data_dir=str(CIFAR_ARCHIVE),
                      limit_train=256, limit_test=100, batch_size=64, device="cpu",
                      progress=False, grad_stats_every=0, out=str(tmp_path / "run"))
    ckpt = train(cfg.with_threshold_plan(str(tmp_path / "plan.json")))
    assert ckpt["train_config"]["threshold_plan"] == str(tmp_path / "plan.json")
    assert {n: s["value"] for n, s in ckpt["quant"]["layers"].items()} == plan.layers
    trained = load_model(tmp_path / "run" / "last.pt").model
    for name, layer in ternary_layers(trained):
        # after training, each layer still has exactly its planned number of zeros
        assert _zeros_by_brute_force(layer) == round(plan.layers[name] * layer.weight.numel())
    with pytest.raises(ConfigError, match="cannot be combined"):
        TrainConfig(mode="ttq", target_sparsity=0.5).with_threshold_plan(str(tmp_path / "plan.json"))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ttq_analysis.plan_cli", *args],
                          capture_output=True, text=True, cwd=REPO)


def _in_process(capsys, *args) -> subprocess.CompletedProcess:
    """``ttq-plan ARGS`` in this process (an uncaught exception fails the test)."""
    from ttq_analysis.plan_cli import main
    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def test_ttq_plan_cli_writes_a_plan_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "plan.json"   # the real entry point once, then in this process
    r = _cli(str(FP_CKPT), "--energy-budget", "0.6", "--method", "uniform", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "uniform plan" in r.stdout and ThresholdPlan.load(out).method == "uniform"
    for args, message in [
        (["--energy-budget", "2"], "a fraction must be in (0, 1]"),
        (["--energy-budget", "0.6", "--grid", "1.5"], "sparsity grid"),
        (["--energy-budget", "0.6", "--sensitivity", "weight_error", "--keep-fp", "nope*"],
         "matches no conv/linear layer"),
    ]:
        bad = tmp_path / "bad.json"
        r = _in_process(capsys, str(FP_CKPT), *args, "--out", str(bad))
        assert r.returncode == 1 and r.stderr.startswith("ttq-plan: error:"), r.stderr
        assert message in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not bad.exists()
    ternary = REPO / "benchmarks" / "results" / "h200-2026-11-26" / "resnet20_ttq_best.pt"
    r = _in_process(capsys, str(ternary), "--energy-budget", "0.6", "--out", str(tmp_path / "t.json"))
    assert r.returncode == 1 and "ternary checkpoint" in r.stderr


def test_threshold_form_of_a_plan_gives_the_same_codes(fp_model, tmp_path):
    from ttq_analysis.threshold_plan import as_threshold_plan
    plan = uniform_plan(fp_model, "0.5")
    tplan = as_threshold_plan(plan, fp_model)
    assert tplan.rule == "threshold" and set(tplan.layers) == set(plan.layers)
    by_r = ternarize(copy.deepcopy(fp_model), threshold=plan.layers, rule="sparsity",
                     keep_fp=plan.keep_fp)
    by_t = ternarize(copy.deepcopy(fp_model), threshold=tplan.layers, rule="threshold",
                     keep_fp=tplan.keep_fp)
    layers_t = dict(ternary_layers(by_t))
    for name, layer in ternary_layers(by_r):
        # t = Δ / max|w| reproduces Δ up to float rounding: the codes agree except possibly
        # for the one weight sitting exactly at Δ
        differ = int((layer.ternary_codes() != layers_t[name].ternary_codes()).sum())
        assert differ <= 1, (name, differ)
        assert 0 < tplan.layers[name] < 1
    # the t form trains through the same plan-file reader
    tplan.save(tmp_path / "t.json")
    cfg = TrainConfig(mode="ttq").with_threshold_plan(str(tmp_path / "t.json"))
    assert cfg.layer_thresholds == tplan.layers and cfg.layer_sparsity == {}


# ResNet-20 on 32x32 inputs, activations per image read (in) and written (out) by its 21
# conv/linear layers: conv1 3,072 -> 16,384; layer1 6 x (16,384 -> 16,384); layer2
# 16,384 -> 8,192 then 5 x (8,192 -> 8,192); layer3 8,192 -> 4,096 then 5 x
# (4,096 -> 4,096); linear 64 -> 10 (option-A shortcuts have no conv).
RESNET20_ACT_ELEMENTS = (3072 + 6 * 16384 + 16384 + 5 * 8192 + 8192 + 5 * 4096 + 64
                         + 16384 + 6 * 16384 + 6 * 8192 + 6 * 4096 + 10)   # 375,882


def test_uniform_plan_under_int8_with_activation_memory(fp_model):
    plain = uniform_plan(fp_model, "0.7", precision="int8")
    with_act = uniform_plan(fp_model, "0.7", precision="int8", act_memory="sram")
    assert with_act.details["precision"] == "int8" and with_act.details["act_memory"] == "sram"
    # the reference network's dense activation traffic: 8 bits x 5/32 pJ per element (SRAM)
    assert RESNET20_ACT_ELEMENTS == 375882
    assert with_act.details["reference_uJ"] - plain.details["reference_uJ"] == pytest.approx(
        RESNET20_ACT_ELEMENTS * 8 * 5 / 32 / 1e6, rel=1e-9)
    # the prediction is what analyze() gives the planned network under the same scenario
    (r,) = set(with_act.layers.values())
    m = ternarize(copy.deepcopy(fp_model), threshold={"*": r}, rule="sparsity",
                  keep_fp=with_act.keep_fp)
    measured = analyze(m, data=None, device="cpu", count_ops=False, progress=False,
                       precision="int8", act_memory="sram").network.energy.ttq_dense.total_uJ
    assert measured == pytest.approx(with_act.details["predicted_uJ"], rel=1e-12)
    # activation traffic does not shrink with sparsity: the same fraction needs more zeros
    (r_plain,) = set(plain.layers.values())
    assert r > r_plain
