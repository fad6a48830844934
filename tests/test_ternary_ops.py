"""ttq_analysis.ternary_ops against a plain-Python brute-force enumerator.

The enumerator walks batch × output channel × output position × input channel of the
group × kernel taps, computes each input coordinate from stride/padding/dilation (a tap
on padding reads a zero input) and counts n+, n−, the dense n and effective MACs itself,
and whether the output's receptive field holds any nonzero input (the "window"
definition of a computed output: n − 1 additions and one multiplication per sign of its
filter; ``partial_sums="exact"``: max(n − 1, 0) and one per non-empty partial sum).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ttq_analysis.ternary_ops import MeasuredOps, dense_ternary_ops
from ttq_core.quantize.layers import TernaryConv2d, TernaryLinear, TernaryQuantizer

from conftest import CIFAR_ARCHIVE, REPO, needs_cifar


# --- brute force --------------------------------------------------------------------------

def _ops(n_pos: int, n_neg: int) -> tuple[int, int]:
    n = n_pos + n_neg
    return max(n - 1, 0), int(n_pos > 0) + int(n_neg > 0)


def _window_ops(computed: bool, n: int, filter_pos: int, filter_neg: int) -> tuple[int, int]:
    """A computed output (nonzero input in its receptive field) with a nonzero filter: n − 1
    additions (−1 when all its nonzero inputs meet zero weights) and one multiplication per
    sign its filter holds; an output with an all-zero receptive field: nothing."""
    if not computed or filter_pos + filter_neg == 0:
        return 0, 0
    return n - 1, int(filter_pos > 0) + int(filter_neg > 0)


def brute_conv(x, codes, stride, padding, dilation, groups):
    """Totals over the batch: dense adds/mults, measured adds/mults, effective MACs.

    ``padding`` is (top, left) offsets; output size from the usual formula with
    symmetric padding (callers pass (pad_h, pad_w))."""
    X, Wc = x.tolist(), codes.tolist()
    N, C, H, W = x.shape
    O, Cg, KH, KW = codes.shape
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    Ho = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    Og = O // groups
    tot = dict(dense_adds=0, dense_mults=0, adds=0, mults=0, macs=0, win_adds=0, win_mults=0)
    for b in range(N):
        for o in range(O):
            g = o // Og
            for oy in range(Ho):
                for ox in range(Wo):
                    dp = dn = mp = mn = macs = seen = 0
                    for ci in range(Cg):
                        c = g * Cg + ci
                        for ky in range(KH):
                            iy = oy * sh - ph + ky * dh
                            for kx in range(KW):
                                ix = ox * sw - pw + kx * dw
                                inside = 0 <= iy < H and 0 <= ix < W
                                val = X[b][c][iy][ix] if inside else 0.0
                                w = Wc[o][ci][ky][kx]
                                dp += w == 1
                                dn += w == -1
                                if val != 0:
                                    seen = 1
                                    macs += 1
                                    mp += w == 1
                                    mn += w == -1
                    a, m = _window_ops(bool(seen), mp + mn, dp, dn)
                    tot["win_adds"] += a
                    tot["win_mults"] += m
                    a, m = _ops(dp, dn)
                    tot["dense_adds"] += a
                    tot["dense_mults"] += m
                    a, m = _ops(mp, mn)
                    tot["adds"] += a
                    tot["mults"] += m
                    tot["macs"] += macs
    tot["out_positions"] = Ho * Wo
    return tot


def brute_linear(x, codes):
    """Same totals for a linear layer; x is (N, ..., F), rows per sample = prod(...)."""
    N = x.shape[0]
    rows = x.reshape(N, -1, x.shape[-1]).tolist()
    Wc = codes.tolist()
    tot = dict(dense_adds=0, dense_mults=0, adds=0, mults=0, macs=0, win_adds=0, win_mults=0)
    for sample in rows:
        for row in sample:
            for wrow in Wc:
                dp = sum(w == 1 for w in wrow)
                dn = sum(w == -1 for w in wrow)
                mp = sum(w == 1 and v != 0 for v, w in zip(row, wrow))
                mn = sum(w == -1 and v != 0 for v, w in zip(row, wrow))
                a, m = _ops(dp, dn)
                tot["dense_adds"] += a
                tot["dense_mults"] += m
                a, m = _ops(mp, mn)
                tot["adds"] += a
                tot["mults"] += m
                a, m = _window_ops(any(v != 0 for v in row), mp + mn, dp, dn)
                tot["win_adds"] += a
                tot["win_mults"] += m
                tot["macs"] += sum(v != 0 for v in row)
    tot["out_positions"] = len(rows[0])
    return tot


# --- helpers ------------------------------------------------------------------------------

def random_codes(shape, gen, zero_frac=None):
    zero_frac = float(torch.rand((), generator=gen)) if zero_frac is None else zero_frac
    sign = torch.randint(0, 2, shape, generator=gen) * 2 - 1
    keep = torch.rand(shape, generator=gen) >= zero_frac
    return (sign * keep).to(torch.int8)


def random_input(shape, gen, zero_frac=0.5):
    x = torch.randn(shape, generator=gen)
    return x * (torch.rand(shape, generator=gen) >= zero_frac)


def check(layer, codes, x, expected, images, single_conv):
    adds, mults = dense_ternary_ops(layer, codes, expected["out_positions"])
    assert adds * images == expected["dense_adds"]
    assert mults * images == expected["dense_mults"]
    m = MeasuredOps(layer, codes, partial_sums="exact", single_conv=single_conv)
    m.update(x)
    assert m.single_conv == bool(single_conv if single_conv is not None else True)
    assert (m.images, m.effective_adds, m.effective_mults, m.effective_macs) == (
        images, expected["adds"], expected["mults"], expected["macs"])
    per = m.per_image()
    assert per["effective_macs"] == expected["macs"] / images
    assert per["effective_adds"] == expected["adds"] / images
    w = MeasuredOps(layer, codes)   # the default: partial_sums="window"
    w.update(x)
    assert (w.images, w.effective_adds, w.effective_mults, w.effective_macs) == (
        images, expected["win_adds"], expected["win_mults"], expected["macs"])
    # the two definitions differ only on computed outputs with empty (partial) sums
    assert w.effective_adds <= m.effective_adds and w.effective_mults >= m.effective_mults


CONV_CASES = [
    # in, out, k, stride, padding, dilation, groups, H, W
    (3, 4, 3, 1, 0, 1, 1, 6, 7),
    (3, 4, 3, 1, 1, 1, 1, 5, 7),
    (3, 4, 3, 2, 1, 1, 1, 7, 6),
    (3, 4, 3, 2, 0, 1, 1, 8, 5),
    (2, 3, 1, 1, 0, 1, 1, 4, 5),
    (2, 3, 1, 2, 0, 1, 1, 5, 4),
    (2, 3, 3, 1, 2, 2, 1, 6, 5),     # dilation 2
    (4, 6, 3, 1, 1, 1, 2, 5, 6),     # groups 2
    (4, 4, 3, 2, 1, 1, 4, 6, 5),     # depthwise
    (3, 2, (3, 1), (2, 1), (1, 0), (1, 2), 1, 6, 5),  # tuples
]


@pytest.mark.parametrize("single_conv", [None, False])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "-".join(map(str, c)))
def test_conv_matches_brute_force(case, single_conv):
    cin, cout, k, s, p, d, g, H, W = case
    gen = torch.Generator().manual_seed(hash(case) % 2**31)
    conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=False)
    codes = random_codes(conv.weight.shape, gen)
    x = random_input((2, cin, H, W), gen)
    expected = brute_conv(x, codes, conv.stride, conv.padding, conv.dilation, g)
    check(conv, codes, x, expected, 2, single_conv)


@pytest.mark.parametrize("single_conv", [None, False])
@pytest.mark.parametrize("shape", [(3, 10), (2, 4, 10)], ids=["2d", "3d"])
def test_linear_matches_brute_force(shape, single_conv):
    gen = torch.Generator().manual_seed(7 + len(shape))
    lin = nn.Linear(10, 5)
    codes = random_codes(lin.weight.shape, gen, zero_frac=0.4)
    codes[0] = 0                      # a row with no nonzero weight at all
    codes[1] = codes[1].abs()         # a row with only + weights
    codes[2] = 1                      # a full + row: n+ = fan_in under a dense sample
    x = random_input(shape, gen)
    x[0] = 0                          # an all-zero sample (or all-zero rows)
    x[-1] = x[-1].abs() + 0.1         # a sample with no zero input
    expected = brute_linear(x, codes)
    check(lin, codes, x, expected, shape[0], single_conv)


def test_ternary_layer_types_and_half_input():
    gen = torch.Generator().manual_seed(3)
    conv = TernaryConv2d(3, 4, 3, padding=1, bias=False, quantizer=TernaryQuantizer())
    nn.init.normal_(conv.weight, generator=gen)
    codes = conv.ternary_codes()
    x = random_input((2, 3, 5, 4), gen)
    expected = brute_conv(x, codes, (1, 1), (1, 1), (1, 1), 1)
    check(conv, codes, x.to(torch.bfloat16), expected, 2, None)
    lin = TernaryLinear(6, 3, quantizer=TernaryQuantizer(value=0.3))
    codes = lin.ternary_codes()
    assert (codes == 0).any()
    x = random_input((4, 6), gen)
    check(lin, codes, x, brute_linear(x, codes), 4, False)


def test_same_padding_string():
    gen = torch.Generator().manual_seed(11)
    conv = nn.Conv2d(2, 3, 3, padding="same", bias=False)
    codes = random_codes(conv.weight.shape, gen)
    x = random_input((2, 2, 5, 6), gen)
    expected = brute_conv(x, codes, (1, 1), (1, 1), (1, 1), 1)
    check(conv, codes, x, expected, 2, None)


def test_streaming_equals_concatenation():
    gen = torch.Generator().manual_seed(5)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    codes = random_codes(conv.weight.shape, gen)
    batches = [random_input((n, 4, 7, 6), gen) for n in (1, 3, 2)]
    for partial_sums, single_conv in (("exact", None), ("exact", False), ("window", None)):
        streamed = MeasuredOps(conv, codes, partial_sums=partial_sums, single_conv=single_conv)
        for b in batches:
            streamed.update(b)
        whole = MeasuredOps(conv, codes, partial_sums=partial_sums, single_conv=single_conv)
        whole.update(torch.cat(batches))
        got = (streamed.images, streamed.effective_adds, streamed.effective_mults,
               streamed.effective_macs)
        assert got == (whole.images, whole.effective_adds, whole.effective_mults,
                       whole.effective_macs)
        assert streamed.images == 6
        assert streamed.per_image() == whole.per_image()


def test_fp_layer_counts_effective_macs_only():
    gen = torch.Generator().manual_seed(9)
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    x = random_input((3, 3, 6, 5), gen)
    dummy = torch.ones(conv.weight.shape, dtype=torch.int8)
    expected = brute_conv(x, dummy, conv.stride, conv.padding, conv.dilation, 1)
    m = MeasuredOps(conv, None)
    m.update(x)
    assert m.effective_macs == expected["macs"]
    assert m.effective_adds == m.effective_mults == 0
    per = m.per_image()
    assert per["effective_adds"] is None and per["effective_mults"] is None
    assert per["effective_macs"] == expected["macs"] / 3
    lin = nn.Linear(7, 4)
    xl = random_input((5, 2, 7), gen)
    m = MeasuredOps(lin, None)
    m.update(xl)
    assert m.effective_macs == int((xl != 0).sum()) * 4


def test_dense_input_measured_equals_dense_without_padding():
    # With no zero inputs and no padding, measured must equal the dense (paper) counts.
    gen = torch.Generator().manual_seed(13)
    conv = nn.Conv2d(3, 4, 3, bias=False)
    codes = random_codes(conv.weight.shape, gen)
    x = torch.rand((2, 3, 6, 6), generator=gen) + 0.5
    m = MeasuredOps(conv, codes)
    m.update(x)
    adds, mults = dense_ternary_ops(conv, codes, 4 * 4)
    assert (m.effective_adds, m.effective_mults) == (2 * adds, 2 * mults)
    assert m.effective_macs == 2 * 4 * 4 * 4 * 27


def test_large_fan_in_falls_back_to_two_convs_and_stays_exact():
    gen = torch.Generator().manual_seed(17)
    conv = nn.Conv2d(512, 2, 3, padding=1, bias=False)   # fan_in 4608: encoding inexact
    codes = random_codes(conv.weight.shape, gen, zero_frac=0.3)
    x = random_input((1, 512, 2, 3), gen)
    m = MeasuredOps(conv, codes)
    assert not m.single_conv
    with pytest.raises(ValueError, match="not exact"):
        MeasuredOps(conv, codes, single_conv=True)
    expected = brute_conv(x, codes, (1, 1), (1, 1), (1, 1), 1)
    check(conv, codes, x, expected, 1, False)
    # the largest fan_in that still takes the one-conv path is exact too
    conv = nn.Conv2d(455, 1, 3, bias=False)                 # fan_in 4095: B = 4096, B·fan_in < 2**24
    codes = -torch.ones(conv.weight.shape, dtype=torch.int8)
    codes[0, 0, 0, 0] = 1
    x = torch.ones((1, 455, 3, 3))
    m = MeasuredOps(conv, codes)
    assert m.single_conv
    m.update(x)
    assert (m.effective_adds, m.effective_mults) == (4094, 2)


def test_errors():
    conv = nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode"):
        MeasuredOps(conv, None)
    conv = nn.Conv2d(2, 2, 3)
    with pytest.raises(ValueError, match="shape"):
        MeasuredOps(conv, torch.zeros((2, 2, 1, 1), dtype=torch.int8))
    with pytest.raises(ValueError, match="-1, 0"):
        dense_ternary_ops(conv, torch.full((2, 2, 3, 3), 2, dtype=torch.int8), 1)
    m = MeasuredOps(conv, None)
    with pytest.raises(ValueError, match="update"):
        m.per_image()
    with pytest.raises(ValueError, match="conv input"):
        m.update(torch.zeros(2, 3, 5, 5))
    with pytest.raises(ValueError, match="nn.Conv2d and"):
        MeasuredOps(nn.Conv1d(2, 2, 3), None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    # cuDNN could pick TF32 or Winograd/FFT algorithms; the counts must still be exact.
    gen = torch.Generator().manual_seed(19)
    conv = nn.Conv2d(256, 32, 3, stride=1, padding=1, bias=False)   # fan_in 2304
    codes = random_codes(conv.weight.shape, gen, zero_frac=0.3)
    x = torch.relu(torch.randn((8, 256, 16, 16), generator=gen))
    for partial_sums, single_conv in (("exact", None), ("exact", False), ("window", None)):
        cpu = MeasuredOps(conv, codes, partial_sums=partial_sums, single_conv=single_conv)
        cpu.update(x)
        gpu = MeasuredOps(conv.cuda(), codes, partial_sums=partial_sums, single_conv=single_conv)
        gpu.update(x.cuda())
        assert (gpu.effective_adds, gpu.effective_mults, gpu.effective_macs) == (
            cpu.effective_adds, cpu.effective_mults, cpu.effective_macs)
        conv.cpu()


# --- the two definitions of a computed output, brute force by enumerating receptive fields -

def test_window_definition_worked_example():
    # The module doc's example: weights [+, +, 0, −].  Inputs [a, 0, c, d]: both definitions
    # agree (n = 2: 1 addition, 2 multiplications).  Inputs [0, 0, c, d]: n+ = 0, n− = 1:
    # exact 0 additions, 1 multiplication; window (c, d ≠ 0, so computed): n − 1 = 0
    # additions, one multiplication per sign of the filter = 2.  Inputs [0, 0, c, 0]: n = 0:
    # exact 0 and 0; window n − 1 = −1 and 2.  Inputs all zero: nothing in either.
    lin = nn.Linear(4, 1, bias=False)
    codes = torch.tensor([[1, 1, 0, -1]], dtype=torch.int8)
    for x, exact, window in (([2., 0., 3., 4.], (1, 2), (1, 2)),
                             ([0., 0., 3., 4.], (0, 1), (0, 2)),
                             ([0., 0., 3., 0.], (0, 0), (-1, 2)),
                             ([0., 0., 0., 0.], (0, 0), (0, 0))):
        for partial_sums, want in (("exact", exact), ("window", window)):
            m = MeasuredOps(lin, codes, partial_sums=partial_sums)
            m.update(torch.tensor([x]))
            assert (m.effective_adds, m.effective_mults) == want, (x, partial_sums)
    with pytest.raises(ValueError, match="partial_sums"):
        MeasuredOps(lin, codes, partial_sums="nearly")


def unfold_counts(x, codes, stride, padding):
    """Both definitions by enumerating every receptive field (``F.unfold``: the input taps of
    each output position, padding as zeros) and every filter, elementwise: no convolution
    and no usage map, so independent of ``MeasuredOps``' reductions."""
    n_img = x.shape[0]
    k = codes.shape[2:]
    taps = F.unfold((x != 0).float(), k, padding=padding, stride=stride).bool()  # (N, C·K, L)
    pos = (codes > 0).flatten(1).bool()                                          # (O, C·K)
    neg = (codes < 0).flatten(1).bool()
    hit_pos = (taps[:, None] & pos[None, :, :, None]).sum(2)                     # (N, O, L)
    hit_neg = (taps[:, None] & neg[None, :, :, None]).sum(2)
    n = hit_pos + hit_neg
    computed = taps.any(1)[:, None, :].expand_as(n)                               # (N, O, L)
    f_pos, f_neg = pos.any(1)[None, :, None], neg.any(1)[None, :, None]
    f_any = f_pos | f_neg
    exact = (int((n - 1).clamp(min=0).sum()), int((hit_pos > 0).sum() + (hit_neg > 0).sum()))
    window = (int(((n - 1) * (computed & f_any)).sum()),
              int((computed & f_pos).sum() + (computed & f_neg).sum()))
    macs = int(taps.sum()) * codes.shape[0]
    return {"exact": exact, "window": window, "macs": macs, "images": n_img}


def check_both(conv, codes, x):
    want = unfold_counts(x, codes, conv.stride, conv.padding)
    for partial_sums in ("exact", "window"):
        m = MeasuredOps(conv, codes, partial_sums=partial_sums)
        for part in x.split(3):     # streamed in uneven batches
            m.update(part)
        assert (m.effective_adds, m.effective_mults) == want[partial_sums], partial_sums
        assert (m.images, m.effective_macs) == (want["images"], want["macs"])
    return want


RESNET20_SHAPES = [  # in, out, stride, H = W: every ternary conv shape of ResNet-20
    (16, 16, 1, 32), (16, 32, 2, 32), (32, 32, 1, 16), (32, 64, 2, 16), (64, 64, 1, 8)]


@pytest.mark.parametrize("shape", RESNET20_SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_resnet20_shapes_synthetic(shape):
    c_in, c_out, stride, hw = shape
    gen = torch.Generator().manual_seed(c_in * 7 + stride)
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
    codes = random_codes(conv.weight.shape, gen, zero_frac=0.6)
    codes[0] = 0                                  # an all-zero filter
    codes[1][codes[1] < 0] = 0                    # a filter with + weights only
    codes[2] = 0
    codes[2, c_in // 2:] = 1                      # + weights only on the upper channels
    x = torch.relu(torch.randn((5, c_in, hw, hw), generator=gen))
    x[:, :, : hw // 2, : hw // 2] = 0             # an all-zero corner: uncomputed outputs
    x[:, c_in // 2:, hw // 2:, :] = 0             # half the channels off: empty partial sums
    want = check_both(conv, codes, x)
    assert want["exact"] != want["window"]        # the case separates the two definitions


@needs_cifar
def test_resnet20_real_activations():
    # The shipped ternary ResNet-20 on real test images: the inputs of a stride-1 layer
    # (the sparsest, where empty partial sums are most frequent) and both stride-2 layers.
    from ttq_core.checkpoint import load_model
    from ttq_core.data import cifar10_split
    loaded = load_model(REPO / "benchmarks" / "results" / "cpu-2026-11-27" / "resnet20_ttq_best.pt",
                        device=torch.device("cpu"))
    model = loaded.model.eval()
    data = cifar10_split("test", loaded.checkpoint["normalization"], str(CIFAR_ARCHIVE), limit=6,
                         progress=False)
    x, _ = next(data.batches(6))
    names = ("layer1.2.conv2", "layer2.0.conv1", "layer3.0.conv1")
    seen = {}
    handles = [model.get_submodule(n).register_forward_pre_hook(
        lambda _m, args, n=n: seen.__setitem__(n, args[0].detach().clone())) for n in names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    for name in names:
        layer = model.get_submodule(name)
        check_both(layer, layer.ternary_codes(), seen[name])
