"""Bring your own network (README "Bring your own network"): old-style state_dicts, input
normalisation, any nn.Module (``--model module:callable``), ternary weights exported by
other code, the what-if estimate with batch-norm re-estimation, torchvision key names.

Every file and module is built here; expected numbers come from hand calculation, brute
force, or the published figures in ARCHITECTURE.md (ResNet-20 40,551,040 MACs / 269,722
parameters, ResNet-18 11,689,512 parameters, AlexNet 714,188,480 MACs / 61,100,840
parameters) and the data README (CIFAR-10 train-set mean ≈ (0.4913, 0.4821, 0.4465)).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from ttq_analysis import Analysis, analyze
from ttq_analysis.ternary_detect import detect_ternary
from ttq_analysis.what_if import ternarize_untrained
from ttq_core.checkpoint import load_model, save_checkpoint
from ttq_core.data import DeviceData
from ttq_core.errors import CheckpointError, ConfigError
from ttq_core.models import build_model
from ttq_core.normalization import (Normalization, choose_normalization,
                                    normalization_request)
from ttq_core.quantize import ternarize

from conftest import CIFAR_ARCHIVE, needs_cifar

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--data-dir", str(CIFAR_ARCHIVE), "--limit-test", "64", "--what-if-bn-images", "64",
         "--no-progress", "--device", "cpu"]
TORCHVISION_IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision transforms docs / references
TORCHVISION_IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- helpers

def old_style(model: nn.Module, prefix: str = "module.") -> dict:
    """What a pre-0.4.1 CIFAR checkpoint looks like: wrapped, prefixed, no
    num_batches_tracked."""
    sd = {prefix + k: v.clone() for k, v in model.state_dict().items()
          if not k.endswith("num_batches_tracked")}
    return {"state_dict": sd, "best_prec1": 91.25, "epoch": 200}


def report_json(out: Path) -> list[dict]:
    return json.loads((out / "analysis.json").read_text())["networks"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m reports.cli ARGS`` in ``cwd`` (the decoded-array cache is shared)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "reports.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 1, stderr
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ttq-report: error:"), stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


# ----------------------------------------------------------------------------- 1. loading

def test_old_style_state_dict_loads_with_filled_buffers(tmp_path):
    torch.manual_seed(0)
    src = build_model("resnet20")
    path = tmp_path / "resnet20-old.th"
    torch.save(old_style(src), path)
    loaded = load_model(path, arch="resnet20")
    # ResNet-20: one stem BN + 3 stages x 3 blocks x 2 BNs = 19 BatchNorms (option-A shortcuts)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in loaded.model.modules()) == 1 + 3 * 3 * 2
    assert any("Filled 19 missing buffer(s)" in n for n in loaded.notes)
    assert any("'module.'" in n for n in loaded.notes)
    for k, v in src.state_dict().items():
        got = loaded.model.state_dict()[k]
        assert torch.equal(got, torch.zeros_like(v) if k.endswith("num_batches_tracked") else v)
    assert sum(p.numel() for p in loaded.model.parameters()) == 269_722  # ARCHITECTURE.md


def test_nested_wrapper_prefixes_and_bare_dicts_load(tmp_path):
    src = build_model("resnet20")
    for prefix, key in (("_orig_mod.module.", "model"), ("module._orig_mod.", "net")):
        path = tmp_path / f"{key}.pt"
        torch.save({key: old_style(src, prefix)["state_dict"]}, path)
        loaded = load_model(path, arch="resnet20")
        notes = " ".join(loaded.notes)
        assert prefix.split(".")[0] in notes and prefix.split(".")[1] in notes
    bare = tmp_path / "bare.pt"
    torch.save(src.state_dict(), bare)
    assert load_model(bare, arch="resnet20").notes == []  # nothing repaired, nothing said


def test_genuinely_missing_or_misshapen_weights_still_fail(tmp_path):
    src = build_model("resnet20")
    ckpt = old_style(src)
    del ckpt["state_dict"]["module.layer2.0.bn1.running_var"]  # statistics: not defaultable
    torch.save(ckpt, tmp_path / "a.th")
    with pytest.raises(CheckpointError, match=r"missing keys: layer2\.0\.bn1\.running_var"):
        load_model(tmp_path / "a.th", arch="resnet20")
    ckpt = old_style(src)
    ckpt["state_dict"]["module.conv1.weight"] = torch.zeros(16, 3, 5, 5)
    torch.save(ckpt, tmp_path / "b.th")
    with pytest.raises(CheckpointError, match=r"shape mismatches: conv1\.weight"):
        load_model(tmp_path / "b.th", arch="resnet20")


# ----------------------------------------------------------------------------- 2. normalisation

def test_normalization_flags_are_checked():
    with pytest.raises(ConfigError, match="not both"):
        normalization_request("imagenet", [0.5], [0.2])
    with pytest.raises(ConfigError, match="go together"):
        normalization_request(None, [0.5, 0.5, 0.5], None)
    with pytest.raises(ConfigError, match="1 or 3 values"):
        normalization_request(None, [0.5, 0.5], [0.2, 0.2])
    with pytest.raises(ConfigError, match="positive"):
        normalization_request(None, [0.5], [0.0])
    r = normalization_request(None, [0.5], [0.25])  # one value applies to every channel
    assert r.mean == (0.5, 0.5, 0.5) and r.std == (0.25, 0.25, 0.25)
    assert normalization_request() is None


def test_normalization_precedence():
    named = {"imagenet": Normalization(TORCHVISION_IMAGENET_MEAN, TORCHVISION_IMAGENET_STD, "tv")}
    default = Normalization((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), "default")
    recorded = {"mean": [0.7, 0.7, 0.7], "std": [0.3, 0.3, 0.3]}
    req = normalization_request("imagenet")
    n = choose_normalization(recorded, req, named, default)  # the checkpoint's own wins
    assert n.mean == (0.7, 0.7, 0.7) and "recorded in the checkpoint" in n.origin
    assert "--normalization imagenet was not applied to it" in n.origin
    same = {"mean": list(TORCHVISION_IMAGENET_MEAN), "std": list(TORCHVISION_IMAGENET_STD)}
    n = choose_normalization(same, req, named, default)  # a record equal to the request
    assert n.origin == "recorded in the checkpoint (the same statistics as --normalization imagenet)"
    n = choose_normalization(None, req, named, default)
    assert n.mean == TORCHVISION_IMAGENET_MEAN and n.origin.startswith("--normalization imagenet")
    assert choose_normalization(None, None, named, default) is default
    n = choose_normalization(None, normalization_request(None, [0.5], [0.25]), named, default)
    assert n.std == (0.25,) * 3 and "--mean 0.5 0.5 0.5 --std 0.25 0.25 0.25" in n.origin
    with pytest.raises(ConfigError, match="not available"):
        choose_normalization(None, normalization_request("cifar10"), named, default)


@needs_cifar
def test_measurement_data_normalises_as_chosen():
    from ttq_core.datasets import dataset_spec
    data = dataset_spec("cifar10").measurement(str(CIFAR_ARCHIVE), limit=16, progress=False)
    cifar = data.named_normalizations["cifar10"]
    for got, readme in zip(cifar.mean, (0.4913, 0.4821, 0.4465)):  # shared/data/README.md
        assert got == pytest.approx(readme, abs=1e-3)
    assert data.default_normalization.mean == cifar.mean
    norm = data.normalization_for(None, normalization_request("imagenet"))
    assert norm.mean == TORCHVISION_IMAGENET_MEAN and norm.std == TORCHVISION_IMAGENET_STD
    src = data.batches_for(norm)
    x, _ = next(src.batches(16))
    raw = src.images[:16].float() / 255.0
    mean = torch.tensor(TORCHVISION_IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(TORCHVISION_IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (raw - mean) / std)


# ----------------------------------------------------------------------------- 3. any nn.Module

class MixedConvNet(nn.Module):
    """Stem conv, depthwise conv, grouped 1x1 conv, linear head (32x32 RGB inputs)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.grouped = nn.Conv2d(8, 16, 1, groups=4)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = torch.relu(self.grouped(torch.relu(self.depthwise(x))))
        return self.head(x.mean((2, 3)))


class TinyTransformerBlock(nn.Module):
    """Pre-norm single-head attention and MLP over (T, D) tokens, written with matmul."""

    def __init__(self, d=16, hidden=32):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)
        self.scale = d ** -0.5

    def forward(self, x):
        h = self.norm1(x)
        att = torch.softmax(torch.matmul(self.q(h), self.k(h).transpose(-2, -1)) * self.scale, -1)
        x = x + self.o(torch.matmul(att, self.v(h)))
        return x + self.fc2(torch.relu(self.fc1(self.norm2(x))))


def test_any_module_convs_of_any_shape_counted_by_hand():
    torch.manual_seed(0)
    a = analyze(MixedConvNet(), data=torch.randn(4, 3, 32, 32), input_shape=(3, 32, 32),
                device="cpu", progress=False)
    macs = dict(zip(a.layers["layer"], a.layers["macs"]))
    # output positions x output channels x (in_channels / groups) x kernel area
    assert macs == {"stem": 32 * 32 * 8 * 3 * 9, "depthwise": 32 * 32 * 8 * 1 * 9,
                    "grouped": 32 * 32 * 16 * 2 * 1, "head": 16 * 10}
    assert list(a.layers["params"]) == [8 * 3 * 9, 8 * 9, 16 * 2 + 16, 16 * 10 + 10]
    assert not a.network.ternary and a.network.images == 4


def test_linear_only_mlp():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.ReLU(), nn.Linear(64, 10))
    a = analyze(mlp, data=torch.randn(3, 3, 32, 32), input_shape=(3, 32, 32), device="cpu",
                progress=False)
    assert list(a.layers["macs"]) == [3072 * 64, 64 * 10]
    # the ReLU output feeds layer 3: its measured sparsity is the fraction of zeros there
    x = torch.randn(5, 3, 32, 32)
    a = analyze(mlp, data=x, input_shape=(3, 32, 32), device="cpu", progress=False)
    hidden = torch.relu(mlp[1](x.flatten(1)))
    assert a.layers["act_sparsity"].iloc[1] == pytest.approx(float((hidden == 0).float().mean()))


def test_tiny_transformer_block_lists_what_is_not_a_layer():
    T, D, H = 8, 16, 32
    a = analyze(TinyTransformerBlock(D, H), data=torch.randn(2, T, D), input_shape=(T, D),
                device="cpu", progress=False)
    macs = dict(zip(a.layers["layer"], a.layers["macs"]))
    assert macs == {"q": T * D * D, "k": T * D * D, "v": T * D * D, "o": T * D * D,
                    "fc1": T * D * H, "fc2": T * H * D}
    assert list(a.layers["output_positions"]) == [T] * 6   # one output row per token
    # q·kᵀ (T x T x D) and att·v (T x T x D) run outside any nn.Linear: listed, not dropped
    assert a.meta["other_ops"]["matmul outside conv/linear layers"] == 2 * T * T * D
    assert any("softmax" in op for op in a.meta["unsupported_ops"])


def _write_models_module(folder: Path) -> None:
    """``folder/byon_models.py``: factories a user would write (the test classes above)."""
    (folder / "byon_models.py").write_text(textwrap.dedent(f'''
        import sys
        import torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_byon import MixedConvNet

        def make_net():
            torch.manual_seed(0)
            return MixedConvNet()

        def not_a_module():
            return 42

        CONSTANT = 3
    '''))


@needs_cifar
def test_report_with_model_callable(tmp_path, monkeypatch, capsys):
    from reports.cli import main as report_main
    _write_models_module(tmp_path)
    monkeypatch.chdir(tmp_path)  # ttq-report puts the current folder on sys.path, as uvicorn
    monkeypatch.delitem(sys.modules, "byon_models", raising=False)
    torch.manual_seed(1)
    torch.save({"model": MixedConvNet().state_dict()}, tmp_path / "mynet.pt")
    out = tmp_path / "r"
    assert report_main(["mynet.pt", "--model", "byon_models:make_net", "--out", str(out),
                        *SMALL]) == 0
    nets = report_json(out)
    assert [n["label"] for n in nets][0] == "mynet (byon_models:make_net, FP)"
    a = Analysis.from_json(json.dumps(nets[0]["analysis"]))
    assert a.network.counts.macs == 32 * 32 * 8 * 27 + 32 * 32 * 8 * 9 + 32 * 32 * 16 * 2 + 160
    assert a.meta["input_shape"] == [3, 32, 32]
    assert "what if" in nets[1]["label"]  # FP input: the what-if estimate follows

    for args, fragments in [
        (["--model", "byon_models"], ["package.module:callable"]),
        (["--model", "no_such_pkg:make"], ["cannot import 'no_such_pkg'"]),
        (["--model", "byon_models:nope"], ["has no attribute 'nope'"]),
        (["--model", "byon_models:CONSTANT"], ["not a callable"]),
        (["--model", "byon_models:not_a_module"], ["returned a int, not an nn.Module"]),
        (["--model", "byon_models:make_net", "--arch", "resnet20"], ["not both"]),
        (["--arch", "resnet20", "--normalization", "imagenet", "--mean", "0.5"], ["not both"]),
        (["--arch", "resnet20", "--mean", "0.5", "0.5", "--std", "1", "1"], ["1 or 3 values"]),
        (["--arch", "resnet20", "--ternary-tolerance", "0.7"], ["--ternary-tolerance"]),
    ]:
        capsys.readouterr()
        code = report_main(["mynet.pt", "--out", str(tmp_path / "bad"), *args, *SMALL])
        assert_one_line_error(code, capsys.readouterr().err, *fragments)
        assert not (tmp_path / "bad").exists()


def test_model_refused_for_toolkit_checkpoint(tmp_path):
    from ttq_core.user_model import build_user_model
    model = build_model("resnet20")
    ckpt = {"format_version": 1, "arch": "resnet20", "arch_kwargs": {}, "dataset": "cifar10",
            "normalization": None, "quant": None, "state_dict": model.state_dict(),
            "history": [], "metrics": {}}
    save_checkpoint(ckpt, tmp_path / "t.pt")
    with pytest.raises(CheckpointError, match="drop --model"):
        load_model(tmp_path / "t.pt", model=build_user_model("torch.nn:Identity"))


def test_model_callable_errors_in_python():
    from ttq_core.user_model import build_user_model
    with pytest.raises(ConfigError, match="not an nn.Module"):
        build_user_model("ttq_core.models:list_models")
    assert isinstance(build_user_model("torch.nn:Identity"), nn.Identity)


# ----------------------------------------------------------------------------- 4. ternary from elsewhere

def _ternary_weight(shape, a, b, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(-1, 2, shape, generator=g)
    return torch.where(codes > 0, torch.tensor(b), torch.where(codes < 0, torch.tensor(-a),
                                                              torch.tensor(0.0))), codes


def test_detection_of_exported_ternary_weights():
    lin = nn.Linear(20, 6)
    w, codes = _ternary_weight((6, 20), 0.3, 0.7)
    lin.weight.data.copy_(w)
    d = detect_ternary(lin)
    assert d.ternary and torch.equal(d.codes.long(), codes) and d.values == 3
    assert (d.wp, d.wn) == (pytest.approx(0.7), pytest.approx(0.3))
    # BitNet b1.58 style: {-1, 0, 1} x one scale, plus float noise far below the step
    lin.weight.data.copy_(codes.float() * 0.0123 * (1 + 1e-7 * torch.randn(6, 20)))
    assert detect_ternary(lin).ternary
    assert not detect_ternary(lin, tolerance=0.0).ternary  # exact: the noise makes many values
    # a fourth value: not ternary, and the verdict says how many values
    w4 = w.clone()
    w4[0, 0] = 0.5
    lin.weight.data.copy_(w4)
    d = detect_ternary(lin)
    assert not d.ternary and d.values == 4 and "4 distinct weight values" in d.how
    lin.weight.data.copy_(torch.randn(6, 20))
    assert not detect_ternary(lin).ternary  # a float layer


def _brute_force_adds_mults(codes: torch.Tensor, positions: int,
                            symmetric: bool = False) -> tuple[int, int]:
    """Dense (adds, mults): one multiplication per sign present (Wp, Wn), or one per
    output with a nonzero filter when the layer is symmetric (Wp = Wn: one α)."""
    adds = mults = 0
    for row in codes.flatten(1).tolist():
        npos, nneg = row.count(1), row.count(-1)
        adds += max(npos + nneg - 1, 0)
        mults += int(npos + nneg > 0) if symmetric else (npos > 0) + (nneg > 0)
    return adds * positions, mults * positions


def test_detected_layers_are_counted_as_ternary():
    torch.manual_seed(0)
    net = MixedConvNet()
    w, codes = _ternary_weight(tuple(net.grouped.weight.shape), 0.2, 0.25, seed=3)
    net.grouped.weight.data.copy_(w)
    wh, codes_h = _ternary_weight((10, 16), 1.0, 1.0, seed=4)  # {-1, 0, 1}
    net.head.weight.data.copy_(wh)
    a = analyze(net, input_shape=(3, 32, 32), device="cpu", progress=False)
    rows = a.layers.set_index("layer")
    assert list(rows["ternary"]) == [False, False, True, True]
    assert (rows.loc["grouped", "ternary_adds"], rows.loc["grouped", "ternary_mults"]) == \
        _brute_force_adds_mults(codes, 32 * 32)
    # {-1, 0, 1}: one magnitude for both signs, one multiplication per output
    assert (rows.loc["head", "ternary_adds"], rows.loc["head", "ternary_mults"]) == \
        _brute_force_adds_mults(codes_h, 1, symmetric=True)
    n = codes.numel()
    assert rows.loc["grouped", "weight_bits"] == 2 * n + 64 + 32 * 16  # 2 bits, Wp/Wn, bias
    assert rows.loc["grouped", "weight_sparsity"] == float((codes == 0).sum()) / n
    assert (rows.loc["grouped", "wp"], rows.loc["grouped", "wn"]) == (
        pytest.approx(0.25), pytest.approx(0.2))
    det = a.meta["ternary_detection"]["layers"]
    assert det["grouped"]["ternary"] and not det["stem"]["ternary"]
    assert a.network.ternary and a.network.ternary_layers == 2
    b = Analysis.from_json(a.to_json())  # the detection record survives the JSON round trip
    pd.testing.assert_frame_equal(a.layers, b.layers, check_exact=True)
    assert a.meta == b.meta and a.network == b.network


# ----------------------------------------------------------------------------- 5. what-if

def test_what_if_reestimates_batchnorm_on_training_images():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                        nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1, bias=False),
                        nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 3, (40,))
    calib = DeviceData(images[:24], labels[:24], [0.5] * 3, [0.25] * 3)
    test = DeviceData(images[24:], labels[24:], [0.5] * 3, [0.25] * 3)
    est = ternarize_untrained(net, 0.05, test, calib, bn_images=24)
    assert est.bn_images == 24 and est.bn_layers == 2
    # hand check: the running mean of the second BN is the mean of its input over the 24
    # calibration images as the training transform yields them (one batch, the
    # re-estimation's seed), computed with the ternary weights (W_t = Wp/0/-Wn) in train mode
    m = est.model
    from ttq_core.train.bn_calibration import CALIBRATION_SEED
    gen = torch.Generator().manual_seed(CALIBRATION_SEED)
    x, _ = next(calib.batches(24, shuffle=True, augment=True, generator=gen))
    assert not torch.equal(x, (images[:24].float() / 255 - 0.5) / 0.25)
    with torch.no_grad():
        h = torch.relu(nn.functional.batch_norm(m[0](x), None, None, m[1].weight, m[1].bias,
                                                training=True))
        y = m[3](h)
    torch.testing.assert_close(m[4].running_mean, y.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    # population variance of everything it normalised (fvcore's precise-BN estimator)
    torch.testing.assert_close(m[4].running_var, y.var((0, 2, 3), unbiased=False),
                               rtol=1e-4, atol=1e-5)
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())  # original untouched
    assert torch.equal(net[1].running_mean, torch.zeros(4))
    # before-BN accuracy is that of the plain ternarized copy on the test images
    plain = ternarize(__import__("copy").deepcopy(net), threshold=0.05).eval()
    with torch.no_grad():
        xt = (images[24:].float() / 255 - 0.5) / 0.25
        expected = float((plain(xt).argmax(1) == labels[24:]).float().mean())
    assert est.accuracy_before_bn == pytest.approx(expected)
    meta = est.meta(0.5)
    assert meta["weights_trained"] is False and meta["accuracy_after_bn"] == 0.5


@needs_cifar
def test_report_of_old_style_resnet20(tmp_path):
    torch.manual_seed(0)
    torch.save(old_style(build_model("resnet20")), tmp_path / "resnet20-old.th")
    out = tmp_path / "r"
    from reports.cli import main as report_main
    code = report_main([str(tmp_path / "resnet20-old.th"), "--arch", "resnet20",
                        "--normalization", "imagenet", "--out", str(out), *SMALL])
    assert code == 0
    fp, what_if = report_json(out)
    a, w = (Analysis.from_json(json.dumps(n["analysis"])) for n in (fp, what_if))
    assert a.network.counts.macs == 40_551_040                       # ARCHITECTURE.md
    assert any("Filled 19 missing buffer(s)" in s for s in a.meta["checkpoint"]["load_notes"])
    norm = a.meta["input_normalization"]
    assert tuple(norm["mean"]) == TORCHVISION_IMAGENET_MEAN and "--normalization imagenet" in norm["origin"]
    assert w.meta["input_normalization"] == norm                      # the what-if sees the same
    wi = w.meta["what_if"]
    assert wi["weights_trained"] is False and wi["bn_reestimation"]["images"] == 64
    assert wi["bn_reestimation"]["batch_norm_layers"] == 19
    assert wi["accuracy_after_bn"] == w.network.accuracy.measured_acc
    assert 0.0 <= wi["accuracy_before_bn"] <= 1.0
    html = (out / "report.html").read_text()
    for text in ("Where the numbers come from", "num_batches_tracked", "no weights were trained",
                 "before that step", "torchvision&#39;s ImageNet mean and std"):
        assert text in html, text


@needs_cifar
def test_report_of_exported_ternary_network_has_no_what_if(tmp_path):
    torch.manual_seed(0)
    net = MixedConvNet()
    for layer, seed in ((net.depthwise, 1), (net.grouped, 2)):
        w, _ = _ternary_weight(tuple(layer.weight.shape), 0.1, 0.1, seed)
        layer.weight.data.copy_(w)
    _write_models_module(tmp_path)
    torch.save(net.state_dict(), tmp_path / "ternary.pt")  # the real command, in a subprocess
    out = tmp_path / "r"
    r = run_cli("ternary.pt", "--model", "byon_models:make_net", "--out", str(out), *SMALL,
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    nets = report_json(out)
    assert len(nets) == 1 and nets[0]["label"] == "ternary (byon_models:make_net, ternary, detected)"
    html = (out / "report.html").read_text()
    assert "Ternary weights detected in 2 plain conv/linear layer(s)" in html


# ----------------------------------------------------------------------------- 6. torchvision names

def _torchvision_resnet18_shapes() -> dict[str, tuple]:
    """torchvision/models/resnet.py (pytorch/vision): ResNet(BasicBlock, [2, 2, 2, 2]) —
    conv1 7x7/2 + bn1, layerN.B.{conv1,bn1,conv2,bn2}, layerN.0.downsample = Sequential(
    conv1x1, norm_layer) for N = 2..4, fc.  Buffers as in the 2017 model-zoo file
    (resnet18-5c106cde.pth): no num_batches_tracked."""
    def bn(name, c):
        return {f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
                f"{name}.running_var": (c,)}
    shapes = {"conv1.weight": (64, 3, 7, 7), **bn("bn1", 64)}
    inplanes = 64
    for stage, planes in zip((1, 2, 3, 4), (64, 128, 256, 512)):
        for block in (0, 1):
            p = f"layer{stage}.{block}"
            cin = inplanes if block == 0 else planes
            shapes.update({f"{p}.conv1.weight": (planes, cin, 3, 3), **bn(f"{p}.bn1", planes),
                           f"{p}.conv2.weight": (planes, planes, 3, 3), **bn(f"{p}.bn2", planes)})
            if block == 0 and stage > 1:
                shapes.update({f"{p}.downsample.0.weight": (planes, inplanes, 1, 1),
                               **bn(f"{p}.downsample.1", planes)})
        inplanes = planes
    shapes.update({"fc.weight": (1000, 512), "fc.bias": (1000,)})
    return shapes


TORCHVISION_ALEXNET = {  # torchvision/models/alexnet.py: features / classifier Sequentials
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 256 * 6 * 6), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}


def _cheap_state_dict(shapes: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """Tensors of the given shapes backed by one row each (stride 0 elsewhere: tiny files)."""
    return {k: torch.linspace(0.01, 0.02, s[-1]).expand(s) for k, s in shapes.items()}


def test_torchvision_resnet18_state_dict_loads(tmp_path):
    shapes = _torchvision_resnet18_shapes()
    assert "layer1.0.downsample.0.weight" not in shapes and "layer2.0.downsample.0.weight" in shapes
    weights = sum(math.prod(s) for k, s in shapes.items() if "running" not in k)
    assert weights == 11_689_512                                       # ARCHITECTURE.md
    torch.save(_cheap_state_dict(shapes), tmp_path / "resnet18.pth")
    loaded = load_model(tmp_path / "resnet18.pth", arch="resnet18")
    assert loaded.arch_kwargs["num_classes"] == 1000
    assert any("Filled 20 missing buffer(s)" in n for n in loaded.notes)  # 1 + 8x2 + 3 BNs
    assert sum(p.numel() for p in loaded.model.parameters()) == 11_689_512


def test_torchvision_alexnet_state_dict_loads(tmp_path):
    torch.save({"state_dict": _cheap_state_dict(TORCHVISION_ALEXNET)}, tmp_path / "alexnet.pth")
    loaded = load_model(tmp_path / "alexnet.pth", arch="alexnet")
    assert sum(p.numel() for p in loaded.model.parameters()) == 61_100_840  # ARCHITECTURE.md
    assert loaded.notes == []  # no batch norm, no prefix: nothing repaired
    a = analyze(loaded.model, device="cpu", progress=False)
    assert a.network.counts.macs == 714_188_480                          # ARCHITECTURE.md
