"""TTQ quantizer: values and the three gradients against hand-computed numbers, threshold
rules, layer selection, the on/off switch, scale init/clamp, export."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from ttq_core.errors import ConfigError
from ttq_core.models import build_model
from ttq_core.quantize import (
    TernaryConv2d, TernaryLinear, TernaryQuantizer, apply_quant_record, export_ternary,
    layer_weight_stats, quant_record, ternarize, ternary_layers, ternary_weight,
)

# Hand example used below: w, Δ = 0.05, Wp = 1.5, Wn = 0.7, upstream gradient g.
W = [0.9, 0.02, -0.5, 0.3, -0.05, 0.05]
G = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def _run(scale_grad=True, stats=None):
    w = torch.tensor(W, requires_grad=True)
    wp = torch.tensor(1.5, requires_grad=True)
    wn = torch.tensor(0.7, requires_grad=True)
    out = ternary_weight(w, wp, wn, torch.tensor(0.05), scale_grad, stats)
    (out * torch.tensor(G)).sum().backward()
    return out, w.grad, wp.grad, wn.grad


def test_forward_values_by_hand():
    out, *_ = _run()
    # 0.9 > Δ → +Wp; |0.02| ≤ Δ → 0; -0.5 < -Δ → -Wn; 0.3 → +Wp; ±0.05 are on Δ → 0.
    assert out.tolist() == pytest.approx([1.5, 0.0, -0.7, 1.5, 0.0, 0.0])


def test_gradients_by_hand():
    _, gw, gwp, gwn = _run()
    # ∂L/∂Wp = Σ g over w > Δ = g0 + g3 = 1 + 4
    assert gwp.item() == pytest.approx(5.0)
    # ∂L/∂Wn = -Σ g over w < -Δ = -g2 = -3 (the paper prints +Σ; w_t = -Wn there)
    assert gwn.item() == pytest.approx(-3.0)
    # ∂L/∂w = Wp·g (pos), 1·g (zero), Wn·g (neg)
    assert gw.tolist() == pytest.approx([1.5 * 1, 2.0, 0.7 * 3, 1.5 * 4, 5.0, 6.0])


def test_plain_ste_ablation():
    _, gw, gwp, gwn = _run(scale_grad=False)
    assert gw.tolist() == pytest.approx(G)
    assert (gwp.item(), gwn.item()) == pytest.approx((5.0, -3.0))


def test_scale_gradients_match_finite_differences():
    """Wp and Wn enter the forward linearly, so their exact gradients are finite differences
    of the loss; this pins the sign of ∂L/∂Wn independently of the formula."""
    torch.manual_seed(0)
    w = torch.randn(50, dtype=torch.float64)
    g = torch.randn(50, dtype=torch.float64)
    delta = torch.tensor(0.3, dtype=torch.float64)

    def loss(wp, wn):
        return float((ternary_weight(w, torch.tensor(wp, dtype=torch.float64),
                                     torch.tensor(wn, dtype=torch.float64), delta) * g).sum())
    wp = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    wn = torch.tensor(1.1, dtype=torch.float64, requires_grad=True)
    (ternary_weight(w, wp, wn, delta) * g).sum().backward()
    h = 1e-4
    assert wp.grad.item() == pytest.approx((loss(0.8 + h, 1.1) - loss(0.8 - h, 1.1)) / (2 * h), rel=1e-6)
    assert wn.grad.item() == pytest.approx((loss(0.8, 1.1 + h) - loss(0.8, 1.1 - h)) / (2 * h), rel=1e-6)
    assert wn.grad.item() != pytest.approx(-(loss(0.8, 1.1 + h) - loss(0.8, 1.1 - h)) / (2 * h))


def test_gradient_statistics_by_hand():
    stats = torch.zeros(9, dtype=torch.float64)
    _run(stats=stats)
    # regions: pos {0.9, 0.3} g {1,4}; zero {0.02, -0.05, 0.05} g {2,5,6}; neg {-0.5} g {3}
    assert stats.tolist() == pytest.approx([5, 13, 3, 1.5 * 5, 13, 0.7 * 3, 2, 3, 1])


def _layer(weight, rule="threshold", value=0.05):
    lin = nn.Linear(len(weight), 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([weight]))
    return TernaryLinear.from_float(lin, TernaryQuantizer(rule, value))


def test_threshold_rule_uses_max_abs():
    # max|w| = 2.0, t = 0.25 → Δ = 0.5: 0.4 → 0, 0.6 → +, -0.5 → 0 (on Δ), -2.0 → -
    layer = _layer([0.4, 0.6, -0.5, -2.0], value=0.25)
    assert float(layer.quantizer.delta(layer.weight)) == pytest.approx(0.5)
    assert layer.ternary_codes().tolist() == [[0, 1, 0, -1]]


def test_sparsity_rule_hits_target_exactly():
    torch.manual_seed(1)
    w = torch.randn(1000).tolist()
    for r in (0.0, 0.3, 0.5, 0.9):
        layer = _layer(w, rule="sparsity", value=r)
        zeros = int((layer.ternary_codes() == 0).sum())
        assert zeros == round(r * 1000)
    # hand case: |w| sorted = 0.1, 0.2, 0.3, 0.4; r = 0.5 → k = 2 → Δ = 0.2
    layer = _layer([0.3, -0.1, 0.4, -0.2], rule="sparsity", value=0.5)
    assert float(layer.quantizer.delta(layer.weight)) == pytest.approx(0.2)
    assert layer.ternary_codes().tolist() == [[1, 0, 1, 0]]


def test_rule_values_are_validated():
    with pytest.raises(ConfigError, match="threshold factor"):
        TernaryQuantizer("threshold", 1.5)
    with pytest.raises(ConfigError, match="target sparsity"):
        TernaryQuantizer("sparsity", -0.1)
    with pytest.raises(ConfigError, match="unknown threshold rule"):
        TernaryQuantizer("median", 0.1)


def test_default_keeps_first_conv_and_last_linear_fp():
    model = ternarize(build_model("resnet20"))
    record = quant_record(model)
    assert record["fp_layers"] == ["conv1", "linear"]
    names = [n for n, _ in ternary_layers(model)]
    assert len(names) == 18 and names[0] == "layer1.0.conv1" and names[-1] == "layer3.2.conv2"
    assert isinstance(model.conv1, nn.Conv2d) and not isinstance(model.conv1, TernaryConv2d)
    assert isinstance(model.layer1[0].conv1, TernaryConv2d)


def test_keep_fp_globs_and_per_layer_thresholds():
    model = ternarize(build_model("resnet20"), keep_fp=["conv1", "linear", "layer3.*"],
                      threshold={"layer1.*": 0.1, "*": 0.05})
    rec = quant_record(model)
    assert all(n.startswith("layer3") for n in rec["fp_layers"] if n not in ("conv1", "linear"))
    assert len(rec["layers"]) == 12
    assert rec["layers"]["layer1.2.conv2"]["value"] == 0.1
    assert rec["layers"]["layer2.0.conv1"]["value"] == 0.05
    all_ternary = ternarize(build_model("resnet20"), keep_fp=[])
    assert len(list(ternary_layers(all_ternary))) == 20


def test_bad_layer_selections_are_config_errors():
    with pytest.raises(ConfigError, match="matches no conv/linear layer"):
        ternarize(build_model("resnet20"), keep_fp=["layer9.*"])
    with pytest.raises(ConfigError, match="no threshold value for ternary layer"):
        ternarize(build_model("resnet20"), threshold={"layer1.*": 0.1})
    with pytest.raises(ConfigError, match="match no ternary layer"):
        ternarize(build_model("resnet20"), threshold={"layer7.*": 0.1, "*": 0.05})
    with pytest.raises(ConfigError, match="already ternarized"):
        ternarize(ternarize(build_model("resnet20")))


def test_quantization_off_equals_float_layer():
    torch.manual_seed(0)
    fp = build_model("resnet20").eval()
    tq = ternarize(copy.deepcopy(fp)).eval()
    x = torch.randn(4, 3, 32, 32)
    for _, layer in ternary_layers(tq):
        layer.quantize_enabled = False
    assert torch.equal(fp(x), tq(x))
    for _, layer in ternary_layers(tq):
        layer.quantize_enabled = True
    assert not torch.allclose(fp(x), tq(x))


def test_scales_initialised_least_squares_and_clamped():
    layer = _layer([0.9, 0.3, 0.02, -0.5, -0.1], value=0.1)  # Δ = 0.09
    q = layer.quantizer
    q.init_scales_(layer.weight)
    assert q.wp.item() == pytest.approx((0.9 + 0.3) / 2)   # mean of w over w > Δ
    assert q.wn.item() == pytest.approx((0.5 + 0.1) / 2)   # mean of -w over w < -Δ
    with torch.no_grad():
        q.wp.fill_(-0.3)
    q.clamp_scales_()
    assert q.wp.item() == pytest.approx(q.min_scale) and q.wn.item() == pytest.approx(0.3)


def test_export_has_exactly_three_values_and_matches_forward():
    torch.manual_seed(0)
    model = ternarize(build_model("resnet20"))
    exported = export_ternary(model)
    assert list(exported) == [n for n, _ in ternary_layers(model)]
    for name, e in exported.items():
        layer = model.get_submodule(name)
        assert e.codes.dtype == torch.int8
        assert set(e.weight.unique().tolist()) <= {-e.wn, 0.0, e.wp}
        assert len(e.weight.unique()) == 3
        recon = e.wp * (e.codes == 1).float() - e.wn * (e.codes == -1).float()
        assert torch.equal(recon, e.weight)
        assert torch.allclose(layer.effective_weight().detach(), e.weight)
        assert not torch.equal(layer.weight.detach(), e.weight)  # not the latent weights


def test_layer_weight_stats_fractions():
    model = ternarize(build_model("resnet20"))
    stats = layer_weight_stats(model)
    for name, s in stats.items():
        codes = model.get_submodule(name).ternary_codes()
        n = codes.numel()
        assert s["frac_pos"] == pytest.approx(int((codes == 1).sum()) / n)
        assert s["frac_neg"] == pytest.approx(int((codes == -1).sum()) / n)
        assert s["frac_pos"] + s["frac_zero"] + s["frac_neg"] == pytest.approx(1.0)


def test_quant_record_replays_exactly():
    torch.manual_seed(0)
    model = ternarize(build_model("resnet20"), rule="sparsity", threshold={"layer2.*": 0.7, "*": 0.4})
    rec = quant_record(model)
    rebuilt = apply_quant_record(build_model("resnet20"), rec)
    rebuilt.load_state_dict(model.state_dict())
    assert quant_record(rebuilt) == rec
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.eval()(x), rebuilt.eval()(x))
    assert math.isclose(rec["layers"]["layer2.1.conv1"]["value"], 0.7)


@pytest.mark.parametrize("scale_grad", [True, False])
def test_grouped_path_equals_per_layer_reference(scale_grad):
    """The one-call-per-forward path must give the per-layer reference's numbers: ternary
    outputs, all three gradients and the gradient statistics."""
    torch.manual_seed(0)
    base = build_model("resnet20")
    ref = ternarize(copy.deepcopy(base), grouped=False, scale_grad=scale_grad)
    grp = ternarize(copy.deepcopy(base), grouped=True, scale_grad=scale_grad)
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 3])
    for model in (ref, grp):
        for _, layer in ternary_layers(model):
            layer.quantizer.grad_stats = torch.zeros(9, dtype=torch.float64)
        torch.nn.functional.cross_entropy(model(x), y).backward()
    assert torch.allclose(ref(x), grp(x), atol=1e-6)
    for (name, a), (_, b) in zip(ternary_layers(ref), ternary_layers(grp)):
        assert a._handed_weight is None and b._handed_weight is None  # nothing kept after forward
        assert torch.allclose(a.weight.grad, b.weight.grad, rtol=1e-5, atol=1e-8), name
        for p in ("wp", "wn"):
            ga, gb = getattr(a.quantizer, p).grad, getattr(b.quantizer, p).grad
            assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-7), (name, p)
        assert torch.allclose(a.quantizer.grad_stats, b.quantizer.grad_stats, rtol=1e-5), name
        assert float(a.quantizer.last_delta) == pytest.approx(float(b.quantizer.last_delta))


def test_grouped_weight_is_not_reused_after_an_update():
    """A layer called on its own after its latent weight changed must not use the ternary
    weight handed out by the last model forward."""
    torch.manual_seed(0)
    model = ternarize(build_model("resnet20"))
    layer = model.layer1[0].conv1
    x = torch.randn(1, 16, 8, 8)
    model(torch.randn(1, 3, 32, 32))
    with torch.no_grad():
        layer.weight.mul_(-1)  # flips every code
    expected = torch.nn.functional.conv2d(x, layer.quantizer(layer.weight), padding=1)
    assert torch.equal(layer(x), expected)
