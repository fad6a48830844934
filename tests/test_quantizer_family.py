"""The quantizer family behind ``ttq-train --quantizer`` (issue 21, item 1): TWN, BWN and LSQ
int4/int8 against hand-computed forwards and gradients, LSQ's step gradient against autograd
and finite differences, the layer/record/state_dict contract, one short real CIFAR-10
training per method, and the refused flag combinations of the CLI."""

from __future__ import annotations

import contextlib
import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F

from ttq_core.checkpoint import load_model
from ttq_core.errors import ConfigError
from ttq_core.models import build_model
from ttq_core.quantize import (
    QUANTIZERS, BWNQuantizer, LSQQuantizer, NotTernaryError, TernaryLayerMixin, TWNQuantizer,
    apply_quant_record, export_ternary, layer_weight_stats, quant_record, quantized_layers,
    ternarize, ternary_layers,
)
from ttq_core.quantize.lsq import LSQWeight
from ttq_core.train import TrainConfig
from ttq_core.train.loop import Trainer

from conftest import CIFAR_ARCHIVE, needs_cifar

METHODS = ["ttq", "twn", "bwn", "int4", "int8"]
OTHERS = METHODS[1:]


def _close(t: torch.Tensor, expected) -> None:
    torch.testing.assert_close(t.detach().double(), torch.tensor(expected, dtype=torch.float64),
                               rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------ registry

def test_registry_entries():
    assert list(QUANTIZERS) == METHODS
    facts = {n: (s.family, s.bits, s.granularity, s.learned) for n, s in QUANTIZERS.items()}
    assert facts == {"ttq": ("ternary", 2, "layer", ("wp", "wn")),
                     "twn": ("ternary", 2, "layer", ()),
                     "bwn": ("binary", 1, "output channel", ()),
                     "int4": ("integer", 4, "output channel", ("step",)),
                     "int8": ("integer", 8, "output channel", ("step",))}
    for s in QUANTIZERS.values():
        assert s.description and s.paper and s.arxiv


# ------------------------------------------------------------------------ TWN by hand

def test_twn_forward_and_gradient_by_hand():
    w = torch.tensor([0.9, 0.02, -0.5, 0.3, -0.05, 0.05], requires_grad=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    q = TWNQuantizer()
    # mean|w| = (0.9 + 0.02 + 0.5 + 0.3 + 0.05 + 0.05) / 6 = 1.82 / 6 = 0.303333
    # Δ = 0.7 · 0.303333 = 0.212333; |w| > Δ for 0.9, -0.5, 0.3
    # α = (0.9 + 0.5 + 0.3) / 3 = 0.566667
    assert q.delta(w).item() == pytest.approx(0.212333, abs=1e-6)
    assert q.alpha(w).item() == pytest.approx(0.566667, abs=1e-6)
    out = q(w)
    a = 1.7 / 3
    assert out.tolist() == pytest.approx([a, 0.0, -a, a, 0.0, 0.0])
    (out * g).sum().backward()
    # straight through, no gradient through α: ∂L/∂w = g, also in the zero region
    assert w.grad.tolist() == pytest.approx(g.tolist())
    assert list(q.parameters()) == []


def test_twn_all_zero_layer_is_all_zero():
    q = TWNQuantizer()
    assert q(torch.zeros(5)).tolist() == [0.0] * 5  # no |w| > Δ = 0: α = 0


# ------------------------------------------------------------------------ BWN by hand

def test_bwn_forward_and_gradient_by_hand():
    # two output channels of n = 4 weights each (a 2x4 linear layer's weight)
    w = torch.tensor([[0.5, -0.25, 0.0, -2.0],
                      [0.1, 0.3, -0.2, 0.2]], requires_grad=True)
    g = torch.tensor([[1.0, 2.0, 3.0, 4.0],
                      [1.0, 1.0, 1.0, 1.0]])
    q = BWNQuantizer()
    # α_0 = (0.5 + 0.25 + 0 + 2) / 4 = 0.6875;  α_1 = (0.1 + 0.3 + 0.2 + 0.2) / 4 = 0.2
    assert q.alpha(w).tolist() == pytest.approx([0.6875, 0.2])
    out = q(w)
    # sign(0) = +1, so w = 0 maps to +α_0
    _close(out, [[0.6875, -0.6875, 0.6875, -0.6875],
                 [0.2, 0.2, -0.2, 0.2]])
    (out * g).sum().backward()
    # ∂L/∂w = g · (1/n + α_c·1{|w| ≤ 1}), 1/n = 0.25
    # channel 0: factor 0.25 + 0.6875 = 0.9375 for |w| ≤ 1, 0.25 for w = -2
    # channel 1: factor 0.25 + 0.2 = 0.45 everywhere
    _close(w.grad, [[0.9375, 1.875, 2.8125, 1.0],
                    [0.45, 0.45, 0.45, 0.45]])


# ------------------------------------------------------------------------ LSQ by hand

W_LSQ = [[0.23, -0.05, 0.8, -0.66],
         [0.01, -0.02, 0.03, 0.5]]
G_LSQ = [[1.0, 2.0, 3.0, 4.0],
         [1.0, 1.0, 1.0, 1.0]]


def test_lsq_int4_forward_and_gradients_by_hand():
    q = LSQQuantizer(4, out_channels=2)
    assert (q.q, q.method) == (7, "int4")
    with torch.no_grad():
        q.step.copy_(torch.tensor([0.1, 0.05]))
    w = torch.tensor(W_LSQ, dtype=torch.float64, requires_grad=True)
    q.double()
    out = q(w)
    # channel 0, s = 0.1: v = w/s = [2.3, -0.5, 8, -6.6]
    #   k = clamp(round(v), -7, 7) = [2, 0 (half to even), 7, -7]; w_q = s·k
    # channel 1, s = 0.05: v = [0.2, -0.4, 0.6, 10] -> k = [0, 0, 1, 7]
    _close(out, [[0.2, 0.0, 0.7, -0.7],
                 [0.0, 0.0, 0.05, 0.35]])
    (out * torch.tensor(G_LSQ, dtype=torch.float64)).sum().backward()
    # ∂L/∂w = g · 1{-7 < v < 7}: v = 8 and v = 10 are clipped
    _close(w.grad, [[1.0, 2.0, 0.0, 4.0],
                    [1.0, 1.0, 1.0, 0.0]])
    # ∂w_q/∂s = round(v) - v inside, ±7 where clipped
    # channel 0: [2-2.3, 0+0.5, 7, -7+6.6] = [-0.3, 0.5, 7, -0.4]
    #   Σ g·∂w_q/∂s = -0.3 + 1.0 + 21 - 1.6 = 20.1
    # channel 1: [0-0.2, 0+0.4, 1-0.6, 7] = [-0.2, 0.4, 0.4, 7];  Σ = 7.6
    # gradient scale γ = 1/sqrt(N_c·Q) = 1/sqrt(4·7) = 1/5.291503
    assert q.step.grad.tolist() == pytest.approx([20.1 / math.sqrt(28), 7.6 / math.sqrt(28)])


def test_lsq_init_levels_and_clamp():
    q8 = LSQQuantizer(8, out_channels=2)
    assert (q8.q, q8.method) == (127, "int8")   # 2^(8-1) - 1: levels -127..127
    q = LSQQuantizer(4, out_channels=2)
    q.init_from_(torch.tensor(W_LSQ))
    # s_c = 2·mean|w_c| / sqrt(7):
    #   channel 0: mean|w| = (0.23 + 0.05 + 0.8 + 0.66) / 4 = 0.435 -> 0.87 / 2.645751 = 0.328829
    #   channel 1: mean|w| = (0.01 + 0.02 + 0.03 + 0.5) / 4 = 0.14  -> 0.28 / 2.645751 = 0.105830
    assert q.step.tolist() == pytest.approx([0.328829, 0.105830], abs=1e-6)
    with torch.no_grad():
        q.step.copy_(torch.tensor([-0.2, 0.3]))
    q.clamp_scales_()  # steps stay > 0
    assert q.step.tolist() == pytest.approx([q.min_scale, 0.3])


def _lsq_reference(w, step, q):
    """LSQ written with plain autograd: round passed straight through (x + (round(x) - x)
    detached), the clamp differentiated, the step's gradient scaled by γ = 1/sqrt(N_c·Q)."""
    gamma = 1.0 / math.sqrt(w[0].numel() * q)
    s = step * gamma + (step - step * gamma).detach()      # value s, gradient × γ
    s = s.reshape(-1, *([1] * (w.dim() - 1)))
    v = torch.clamp(w / s, -q, q)
    return (v + (torch.round(v) - v).detach()) * s


@pytest.mark.parametrize("bits", [4, 8])
def test_lsq_step_gradient_matches_autograd_and_finite_differences(bits):
    torch.manual_seed(0)
    w = (torch.randn(3, 4, 3, 3, dtype=torch.float64) * 0.2)
    g = torch.randn_like(w)
    q = LSQQuantizer(bits, out_channels=3).double()
    qmax = q.q
    with torch.no_grad():  # Q·s_c = 2.5·mean|w_c|: the tail of each channel clips at ±Q
        q.step.copy_(2.5 * w.abs().reshape(3, -1).mean(dim=1) / qmax)
    # the toolkit's autograd.Function ...
    w1 = w.clone().requires_grad_(True)
    s1 = q.step.detach().clone().requires_grad_(True)
    (LSQWeight.apply(w1, s1, qmax, None) * g).sum().backward()
    # ... against the same quantizer written with plain autograd
    w2 = w.clone().requires_grad_(True)
    s2 = q.step.detach().clone().requires_grad_(True)
    (_lsq_reference(w2, s2, qmax) * g).sum().backward()
    assert (w1.grad == 0).any(), "no weight clipped: the test would not see the clip rule"
    assert torch.allclose(w1.grad, w2.grad) and torch.allclose(s1.grad, s2.grad, rtol=1e-10)
    # ... and against central finite differences of the surrogate LSQ differentiates:
    # f(s) = Σ g · s·(clamp(w/s, -Q, Q) + r), with r = round(v0) - v0 frozen at s0 (the
    # straight-through round), times γ.
    s0 = q.step.detach()
    v0 = torch.clamp(w / s0.reshape(-1, 1, 1, 1), -qmax, qmax)
    r = torch.round(v0) - v0

    def f(c: int, h: float) -> float:
        s = s0.clone()
        s[c] += h
        sv = s.reshape(-1, 1, 1, 1)
        return float((g * sv * (torch.clamp(w / sv, -qmax, qmax) + r))[c].sum())

    h = 1e-7 * float(s0.min())
    gamma = 1.0 / math.sqrt(w[0].numel() * qmax)
    fd = [(f(c, h) - f(c, -h)) / (2 * h) * gamma for c in range(3)]
    assert s1.grad.tolist() == pytest.approx(fd, rel=1e-5)


# ------------------------------------------------------------------------ layer contract

def _quantized(method: str, **kw):
    torch.manual_seed(0)
    return ternarize(build_model("resnet20"), method=method, **kw)


@pytest.mark.parametrize("method", METHODS)
def test_layer_contract(method):
    model = _quantized(method)
    layers = list(ternary_layers(model))
    assert [n for n, _ in quantized_layers(model)] == [n for n, _ in layers]
    assert "conv1" not in dict(layers) and "linear" not in dict(layers)  # --keep-fp default
    quantizer_keys = {k for k in model.state_dict() if ".quantizer." in k}
    expected = {f"{n}.quantizer.{p}" for n, _ in layers for p in QUANTIZERS[method].learned}
    assert quantizer_keys == expected
    for name, layer in layers:
        assert isinstance(layer, TernaryLayerMixin)
        q = layer.quantizer
        assert q.method == method and q.spec is QUANTIZERS[method]
        with torch.no_grad():
            wq = layer.effective_weight()
        rows = wq.reshape(wq.shape[0], -1)
        if method in ("ttq", "twn"):
            codes = layer.ternary_codes()
            assert set(codes.unique().tolist()) <= {-1, 0, 1}
            assert wq.unique().numel() <= 3
        else:
            with pytest.raises(NotTernaryError, match=f"ternary_codes.*{method}"):
                layer.ternary_codes()
        if method == "twn":
            a = float(q.alpha(layer.weight))
            assert set(wq.unique().tolist()) <= {-a, 0.0, a}
        if method == "bwn":
            alpha = q.alpha(layer.weight)
            assert torch.equal(rows.abs(), alpha[:, None].expand_as(rows))
        if method.startswith("int"):
            assert q.step.shape == (wq.shape[0],)
            k = rows / q.step.detach()[:, None]
            assert torch.allclose(k, k.round(), atol=1e-4) and k.abs().max() <= q.q + 1e-4


def test_keep_fp_is_the_same_for_every_method():
    chosen = {m: [n for n, _ in ternary_layers(_quantized(m, keep_fp=["layer1.*", "conv1"]))]
              for m in METHODS}
    assert all(names == chosen["ttq"] for names in chosen.values())
    assert not any(n.startswith("layer1.") for n in chosen["ttq"])
    assert "linear" in chosen["ttq"]


@pytest.mark.parametrize("method", OTHERS)
def test_record_replays_exactly(method):
    model = _quantized(method)
    with torch.no_grad():  # move the learned steps away from their initial values
        for _, layer in ternary_layers(model):
            for p in layer.quantizer.parameters():
                p.mul_(1.3)
    rec = quant_record(model)
    assert rec["method"] == method and rec["fp_layers"] == ["conv1", "linear"]
    rebuilt = apply_quant_record(build_model("resnet20"), rec)
    rebuilt.load_state_dict(model.state_dict())
    assert quant_record(rebuilt)["layers"] == rec["layers"]
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.eval()(x), rebuilt.eval()(x))


def test_record_without_method_means_ttq():
    model = _quantized("ttq")
    rec = quant_record(model)
    assert rec["method"] == "ttq"
    old = {k: v for k, v in rec.items() if k != "method"}
    rebuilt = apply_quant_record(build_model("resnet20"), old)
    assert all(layer.quantizer.method == "ttq" for _, layer in ternary_layers(rebuilt))


def test_ttq_options_refused_with_other_methods():
    with pytest.raises(ConfigError, match="threshold.*twn"):
        ternarize(build_model("resnet20"), threshold=0.1, method="twn")
    with pytest.raises(ConfigError, match="unknown quantizer 'int3'"):
        ternarize(build_model("resnet20"), method="int3")
    with pytest.raises(NotTernaryError, match="export_ternary.*bwn"):
        export_ternary(_quantized("bwn"))
    # twn exports like ttq: wp = wn = α
    e = export_ternary(_quantized("twn"))["layer1.0.conv1"]
    assert e.wp == e.wn and e.rule == "twn" and e.value == 0.7


def test_weight_stats_of_other_methods():
    model = _quantized("int4")
    layer = model.get_submodule("layer2.0.conv1")
    s = layer_weight_stats(model)["layer2.0.conv1"]
    k = layer.quantizer.integers(layer.weight)
    n = k.numel()
    assert s["frac_zero"] == pytest.approx(int((k == 0).sum()) / n)
    assert s["frac_pos"] == pytest.approx(int((k > 0).sum()) / n)
    assert s["wp"] == s["wn"] == pytest.approx(layer.quantizer.step.mean().item())
    assert s["delta"] == pytest.approx(s["wp"] / 2)
    s = layer_weight_stats(_quantized("bwn"))["layer2.0.conv1"]
    assert s["frac_zero"] == 0.0 and s["delta"] == 0.0


def test_config_validation():
    TrainConfig(mode="ttq", quantizer="int8").validate()
    assert TrainConfig.from_dict({}).quantizer == "ttq"  # configs before the field
    for kw, flag in [({"threshold": 0.1}, "--threshold"),
                     ({"target_sparsity": 0.5}, "--target-sparsity"),
                     ({"grad_scaling": False}, "--no-grad-scaling"),
                     ({"scale_init": "least-squares"}, "--scale-init"),
                     ({"scale_lr_mult": 0.1}, "--scale-lr-mult")]:
        with pytest.raises(ConfigError, match=f"^{flag} applies to --quantizer ttq only"):
            TrainConfig(mode="ttq", quantizer="twn", **kw).validate()
    with pytest.raises(ConfigError, match="use --mode ttq"):
        TrainConfig(mode="fp", quantizer="bwn").validate()
    with pytest.raises(ConfigError, match="--no-wd-scales.*no learned scales"):
        TrainConfig(mode="ttq", quantizer="bwn", wd_scales=False).validate()


def test_compiles_to_one_graph_like_eager(method="int4"):
    """As tests/test_compile.py for TTQ: fullgraph on the eager backend (no codegen), the
    same loss and gradients as eager, one graph, no recompilation after a step.  int4 (a
    learned step, an int argument); twn and bwn pass the same check (measured; left out
    to keep this file's time down)."""
    import torch._dynamo
    from torch._dynamo.utils import counters
    from torch import nn
    torch.manual_seed(0)
    eager = ternarize(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4),
                                    nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2),
                                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)),
                     keep_fp=[], method=method)
    model = copy.deepcopy(eager)
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    x, y = torch.randn(4, 3, 7, 7), torch.randint(0, 10, (4,))
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(2):
            losses = []
            for net, fn in ((eager, eager), (model, compiled)):
                net.zero_grad(set_to_none=True)
                loss = F.cross_entropy(fn(x), y)
                loss.backward()
                losses.append(loss.detach())
            torch.testing.assert_close(losses[1], losses[0])
            for (name, p), q in zip(eager.named_parameters(), model.parameters()):
                torch.testing.assert_close(q.grad, p.grad, msg=name)
            with torch.no_grad():
                for net in (eager, model):
                    for p in net.parameters():
                        p -= 0.1 * p.grad
    assert counters["stats"]["unique_graphs"] == 1 and not counters["recompiles"]
    torch._dynamo.reset()


# ------------------------------------------------------------------------ real training

TINY = dict(data_dir=str(CIFAR_ARCHIVE), limit_train=64, limit_test=32, batch_size=32,
            device="cpu", progress=False, mode="ttq", lr=0.02, grad_stats_every=1,
            bn_recal_images=32, epochs=1)
TRAINED = ["twn", "bwn", "int4"]  # int8 differs from int4 only in Q (unit tests above)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``runs(method)``: (trainer, checkpoint, run folder) of one epoch on 64 CIFAR-10
    training images (2 steps of 32), ResNet-20 from scratch; each method trained once."""
    done = {}

    def run(method: str):
        if method not in done:
            out = tmp_path_factory.mktemp(method)
            trainer = Trainer(TrainConfig(quantizer=method, out=str(out), **TINY))
            done[method] = (trainer, trainer.run(), out)
        return done[method]
    return run


@needs_cifar
@pytest.mark.parametrize("method", TRAINED)
def test_training_records_method_and_reloads_exactly(runs, method):
    trainer, ckpt, out = runs(method)
    entry = ckpt["history"][0]
    assert math.isfinite(entry["train_loss"]) and math.isfinite(entry["test_loss"])
    disk = torch.load(out / "last.pt", weights_only=True)
    assert disk["quant"]["method"] == method and disk["train_config"]["quantizer"] == method
    loaded = load_model(out / "last.pt")
    x = next(iter(trainer.data.test.batches(16)))[0]  # normalised test images
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(trainer.model(x), loaded.model(x))
    for name, stats in entry["layers"].items():
        assert all(math.isfinite(stats[k]) for k in ("frac_pos", "frac_zero", "frac_neg",
                                                      "wp", "wn", "delta")), name
        assert stats["grad_abs_mean_pos"] is not None and stats["grad_abs_mean_pos"] > 0


@needs_cifar
@pytest.mark.parametrize("method", TRAINED)
def test_trained_weights_take_the_methods_values(runs, method):
    _, _, out = runs(method)
    model = load_model(out / "last.pt").model
    layers = list(ternary_layers(model))
    assert [n for n, _ in layers] == list(quant_record(model)["layers"])
    for name, layer in layers:
        with torch.no_grad():
            rows = layer.effective_weight().reshape(layer.weight.shape[0], -1)
        per_channel = [row.unique().numel() for row in rows]
        if method == "twn":
            assert rows.unique().numel() <= 3, name
        elif method == "bwn":
            assert max(per_channel) <= 2, name
        else:
            q = layer.quantizer
            assert max(per_channel) <= 15, name
            assert bool((q.step > 0).all())
            k = rows / q.step.detach()[:, None]
            assert torch.allclose(k, k.round(), atol=1e-3), name


@needs_cifar
def test_history_figures_draw_other_methods(runs):
    from reports import figures as F
    _, ckpt, _ = runs("int4")
    meta = {"arch": "resnet20", "checkpoint": {"dataset": "cifar10", "quant": ckpt["quant"]}}
    for name in ("sparsity_evolution", "scales_evolution", "gradient_multipliers"):
        spec = getattr(F, name)(ckpt["history"], meta)
        assert spec is not None and "int4" in spec.caption, name
        assert "Wp" not in spec.caption, (name, spec.caption)
        spec.fig.clear()


# ------------------------------------------------------------------------ CLI

def _cli(*argv: str) -> tuple[int, str]:
    """``ttq-train ARGV`` in this process: (exit code, stderr)."""
    from ttq_core.train.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def _one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("ttq-train: error:"), err
    for f in fragments:
        assert f in lines[0], (f, err)


@pytest.mark.parametrize("flags", [
    ["--threshold", "0.05"],                       # explicitly given, even at its default
    ["--layer-threshold", "layer3.*=0.1"], ["--target-sparsity", "0.5"],
    ["--layer-sparsity", "layer1.*=0.3"], ["--threshold-plan", "plan.json"],
    ["--no-grad-scaling"], ["--scale-init", "one"], ["--scale-lr-mult", "0.5"]])
def test_cli_refuses_ttq_options_with_other_quantizers(tmp_path, flags):
    code, err = _cli("--mode", "ttq", "--quantizer", "int4", *flags, "--out", str(tmp_path / "r"))
    _one_line_error(code, err, f"{flags[0]} applies to --quantizer ttq only", "int4")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("quantizer", ["bwn", "ttq"])
def test_cli_refuses_quantizer_with_mode_fp(tmp_path, quantizer):
    code, err = _cli("--mode", "fp", "--quantizer", quantizer, "--out", str(tmp_path / "r"))
    _one_line_error(code, err, "--mode ttq")


def test_cli_unknown_quantizer_is_an_argparse_error(tmp_path):
    code, err = _cli("--mode", "ttq", "--quantizer", "int3", "--out", str(tmp_path / "r"))
    assert code == 2 and "invalid choice: 'int3'" in err and "Traceback" not in err


@needs_cifar
def test_cli_refuses_changing_the_quantizer_of_a_run(runs):
    _, _, out = runs("int4")
    method, other = "int4", "twn"
    code, err = _cli("--out", str(out), "--resume", "--quantizer", other, "--epochs", "2")
    _one_line_error(code, err, f"--quantizer {other} (the run has {method})")
    code, err = _cli("--mode", "ttq", "--init", str(out / "last.pt"), "--quantizer", other,
                     "--out", str(out / "again"))
    _one_line_error(code, err, f"already quantized with {method}")
