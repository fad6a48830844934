"""Tests of ttq_core.checkpoint: the toolkit checkpoint format round trip (FP and TTQ),
third-party state_dicts, one-line CheckpointErrors for every bad input, atomic saving."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

import ttq_core.checkpoint as ckpt_mod
from ttq_core.checkpoint import (FORMAT_VERSION, REQUIRED_KEYS, LoadedModel, load_model,
                                 load_state_dict_checked, read_checkpoint_file,
                                 save_checkpoint)
from ttq_core.errors import CheckpointError, OutputError, TTQError
from ttq_core.models import build_model
from ttq_core.quantize import export_ternary, quant_record, ternarize, ternary_layers

NORMALIZATION = {"mean": [0.4913, 0.4821, 0.4465], "std": [0.2452, 0.2428, 0.2606]}


# --------------------------------------------------------------------------- helpers


def _perturb_bn(model: torch.nn.Module, seed: int) -> None:
    """Give batch-norm layers non-default statistics and affine parameters, so that a
    loader that silently skipped them would be caught."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.num_batches_tracked.fill_(7)


def make_model(arch: str = "resnet20", ternary: bool = False, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    model = build_model(arch, **kwargs)
    _perturb_bn(model, seed + 1)
    if ternary:
        ternarize(model)
    return model.eval()


def toolkit_ckpt(model: torch.nn.Module, history: list | None = None) -> dict:
    """A toolkit-format checkpoint dict, built by hand as the module docstring describes."""
    return {
        "format_version": 1,
        "arch": model.arch_name,
        "arch_kwargs": dict(model.arch_kwargs),
        "dataset": "cifar10",
        "normalization": {k: list(v) for k, v in NORMALIZATION.items()},
        "quant": quant_record(model),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "history": [] if history is None else history,
        "metrics": {},
    }


def write(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def assert_one_line(err: BaseException, *fragments: str) -> str:
    msg = str(err)
    assert "\n" not in msg, msg
    assert msg.strip(), "empty error message"
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def assert_same_state(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


FIXED_INPUT_SEED = 1234


def fixed_input(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(FIXED_INPUT_SEED))


@torch.no_grad()
def outputs(model: torch.nn.Module) -> torch.Tensor:
    model.eval()
    return model(fixed_input())


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny forward passes: one intra-op thread is faster, and keeps the timing stable
    when other processes (e.g. a training run) share the CPUs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def fp_model():
    return make_model(seed=0)


@pytest.fixture(scope="module")
def ternary_model():
    return make_model(ternary=True, seed=1)


@pytest.fixture
def fp_ckpt(fp_model) -> dict:
    return toolkit_ckpt(fp_model)


@pytest.fixture
def fp_file(tmp_path, fp_ckpt) -> Path:
    return write(tmp_path / "fp.pt", fp_ckpt)


# --------------------------------------------------------------------------- round trip


HISTORY = [
    {"epoch": 1, "lr": 0.1, "train_loss": 2.1, "train_acc": 0.2, "test_loss": 1.9,
     "test_acc": 0.3, "seconds": 1.5, "layers": {}},
    {"epoch": 2, "lr": 0.05, "train_loss": 1.7, "train_acc": 0.4, "test_loss": 1.6,
     "test_acc": 0.45, "seconds": 1.4, "layers": {"layer1.0.conv1": {"frac_zero": 0.5}}},
]


@pytest.mark.parametrize("kind", ["fp", "ternary"])
@pytest.mark.parametrize("saver", ["torch.save", "save_checkpoint"])
def test_round_trip(tmp_path, fp_model, ternary_model, kind, saver):
    model = fp_model if kind == "fp" else ternary_model
    ckpt = toolkit_ckpt(model, history=HISTORY)
    path = tmp_path / "model.pt"
    if saver == "torch.save":
        torch.save(ckpt, path)
    else:
        save_checkpoint(ckpt, path)

    # Plain PyTorch safe loading reads the whole checkpoint back, all keys intact.
    raw = torch.load(path, weights_only=True)
    assert set(raw) == set(REQUIRED_KEYS)
    assert raw["format_version"] == FORMAT_VERSION == 1
    assert raw["arch"] == "resnet20"
    assert raw["arch_kwargs"] == model.arch_kwargs
    assert raw["normalization"] == NORMALIZATION
    assert raw["history"] == HISTORY
    assert raw["metrics"] == {}
    assert raw["quant"] == ckpt["quant"]
    assert (raw["quant"] is None) == (kind == "fp")
    assert_same_state(raw["state_dict"], ckpt["state_dict"])

    loaded = load_model(path)
    assert isinstance(loaded, LoadedModel)
    assert loaded.source_format == "ttq-toolkit"
    assert loaded.arch == "resnet20"
    assert loaded.arch_kwargs == model.arch_kwargs
    assert loaded.is_ternary == (kind == "ternary")
    assert loaded.checkpoint["history"] == HISTORY
    assert not loaded.model.training, "load_model must return the model in eval mode"
    assert loaded.model.arch_kwargs == model.arch_kwargs
    assert_same_state(loaded.model.state_dict(), model.state_dict())
    assert quant_record(loaded.model) == quant_record(model)
    assert torch.equal(outputs(loaded.model), outputs(model))

    # Passing the matching arch explicitly is fine too.
    assert load_model(path, arch="resnet20").arch == "resnet20"


def test_ternary_round_trip_export_identical(tmp_path, ternary_model):
    path = tmp_path / "ttq.pt"
    save_checkpoint(toolkit_ckpt(ternary_model), path)
    reloaded = load_model(path).model
    want, got = export_ternary(ternary_model), export_ternary(reloaded)
    assert list(want) == list(got) and len(want) > 0
    for name in want:
        a, b = want[name], got[name]
        assert torch.equal(a.weight, b.weight), name
        assert torch.equal(a.codes, b.codes), name
        assert a.codes.dtype == b.codes.dtype == torch.int8
        assert (a.wp, a.wn, a.delta, a.rule, a.value) == (b.wp, b.wn, b.delta, b.rule, b.value)
    # The first conv and the last linear layer stay FP (default), and stay FP after reload.
    assert "conv1" not in got and "linear" not in got


def test_ternary_scales_survive_reload(tmp_path):
    """Reloading must restore the trained Wp/Wn, not re-initialise them from the weights."""
    model = make_model(ternary=True, seed=5)
    with torch.no_grad():
        for i, (_, layer) in enumerate(ternary_layers(model)):
            layer.quantizer.wp.fill_(0.3 + 0.01 * i)
            layer.quantizer.wn.fill_(0.2 + 0.01 * i)
    path = tmp_path / "scales.pt"
    save_checkpoint(toolkit_ckpt(model), path)
    reloaded = load_model(path).model
    for (n1, a), (n2, b) in zip(ternary_layers(model), ternary_layers(reloaded)):
        assert n1 == n2
        assert torch.equal(a.quantizer.wp, b.quantizer.wp)
        assert torch.equal(a.quantizer.wn, b.quantizer.wn)


# --------------------------------------------------------------------------- third party


def _with_prefix(sd: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in sd.items()}


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "model", "module_prefix",
                                  "module_prefix_under_state_dict"])
def test_third_party_state_dict(tmp_path, fp_model, wrap):
    sd = {k: v.clone() for k, v in fp_model.state_dict().items()}
    obj = {
        "bare": sd,
        "state_dict": {"state_dict": sd, "epoch": 12, "best_acc": 91.3},
        "model": {"model": sd, "optimizer_name": "sgd"},
        "module_prefix": _with_prefix(sd, "module."),
        "module_prefix_under_state_dict": {"state_dict": _with_prefix(sd, "module.")},
    }[wrap]
    path = write(tmp_path / f"{wrap}.pth", obj)
    loaded = load_model(path, arch="resnet20")
    assert loaded.source_format == "state_dict"
    assert loaded.checkpoint is None
    assert not loaded.is_ternary
    assert loaded.arch == "resnet20"
    assert not loaded.model.training
    assert_same_state(loaded.model.state_dict(), fp_model.state_dict())
    assert torch.equal(outputs(loaded.model), outputs(fp_model))


def test_third_party_infers_num_classes(tmp_path):
    model = make_model(num_classes=100, seed=3)
    assert model.linear.weight.shape == (100, 64)
    path = write(tmp_path / "c100.pth", {"state_dict": _with_prefix(model.state_dict(), "module.")})
    loaded = load_model(path, arch="resnet20")
    assert loaded.arch_kwargs["num_classes"] == 100
    assert loaded.model.arch_kwargs["num_classes"] == 100
    assert loaded.model.linear.out_features == 100
    assert_same_state(loaded.model.state_dict(), model.state_dict())
    assert outputs(loaded.model).shape == (4, 100)
    assert torch.equal(outputs(loaded.model), outputs(model))


def test_third_party_without_arch_asks_for_arch(tmp_path, fp_model):
    path = write(tmp_path / "plain.pth", fp_model.state_dict())
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_one_line(info.value, "--arch", "resnet20")


def test_third_party_without_tensors(tmp_path):
    path = write(tmp_path / "odd.pth", {"epoch": 3, "note": "no tensors here"})
    with pytest.raises(CheckpointError) as info:
        load_model(path, arch="resnet20")
    assert_one_line(info.value, "neither a ttq toolkit checkpoint nor a state_dict")


# --------------------------------------------------------------------------- unreadable files


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "nope.pt")
    assert_one_line(info.value, "does not exist", "nope.pt")


def test_folder(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "run", arch="resnet20")
    assert_one_line(info.value, "is a folder", "best.pt")


def test_empty_file(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "empty.pt")
    assert_one_line(info.value, "empty")


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.01])
def test_truncated_file(tmp_path, fp_file, fraction):
    data = fp_file.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError) as info:
        load_model(cut)
    assert_one_line(info.value, "cut.pt", "truncated or corrupted")


def test_corrupted_pickle_section(tmp_path, fp_file):
    """A real checkpoint whose pickled record (data.pkl inside the zip) was overwritten."""
    data = bytearray(fp_file.read_bytes())
    at = data.find(b"data.pkl")
    assert at > 0
    data[at + 40: at + 104] = b"\xff" * 64
    bad = tmp_path / "bitrot.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        load_model(bad)
    assert_one_line(info.value, "bitrot.pt", "corrupted")


def _random_bytes(seed: int, n: int = 4096) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.mark.parametrize("content", [
    pytest.param(_random_bytes(0), id="random-seed0"),
    pytest.param(_random_bytes(2), id="random-seed2"),
    pytest.param(_random_bytes(20), id="random-seed20"),
    pytest.param(b"this is not a checkpoint\n" * 50, id="text"),
    pytest.param(b"PK\x03\x04" + _random_bytes(1, 2000), id="zip-magic-then-garbage"),
])
def test_corrupted_file_is_checkpoint_error(tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_model(path, arch="resnet20")
    assert_one_line(info.value, "garbage.pt")


def test_random_bytes_reported_as_corrupted(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(_random_bytes(0))
    with pytest.raises(CheckpointError) as info:
        load_model(path, arch="resnet20")
    assert_one_line(info.value, "corrupted")


# A class whose unpickling runs code: both hooks would create the marker file.


def _pickle_trap(marker: str) -> "Trap":
    Path(marker).write_text("code ran during unpickling")
    return Trap(marker)


class Trap:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (_pickle_trap, (self.marker,))

    def __setstate__(self, state):  # pragma: no cover - only reached by unsafe loading
        Path(state["marker"]).write_text("code ran during unpickling")
        self.__dict__.update(state)


@pytest.mark.parametrize("where", ["top-level", "inside-toolkit-ckpt", "inside-state-dict"])
def test_pickled_object_refused_and_never_run(tmp_path, fp_ckpt, where):
    marker = tmp_path / "marker"
    trap = Trap(str(marker))
    if where == "top-level":
        obj = trap
    elif where == "inside-toolkit-ckpt":
        obj = {**fp_ckpt, "metrics": {"callback": trap}}
    else:
        obj = {"state_dict": {"conv1.weight": torch.zeros(1), "hook": trap}}
    path = write(tmp_path / "evil.pt", obj)
    assert not marker.exists()

    with pytest.raises(CheckpointError) as info:
        load_model(path, arch="resnet20")
    assert_one_line(info.value, "evil.pt", "weights_only")
    with pytest.raises(CheckpointError):
        read_checkpoint_file(path)
    assert not marker.exists(), "the pickled object's code ran during loading"

    # Control: the trap really fires under unsafe loading, so its absence above means
    # weights_only refused it before any of its code ran.
    torch.load(path, weights_only=False)
    assert marker.exists()


# --------------------------------------------------------------------------- bad checkpoints


def test_newer_format_version(tmp_path, fp_ckpt):
    path = write(tmp_path / "v99.pt", {**fp_ckpt, "format_version": 99})
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_one_line(info.value, "99", "newer")


@pytest.mark.parametrize("version", ["x", 1.0, None])
def test_non_integer_format_version(tmp_path, fp_ckpt, version):
    path = write(tmp_path / "vx.pt", {**fp_ckpt, "format_version": version})
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_one_line(info.value, "format_version", repr(version))


def test_format_version_zero(tmp_path, fp_ckpt):
    path = write(tmp_path / "v0.pt", {**fp_ckpt, "format_version": 0})
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_one_line(info.value, "format_version 0")


def test_missing_required_keys(tmp_path, fp_ckpt):
    ckpt = {k: v for k, v in fp_ckpt.items() if k not in ("normalization", "metrics", "quant")}
    path = write(tmp_path / "partial.pt", ckpt)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    msg = assert_one_line(info.value, "lacks required checkpoint keys")
    for key in ("normalization", "metrics", "quant"):
        assert key in msg
    for key in ("arch_kwargs", "history", "dataset"):
        assert key not in msg.split("keys:")[1]


def test_unknown_stored_arch(tmp_path, fp_ckpt):
    path = write(tmp_path / "unk.pt", {**fp_ckpt, "arch": "resnet999"})
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_one_line(info.value, "resnet999", "resnet20")


def test_toolkit_ckpt_with_other_arch(tmp_path, fp_file):
    with pytest.raises(CheckpointError) as info:
        load_model(fp_file, arch="resnet32")
    assert_one_line(info.value, "resnet20", "resnet32")


def test_resnet32_state_dict_as_resnet20(tmp_path):
    sd = build_model("resnet32").state_dict()
    path = write(tmp_path / "r32.pth", sd)
    with pytest.raises(CheckpointError) as info:
        load_model(path, arch="resnet20")
    msg = assert_one_line(info.value, "unexpected keys", "layer1.3.")
    assert "missing keys" not in msg
    assert "more)" in msg  # the long list is summarised, not dumped


def test_resnet20_state_dict_with_missing_key(tmp_path, fp_model):
    sd = {k: v for k, v in fp_model.state_dict().items() if k != "layer2.1.bn1.running_mean"}
    path = write(tmp_path / "holes.pth", sd)
    with pytest.raises(CheckpointError) as info:
        load_model(path, arch="resnet20")
    msg = assert_one_line(info.value, "missing keys", "layer2.1.bn1.running_mean")
    assert "unexpected keys" not in msg


def test_toolkit_ckpt_with_missing_key(tmp_path, fp_ckpt):
    del fp_ckpt["state_dict"]["layer3.2.conv2.weight"]
    path = write(tmp_path / "holes.pt", fp_ckpt)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_one_line(info.value, "missing keys", "layer3.2.conv2.weight")


def test_shape_mismatch_third_party(tmp_path, fp_model):
    sd = dict(fp_model.state_dict())
    sd["conv1.weight"] = torch.zeros(16, 3, 5, 5)
    path = write(tmp_path / "shape.pth", sd)
    with pytest.raises(CheckpointError) as info:
        load_model(path, arch="resnet20")
    assert_one_line(info.value, "shape", "conv1.weight", "(16, 3, 5, 5)", "(16, 3, 3, 3)")


def test_shape_mismatch_toolkit(tmp_path, fp_ckpt):
    # arch_kwargs says 10 classes, the weights have 100: no silent inference here.
    fp_ckpt["state_dict"]["linear.weight"] = torch.zeros(100, 64)
    fp_ckpt["state_dict"]["linear.bias"] = torch.zeros(100)
    path = write(tmp_path / "shape.pt", fp_ckpt)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_one_line(info.value, "shape", "linear.weight")


def test_ternary_ckpt_without_quant_record(tmp_path, ternary_model):
    """A ternary state_dict whose quant record was dropped does not fit the FP model."""
    ckpt = toolkit_ckpt(ternary_model)
    ckpt["quant"] = None
    path = write(tmp_path / "noquant.pt", ckpt)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_one_line(info.value, "unexpected keys")


def test_malformed_quant_record(tmp_path, ternary_model):
    ckpt = toolkit_ckpt(ternary_model)
    ckpt["quant"] = {"rule": "threshold"}  # no "layers"
    path = write(tmp_path / "badquant.pt", ckpt)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_one_line(info.value, "quantization record")


def test_load_state_dict_checked_reports_everything(fp_model):
    model = build_model("resnet20")
    sd = dict(fp_model.state_dict())
    del sd["bn1.weight"]
    sd["extra.weight"] = torch.zeros(1)
    sd["linear.bias"] = torch.zeros(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_state_dict_checked(model, sd, "thing")
    assert_one_line(info.value, "thing", "missing keys: bn1.weight",
                    "unexpected keys: extra.weight", "shape mismatches: linear.bias")
    # Nothing was loaded on failure.
    assert_same_state(model.state_dict(), before)


def test_errors_are_ttq_errors(tmp_path):
    with pytest.raises(TTQError):
        load_model(tmp_path / "missing.pt")


# --------------------------------------------------------------------------- atomic save


def test_save_checkpoint_creates_parent_and_leaves_no_temp(tmp_path, fp_ckpt):
    path = tmp_path / "a" / "b" / "last.pt"
    save_checkpoint(fp_ckpt, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]
    assert_same_state(torch.load(path, weights_only=True)["state_dict"], fp_ckpt["state_dict"])


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch, fp_model, ternary_model):
    folder = tmp_path / "run"
    path = folder / "last.pt"
    old = toolkit_ckpt(fp_model, history=HISTORY[:1])
    save_checkpoint(old, path)
    before = path.read_bytes()
    assert sorted(os.listdir(folder)) == ["last.pt"]

    real_save = torch.save
    calls = []

    def crashing_save(obj, f, *args, **kwargs):
        calls.append(f)
        f.write(b"PK\x03\x04 half a checkpoint")  # partial output, then the crash
        raise OSError(28, "No space left on device")

    assert ckpt_mod.torch is torch
    monkeypatch.setattr(ckpt_mod.torch, "save", crashing_save)
    with pytest.raises(OutputError, match="No space left.*earlier last.pt is kept"):
        save_checkpoint(toolkit_ckpt(ternary_model, history=HISTORY), path)
    assert calls, "save_checkpoint did not go through torch.save"
    monkeypatch.setattr(ckpt_mod.torch, "save", real_save)

    assert sorted(os.listdir(folder)) == ["last.pt"], "temporary file left behind"
    assert path.read_bytes() == before
    loaded = load_model(path)
    assert loaded.checkpoint["history"] == HISTORY[:1]
    assert not loaded.is_ternary
    assert_same_state(loaded.model.state_dict(), fp_model.state_dict())


def test_save_checkpoint_interrupt_is_atomic(tmp_path, monkeypatch, fp_ckpt):
    """A Ctrl-C (KeyboardInterrupt) in the middle of writing also leaves the old file."""
    path = tmp_path / "best.pt"
    save_checkpoint(fp_ckpt, path)
    before = path.read_bytes()

    def interrupted(obj, f, *args, **kwargs):
        f.write(b"\0" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({**fp_ckpt, "metrics": {"test_acc": 0.9}}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["best.pt"]
    assert path.read_bytes() == before


def test_save_checkpoint_replaces_existing(tmp_path, fp_ckpt):
    path = tmp_path / "last.pt"
    save_checkpoint(fp_ckpt, path)
    save_checkpoint({**fp_ckpt, "metrics": {"test_acc": 0.5}}, path)
    assert torch.load(path, weights_only=True)["metrics"] == {"test_acc": 0.5}
    assert os.listdir(tmp_path) == ["last.pt"]
