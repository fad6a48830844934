"""Weight formats other than ternary (issue 21): binary and int4/int8 layers are recognised,
counted as the hardware does them, and costed.

* counts of a BINARY and an INT4 layer against a plain-Python brute-force enumerator (the
  approach of tests/test_ternary_ops.py: loop over outputs and their input taps, a tap on
  padding reads a zero), on a hand-made input with zeros and on a real CIFAR-10 image;
* detection verdicts on hand-built plain layers (binary per channel, ternary, an int4 grid,
  16 values off any grid, int8, float) and on toolkit layers of another method;
* the energy of one binary and one int4 layer worked by hand (comments), the derived
  int4 x int8 multiplication flagged.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from ttq_analysis import analyze
from ttq_analysis.energy import DERIVED_OPS, derived_ops, energy_columns, load_energy_model
from ttq_analysis.ternary_ops import MeasuredOps, dense_ternary_ops
from ttq_analysis.weight_formats import WEIGHT_FORMATS, int_grid, layer_format
from ttq_core.quantize.layers import TernaryConv2d, TernaryLinear, TernaryQuantizer

from conftest import CIFAR_ARCHIVE, needs_cifar


# --- brute force --------------------------------------------------------------------------

def brute_conv(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> dict:
    """Per-image-batch totals for a groups=1 conv with float ``weight``: dense and measured
    additions and multiplications of a BINARY layer (one α_c per output), dense and
    measured MACs.  Every output, every tap, in Python."""
    X, Wt = x.tolist(), weight.tolist()
    N, C, H, W = x.shape
    O, _, KH, KW = weight.shape
    Ho = (H + 2 * padding - KH) // stride + 1
    Wo = (W + 2 * padding - KW) // stride + 1
    t = dict(dense_adds=0, dense_mults=0, exact_adds=0, exact_mults=0, win_adds=0,
             win_mults=0, macs=0, eff_macs=0)
    for b in range(N):
        for o in range(O):
            for oy in range(Ho):
                for ox in range(Wo):
                    dense_n = n = seen = 0
                    for c in range(C):
                        for ky in range(KH):
                            for kx in range(KW):
                                iy, ix = oy * stride - padding + ky, ox * stride - padding + kx
                                inside = 0 <= iy < H and 0 <= ix < W
                                v = X[b][c][iy][ix] if inside else 0.0
                                w = Wt[o][c][ky][kx]
                                t["macs"] += 1
                                dense_n += w != 0
                                if v != 0:
                                    seen = 1
                                    t["eff_macs"] += 1
                                    n += w != 0
                    # binary: max(n - 1, 0) additions, ONE scale multiplication per output
                    t["dense_adds"] += max(dense_n - 1, 0)
                    t["dense_mults"] += int(dense_n > 0)
                    t["exact_adds"] += max(n - 1, 0)
                    t["exact_mults"] += int(n > 0)
                    if seen and dense_n:  # window: a nonzero input in the receptive field
                        t["win_adds"] += n - 1
                        t["win_mults"] += 1
    t["positions"] = Ho * Wo
    return t


def binary_weight(shape, alphas, gen) -> torch.Tensor:
    sign = torch.randint(0, 2, shape, generator=gen).float() * 2 - 1
    return sign * torch.tensor(alphas).view(-1, *([1] * (len(shape) - 1)))


def int_weight(shape, steps, q, gen) -> torch.Tensor:
    k = torch.randint(-q, q + 1, shape, generator=gen).float()
    return k * torch.tensor(steps).view(-1, *([1] * (len(shape) - 1)))


def input_with_zeros(shape, gen) -> torch.Tensor:
    x = torch.relu(torch.randn(shape, generator=gen))
    x[:, :, :2, :2] = 0          # an all-zero corner: outputs with nothing to compute
    x[:, 1] = 0                  # a whole channel off
    return x


def check_binary_counts(conv: nn.Conv2d, x: torch.Tensor) -> None:
    want = brute_conv(x, conv.weight.detach(), conv.stride[0], conv.padding[0])
    codes = torch.sign(conv.weight.detach()).to(torch.int8)
    adds, mults = dense_ternary_ops(conv, codes, want["positions"], scale_mults="per_output")
    assert (adds * x.shape[0], mults * x.shape[0]) == (want["dense_adds"], want["dense_mults"])
    for partial_sums, key in (("window", "win"), ("exact", "exact")):
        m = MeasuredOps(conv, codes, partial_sums=partial_sums, scale_mults="per_output")
        m.update(x)
        assert (m.effective_adds, m.effective_mults, m.effective_macs) == (
            want[f"{key}_adds"], want[f"{key}_mults"], want["eff_macs"]), partial_sums


# --- counts -------------------------------------------------------------------------------

@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 0)])
def test_binary_counts_match_brute_force(stride, padding):
    gen = torch.Generator().manual_seed(stride * 10 + padding)
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=padding, bias=False)
    with torch.no_grad():
        conv.weight.copy_(binary_weight(conv.weight.shape, [0.5, 0.25, 1.0, 0.125], gen))
    check_binary_counts(conv, input_with_zeros((2, 3, 6, 5), gen))


@needs_cifar
def test_binary_counts_on_a_real_cifar_image():
    from ttq_core.data import cifar10_split
    data = cifar10_split("test", None, str(CIFAR_ARCHIVE), limit=10, progress=False)
    x, _ = next(data.batches(10))
    x = torch.relu(x[:1, :, :8, :8])          # a real 8x8 patch; ReLU leaves real zeros
    assert 0 < float((x == 0).float().mean()) < 1
    gen = torch.Generator().manual_seed(5)
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(binary_weight(conv.weight.shape, [0.3, 0.7, 0.1, 2.0], gen))
    check_binary_counts(conv, x)


class Tiny(nn.Module):
    """A binary conv, an int4 conv (stride 2, bias) and a float linear layer."""

    def __init__(self, gen):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(4, 5, 3, stride=2, padding=1)
        self.fc = nn.Linear(5 * 3 * 3, 3)
        with torch.no_grad():
            self.conv1.weight.copy_(binary_weight(self.conv1.weight.shape,
                                                  [0.5, 0.25, 1.0, 0.125], gen))
            self.conv2.weight.copy_(int_weight(self.conv2.weight.shape,
                                               [0.01, 0.02, 0.005, 0.04, 0.03], 7, gen))

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        return self.fc(torch.relu(self.conv2(x)).flatten(1))


def test_analyze_counts_binary_and_int4_layers_like_brute_force():
    gen = torch.Generator().manual_seed(11)
    model = Tiny(gen).eval()
    x = input_with_zeros((3, 3, 6, 6), gen)
    seen = {}
    hooks = [getattr(model, n).register_forward_pre_hook(
        lambda _m, args, n=n: seen.__setitem__(n, args[0].detach().clone()))
        for n in ("conv1", "conv2")]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    a = analyze(model, data=x, input_shape=(3, 6, 6), device="cpu", progress=False)
    rows = a.layers.set_index("layer")
    assert list(rows["weight_format"]) == ["binary", "int4", "fp"]
    assert list(rows["ternary"]) == [False, False, False]

    b = rows.loc["conv1"]
    want = brute_conv(seen["conv1"], model.conv1.weight.detach(), 1, 1)
    assert b["ternary_adds"] * 3 == want["dense_adds"]       # dense: per image
    assert b["ternary_mults"] * 3 == want["dense_mults"]     # one α_c per output
    assert b["effective_adds"] * 3 == want["win_adds"]       # measured, window
    assert b["effective_mults"] * 3 == want["win_mults"]
    assert b["effective_macs"] * 3 == want["eff_macs"]
    assert b["weight_bits"] == 1 * 108 + 32 * 4              # 1 bit + 32 per channel's α
    assert math.isnan(b["wp"]) and math.isnan(b["wn"])

    i4 = rows.loc["conv2"]
    want = brute_conv(seen["conv2"], model.conv2.weight.detach(), 2, 1)
    assert i4["macs"] * 3 == want["macs"]                     # fvcore's dense MACs
    assert i4["effective_macs"] * 3 == want["eff_macs"]       # MACs with a nonzero input
    assert math.isnan(i4["ternary_adds"]) and math.isnan(i4["effective_adds"])
    assert i4["weight_bits"] == 4 * 180 + 32 * 5 + 32 * 5     # 4 bits + step + bias
    assert i4["weight_sparsity"] == int((model.conv2.weight == 0).sum()) / 180

    net = a.network
    assert net.quantized and not net.ternary and net.own_precision == "ttq"
    assert net.weight_format == "mixed" and net.quantized_layers == 2
    assert net.counts.ternary_adds == b["ternary_adds"]       # the add-only layers only
    assert net.counts.fp_layer_macs == rows.loc["fc", "macs"]
    v = a.meta["weight_formats"]["layers"]
    assert [v[n]["format"] for n in ("conv1", "conv2", "fc")] == ["binary", "int4", "fp"]
    assert a.meta["weight_formats"]["formats"] == ["binary", "int4"]
    assert a.meta["ternary_detection"]["layers"]["conv1"]["ternary"] is False
    assert "int_energy" in a.meta["conventions"]
    # fp32 activations: int4 x fp32 multiplies at fp32, the derived number is recorded, unused
    d = a.meta["derived_energies"]["int4xint8_mult"]
    assert d["derived"] and d["used"] is False and d["pJ"] == pytest.approx(0.1)
    # the JSON round trip keeps the formats
    back = type(a).from_json(a.to_json())
    assert back.network.weight_format == "mixed" and back.network.quantized_layers == 2
    assert list(back.layers["weight_format"]) == ["binary", "int4", "fp"]


# --- detection ----------------------------------------------------------------------------

def _linear(weight: torch.Tensor) -> nn.Linear:
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(weight)
    return lin


def test_detection_verdicts_on_hand_built_layers():
    gen = torch.Generator().manual_seed(3)
    # binary, one α per output channel (several magnitudes: not ternary)
    v = layer_format(_linear(binary_weight((4, 20), [0.5, 0.25, 1.0, 0.125], gen)))
    assert v.format == "binary" and v.source == "values" and "±α_c" in v.how
    assert set(v.codes.unique().tolist()) == {-1, 1}
    # one layer-wide {-a, +a}: binary (1 bit, one multiplication), not ternary
    v = layer_format(_linear(binary_weight((3, 20), [0.5, 0.5, 0.5], gen)))
    assert v.format == "binary" and v.ternary_detection.ternary
    # {-a, +b}, a != b in every channel: two multiplications, so not binary; layer-wide: ternary
    w = torch.where(torch.rand((3, 20), generator=gen) > 0.5, 0.3, -0.7)
    assert layer_format(_linear(w)).format == "ternary"
    # ternary {-a, 0, +b}: today's rule, unchanged
    w = torch.tensor([[0.3, 0.0, -0.7, 0.3], [0.0, 0.0, 0.3, -0.7]])
    v = layer_format(_linear(w))
    assert v.format == "ternary" and (v.wp, v.wn) == (pytest.approx(0.3), pytest.approx(0.7))
    # int4: per-channel steps, k in [-7, 7], zeros included
    v = layer_format(_linear(int_weight((4, 64), [0.01, 0.02, 0.005, 0.04], 7, gen)))
    assert v.format == "int4" and "grid k·s_c" in v.how and v.values <= 15
    # the grid is found when the smallest value and gap are multiples of the step
    assert int_grid(torch.tensor([2.0, 5.0, -3.0]).double().numpy() * 0.1, 1e-9, 4)[1:] == (-3, 5)
    # 16 distinct values per channel, NOT on a uniform grid: not an integer format
    off = torch.linspace(-1, 1, 16) + 0.013 * torch.arange(16) ** 2
    v = layer_format(_linear(off.repeat(3, 2)))
    assert v.format == "fp" and v.values == 16
    assert v.how.startswith("not an integer format: output channel 0 has 16 distinct")
    # int8: 200 values on a grid with |k| up to 127
    k = torch.arange(-100, 100).float()
    v = layer_format(_linear(torch.stack([k * 0.001, k.flip(0) * 0.03])))
    assert v.format == "int8" and v.values == 200
    # 16 values on a grid too wide for 4 bits (k up to 30): int8, not int4
    v = layer_format(_linear((torch.arange(16).float() * 2 - 15).repeat(2, 1) * 0.1))
    assert v.format == "int8"
    # a float layer: full precision, with the reason
    v = layer_format(nn.Linear(300, 4))
    assert v.format == "fp" and "more than 256 distinct" in v.how


class _OtherMethodConv(TernaryConv2d):
    """Stands in for a toolkit layer of another method (issue 21's contract): a
    TernaryConv2d whose quantizer.method names the method and whose effective_weight()
    returns that method's values."""

    def __init__(self, method: str, quantized: torch.Tensor):
        o, i, kh, kw = quantized.shape
        super().__init__(i, o, (kh, kw), padding=1, bias=False, quantizer=TernaryQuantizer())
        self.quantizer.method = method
        self.quantized = quantized

    def effective_weight(self):
        return self.quantized


def test_toolkit_layers_are_recognised_by_their_method():
    gen = torch.Generator().manual_seed(4)
    bwn = _OtherMethodConv("bwn", binary_weight((4, 3, 3, 3), [0.5, 0.25, 1.0, 0.125], gen))
    v = layer_format(bwn)
    assert (v.format, v.source, v.method) == ("binary", "quantizer", "bwn")
    assert torch.equal(v.codes, torch.sign(bwn.quantized).to(torch.int8))
    v = layer_format(_OtherMethodConv("int4", int_weight((4, 3, 3, 3), [0.1] * 4, 7, gen)))
    assert (v.format, v.codes) == ("int4", None)
    ttq = TernaryLinear(8, 4, quantizer=TernaryQuantizer())
    assert layer_format(ttq).format == "ternary"           # no method attribute: ttq
    ttq.quantize_enabled = False
    assert layer_format(ttq).format == "fp"
    assert WEIGHT_FORMATS["int8"].weight_bits(100, 4, 4) == 8 * 100 + 32 * 4 + 32 * 4


@pytest.mark.parametrize("method,fmt", [("twn", "ternary"), ("bwn", "binary"), ("int4", "int4"),
                                        ("int8", "int8")])
def test_toolkit_methods_and_their_plain_exports_get_the_same_format(method, fmt):
    from ttq_core.quantize import ternarize
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 4))
    ternarize(model, method=method).eval()
    layer = model[2]
    v = layer_format(layer)
    assert (v.format, v.source, v.method) == (fmt, "quantizer", method)
    plain = nn.Conv2d(8, 8, 3, padding=1)
    with torch.no_grad():
        plain.weight.copy_(layer.effective_weight())
    assert layer_format(plain).format == fmt          # the exported values say the same
    a = analyze(model, data=torch.relu(torch.randn(2, 3, 4, 4)), input_shape=(3, 4, 4),
                device="cpu", progress=False)
    assert list(a.layers["weight_format"]) == ["fp", fmt, "fp"]
    assert a.meta["weight_formats"]["method"] == method
    # every quantizer parameter (Wp/Wn, LSQ steps) is left out of the parameter count
    assert a.network.sizes.params == sum(p.numel() for n, p in model.named_parameters()
                                         if ".quantizer." not in f".{n}")


# --- energy -------------------------------------------------------------------------------

def _layer(fmt: str, **counts) -> dict:
    base = dict(layer=fmt, ternary=fmt == "ternary", weight_format=fmt, macs=1000.0,
                ternary_adds=math.nan, ternary_mults=math.nan, effective_adds=math.nan,
                effective_mults=math.nan, effective_macs=400.0, fp_weight_bits=3200.0)
    base.update(counts)
    return base


def test_symmetric_ternary_layers_count_one_scale_multiplication_per_output():
    """A TWN layer has ONE scale α for both signs: an output is α·(Σ under + − Σ under −),
    one multiplication per computed output, not one by Wp and one by Wn (issue 21).  The
    same for its plain export (|Wp − Wn| within the ternary tolerance); a plain {−a, 0, +b}
    with a ≠ b and a toolkit TTQ layer (Wp, Wn trained apart, even at Wp = Wn = 1) keep
    one per sign."""
    from ttq_core.quantize import ternarize
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(6 * 4 * 4, 3))
    ternarize(model, method="twn").eval()     # first conv, last linear kept FP
    twn = model[2]
    with torch.no_grad():                     # filter 0 under Δ = 0.7·mean|w|: all zero
        twn.weight[0] = 1e-4
    codes = twn.ternary_codes().flatten(1)
    nonzero_filters = int((codes != 0).any(1).sum())
    both_signs = int(((codes > 0).any(1) & (codes < 0).any(1)).sum())
    assert nonzero_filters == 5 and both_signs > 0  # the old per-sign count differs
    positions = 4 * 4                         # 8x8 input, stride 2, padding 1
    per_image = positions * nonzero_filters   # one α multiplication per output: 80
    old_rule = positions * int((codes > 0).any(1).sum() + (codes < 0).any(1).sum())
    assert per_image == 80 and old_rule > per_image

    gen = torch.Generator().manual_seed(9)
    x = input_with_zeros((3, 3, 8, 8), gen)
    seen = {}
    hook = twn.register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0].clone()))
    with torch.no_grad():
        model(x)
    hook.remove()
    # brute force on the real inputs of the layer: the binary rule is the symmetric one
    want = brute_conv(seen["x"], twn.effective_weight().detach(), 2, 1)
    assert want["dense_mults"] == 3 * per_image
    for partial_sums, key in (("window", "win"), ("exact", "exact")):
        a = analyze(model, data=x, input_shape=(3, 8, 8), device="cpu", progress=False,
                    partial_sums=partial_sums)
        row = a.layers.set_index("layer").loc["2"]
        assert row["weight_format"] == "ternary"
        assert row["ternary_mults"] == per_image                   # dense, per image
        assert row["ternary_adds"] * 3 == want["dense_adds"]
        assert row["effective_mults"] * 3 == want[f"{key}_mults"], partial_sums
        assert row["effective_adds"] * 3 == want[f"{key}_adds"], partial_sums
    assert "symmetric_ternary" in a.meta["conventions"]
    # stored: 2 bits per weight (4·6·9 = 216 weights) + its one 32-bit α + 6 fp32 biases
    assert row["weight_bits"] == 2 * 216 + 32 + 32 * 6
    assert "one multiplication per output" in a.meta["weight_formats"]["layers"]["2"]["how"]

    # the plain export of the same weights: symmetric by its values, the same count
    plain = nn.Conv2d(4, 6, 3, stride=2, padding=1)
    with torch.no_grad():
        plain.weight.copy_(twn.effective_weight())
    v = layer_format(plain)
    assert (v.format, v.scale_mults) == ("ternary", "per_output")
    assert dense_ternary_ops(plain, v.codes, positions, scale_mults=v.scale_mults)[1] == per_image
    # two magnitudes {−0.7, 0, +0.3}: one multiplication per sign, as before
    w = torch.tensor([[0.3, 0.0, -0.7, 0.3], [0.0, 0.0, 0.3, -0.7]])
    assert layer_format(_linear(w)).scale_mults == "per_sign"
    # a toolkit TTQ layer keeps two, whatever its scales' values (here Wp = Wn = 1)
    ttq = TernaryLinear(8, 4, quantizer=TernaryQuantizer())
    v = layer_format(ttq)
    assert (v.format, v.scale_mults, v.wp, v.wn) == ("ternary", "per_sign", 1.0, 1.0)


def test_energy_of_a_binary_and_an_int4_layer_by_hand():
    # 100 weights in 4 output channels, horowitz45, weights in SRAM (5 pJ / 32 bits).
    # binary: 1 bit per weight + 32 per channel's α = 228 bits -> 228 x 5/32 = 35.625 pJ;
    #   dense 1,000 additions and 10 α multiplications: fp32 1000 x 0.9 + 10 x 3.7 = 937 pJ;
    #   measured 300 additions, 8 multiplications: 300 x 0.9 + 8 x 3.7 = 299.6 pJ.
    # int4: 4 bits per weight + 32 per channel's step = 528 bits -> 82.5 pJ;
    #   fp32 activations: 1,000 MACs at fp32, 1000 x (3.7 + 0.9) = 4,600 pJ (the same as
    #   FP: integer weights save memory only); measured 400 x 4.6 = 1,840 pJ;
    #   int8 activations: int4 x int8 = int8_mult x (4*8)/(8*8) = 0.2 x 0.5 = 0.1 pJ
    #   (DERIVED) + int32_add 0.1 pJ: 1000 x 0.2 = 200 pJ (an int8 layer: 1000 x 0.3 = 300).
    layers = pd.DataFrame([
        _layer("binary", ternary_adds=1000.0, ternary_mults=10.0, effective_adds=300.0,
               effective_mults=8.0, weight_bits=228.0),
        _layer("int4", weight_bits=528.0),
        _layer("int8", weight_bits=928.0),
    ])
    e = energy_columns(layers, "horowitz45")
    assert e.loc[0, "ttq_dense_compute_pJ"] == pytest.approx(937.0)
    assert e.loc[0, "ttq_measured_compute_pJ"] == pytest.approx(299.6)
    assert e.loc[0, "ttq_dense_memory_pJ"] == pytest.approx(35.625)
    assert e.loc[1, "ttq_dense_compute_pJ"] == pytest.approx(4600.0)
    assert e.loc[1, "ttq_measured_compute_pJ"] == pytest.approx(1840.0)
    assert e.loc[1, "ttq_dense_memory_pJ"] == pytest.approx(82.5)
    assert e.loc[1, "fp32_dense_compute_pJ"] == pytest.approx(4600.0)   # the FP twin
    assert e.loc[1, "fp32_dense_memory_pJ"] == pytest.approx(500.0)     # 3200 x 5/32
    e8 = energy_columns(layers, "horowitz45", precision="int8")
    assert e8.loc[1, "ttq_dense_compute_pJ"] == pytest.approx(200.0)
    assert e8.loc[2, "ttq_dense_compute_pJ"] == pytest.approx(300.0)
    assert e8.loc[0, "ttq_dense_compute_pJ"] == pytest.approx(1000 * 0.1 + 10 * 0.2)
    # the derived number: computed from the model by a named rule, flagged
    model = load_energy_model("horowitz45")
    assert "int4xint8_mult" not in model.ops_pJ
    assert DERIVED_OPS["int4xint8_mult"].pJ(model) == pytest.approx(0.1)
    d = derived_ops(model, ["int4"])["int4xint8_mult"]
    assert d["derived"] is True and d["base"] == "int8_mult" and d["factor"] == 0.5
    assert derived_ops(model, ["int8", "binary", "ternary", "fp"]) == {}
    # a layer table written before weight_format: "ternary" decides, as before
    old = layers.drop(columns="weight_format")
    assert energy_columns(old, "horowitz45")["ttq_dense_total_pJ"].isna().all()


# --- reports ------------------------------------------------------------------------------

def test_report_tables_name_the_format_and_flag_the_derived_energy():
    from reports import tables as T
    from reports.labels import method_name, precision_label
    gen = torch.Generator().manual_seed(12)
    model = Tiny(gen).eval()
    x = input_with_zeros((2, 3, 6, 6), gen)
    with torch.no_grad():  # a network of int4 layers only (the linear layer too)
        model.conv1.weight.copy_(int_weight(model.conv1.weight.shape, [0.1] * 4, 7, gen))
        model.fc.weight.copy_(int_weight(model.fc.weight.shape, [0.01] * 3, 7, gen))
    a = analyze(model, data=x, input_shape=(3, 6, 6), device="cpu", progress=False,
                precision="int8")
    assert a.network.weight_format == "int4" and a.meta["derived_energies"]["int4xint8_mult"]["used"]
    assert (method_name(a), precision_label(a)) == ("int4", "int4")
    t3 = T.table3([("tiny", a)])
    assert list(t3.df["precision"]) == ["INT8", "int4"] and t3.title.endswith("INT8 vs int4")
    assert "Savings = INT8 total / int4 total" in t3.caption and "DERIVED" in t3.caption
    cost = T.cost_model_table(a).df.set_index("quantity")
    row = cost.loc["int4xint8 mult (DERIVED)"]
    assert row["value_pJ"] == pytest.approx(0.1) and row["used"]
    assert row["source"].startswith("DERIVED, not a published figure")
    layers = T.layer_table(a)
    assert "weight_format" in layers.df.columns and "ttq = the int4 network" in layers.caption
    # a toolkit checkpoint's method names the row; TTQ keeps "TTQ"
    a.meta["checkpoint"] = {"quant": {"method": "int4"}}
    assert (method_name(a), precision_label(a)) == ("INT4", "int4")
    a.meta["checkpoint"] = {"quant": {"method": "twn"}}
    assert method_name(a) == "TWN"
