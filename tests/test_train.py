"""Real training runs on a fixed subset of the CIFAR-10 JPEG copy in ../shared/data:
FP beats chance, TTQ fine-tuning from it writes the full history, resume is exact,
divergence keeps the last good checkpoint, the LR schedule and device augmentation."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from ttq_core.checkpoint import REQUIRED_KEYS, load_model
from ttq_core.data import random_crop_flip
from ttq_core.errors import ConfigError, TrainingDiverged
from ttq_core.train import LRSchedule, TrainConfig
from ttq_core.train.loop import Trainer, train

from conftest import CIFAR_ARCHIVE, needs_cifar

# Small, fixed, class-balanced subsets keep these runs to seconds on 2 CPU cores.
QUICK = dict(data_dir=str(CIFAR_ARCHIVE), limit_train=2000, limit_test=500, batch_size=64,
             device="cpu", progress=False)


@pytest.fixture(scope="module")
def fp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fp")
    ckpt = train(TrainConfig(mode="fp", epochs=3, lr=0.05, out=str(out), **QUICK))
    return out, ckpt


@needs_cifar
def test_fp_run_beats_chance_and_writes_contract(fp_run):
    out, ckpt = fp_run
    # chance is 10%; on 500 balanced test images its std is 1.3 points, so 20% is > 7 sigma
    assert ckpt["metrics"]["test_acc"] > 0.20
    disk = torch.load(out / "last.pt", weights_only=True)
    assert set(REQUIRED_KEYS) <= set(disk)
    assert disk["quant"] is None and disk["arch"] == "resnet20" and disk["format_version"] == 1
    assert [h["epoch"] for h in disk["history"]] == [1, 2, 3]
    for h in disk["history"]:
        assert {"lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"} <= set(h)
        assert h["layers"] == {}
    # README's train-set statistics of the JPEG copy
    assert disk["normalization"]["mean"] == pytest.approx([0.4913, 0.4821, 0.4465], abs=2e-3)
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["metrics"]["test_acc"] == max(h["test_acc"] for h in disk["history"])
    assert "optimizer" not in best and "optimizer" in disk
    lines = (out / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


@needs_cifar
def test_ttq_finetune_from_fp_records_history(fp_run, tmp_path):
    fp_out, fp_ckpt = fp_run
    ckpt = train(TrainConfig(mode="ttq", init=str(fp_out / "best.pt"), epochs=1, lr=0.01,
                             grad_stats_every=2, out=str(tmp_path), **QUICK))
    assert ckpt["metrics"]["test_acc"] > 0.20
    quant = ckpt["quant"]
    assert quant["rule"] == "threshold" and quant["fp_layers"] == ["conv1", "linear"]
    assert all(spec["value"] == 0.05 for spec in quant["layers"].values())
    layers = ckpt["history"][0]["layers"]
    assert list(layers) == list(quant["layers"])
    loaded = load_model(tmp_path / "last.pt")
    assert loaded.is_ternary
    for name, s in layers.items():
        assert s["frac_pos"] + s["frac_zero"] + s["frac_neg"] == pytest.approx(1.0)
        assert s["wp"] > 0 and s["wn"] > 0 and s["delta"] > 0
        # Δ = 0.05·max|w| of the stored latent weights
        w = loaded.model.get_submodule(name).weight
        assert s["delta"] == pytest.approx(0.05 * w.abs().max().item(), rel=1e-5)
        for region in ("pos", "zero", "neg"):
            before, after = s[f"grad_abs_mean_{region}"], s[f"grad_abs_mean_scaled_{region}"]
            assert before is not None and before > 0 and after is not None
        # the zero region is unscaled; the +/- regions are scaled by Wp/Wn (which moved a
        # little during the epoch, hence the tolerance)
        assert s["grad_abs_mean_scaled_zero"] == pytest.approx(s["grad_abs_mean_zero"])
        assert s["grad_abs_mean_scaled_pos"] / s["grad_abs_mean_pos"] == pytest.approx(s["wp"], rel=0.2)
        assert s["grad_abs_mean_scaled_neg"] / s["grad_abs_mean_neg"] == pytest.approx(s["wn"], rel=0.2)


TINY = dict(data_dir=str(CIFAR_ARCHIVE), limit_train=256, limit_test=100, batch_size=64,
            device="cpu", progress=False, mode="ttq", lr=0.02, grad_stats_every=1)


def _strip_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@needs_cifar
def test_resume_equals_uninterrupted_run(tmp_path, monkeypatch):
    straight = train(TrainConfig(epochs=3, out=str(tmp_path / "a"), **TINY))
    # the same run, interrupted (Ctrl-C) at the start of its second epoch
    real_epoch = Trainer._train_epoch

    def interrupted(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self, epoch)
    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(epochs=3, out=str(tmp_path / "b"), **TINY))
    monkeypatch.setattr(Trainer, "_train_epoch", real_epoch)
    assert len(torch.load(tmp_path / "b" / "last.pt", weights_only=True)["history"]) == 1
    resumed = train(TrainConfig(epochs=3, out=str(tmp_path / "b"), resume=True, **TINY))
    assert straight["state_dict"].keys() == resumed["state_dict"].keys()
    for k, v in straight["state_dict"].items():
        assert torch.equal(v, resumed["state_dict"][k]), k
    assert _strip_seconds(straight["history"]) == _strip_seconds(resumed["history"])
    lines = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


@needs_cifar
def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    train(TrainConfig(epochs=1, out=str(tmp_path), **TINY))
    before = (tmp_path / "last.pt").read_bytes()
    monkeypatch.setattr(LRSchedule, "lr_at", lambda self, step: 1e30)
    with pytest.raises(TrainingDiverged, match="NaN/Inf.*epoch 2.*last.pt \\(epoch 1\\) is kept"):
        train(TrainConfig(epochs=2, out=str(tmp_path), resume=True, **TINY))
    assert (tmp_path / "last.pt").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@needs_cifar
def test_sparsity_rule_and_ste_ablation_in_training(tmp_path):
    no_stats = {**TINY, "grad_stats_every": 0}
    ckpt = train(TrainConfig(epochs=1, out=str(tmp_path), target_sparsity=0.6, **no_stats))
    for s in ckpt["history"][0]["layers"].values():
        assert s["frac_zero"] == pytest.approx(0.6, abs=1e-3)
        assert s["grad_abs_mean_pos"] is None  # no step sampled
    ckpt = train(TrainConfig(epochs=1, out=str(tmp_path / "ste"), grad_scaling=False, **TINY))
    assert ckpt["quant"]["scale_grad"] is False
    for s in ckpt["history"][0]["layers"].values():
        assert s["grad_abs_mean_scaled_pos"] == pytest.approx(s["grad_abs_mean_pos"])


def test_lr_schedule_by_hand():
    s = LRSchedule(peak=0.1, total_steps=100, warmup_steps=10, kind="cosine")
    assert s.lr_at(0) == pytest.approx(0.01) and s.lr_at(9) == pytest.approx(0.1)
    assert s.lr_at(55) == pytest.approx(0.05)        # half way through the cosine part
    assert s.lr_at(99) == pytest.approx(0.5 * 0.1 * (1 + math.cos(math.pi * 89 / 90)))
    st = LRSchedule(peak=0.1, total_steps=100, kind="step", milestones=(0.5, 0.75), gamma=0.1)
    assert [st.lr_at(i) for i in (0, 49, 50, 74, 75)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])


def test_random_crop_flip_is_a_shifted_window():
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).reshape(2, 3, 32, 32) + 1
    gen = torch.Generator().manual_seed(3)
    out = random_crop_flip(x, gen)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(2):
        # the output must equal some 32x32 window of the padded image, maybe mirrored
        found = any(torch.equal(out[i], win) or torch.equal(out[i], win.flip(-1))
                    for dy in range(9) for dx in range(9)
                    for win in [padded[i, :, dy:dy + 32, dx:dx + 32]])
        assert found
    # same seed, same augmentation
    assert torch.equal(out, random_crop_flip(x, torch.Generator().manual_seed(3)))


def test_trainer_refuses_to_overwrite_a_run(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"precious")
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(TrainConfig(out=str(tmp_path), **QUICK))
    assert (tmp_path / "last.pt").read_bytes() == b"precious"


# ----------------------------------------------------------------------------- --init normalisation

FP_CKPT = Path(__file__).resolve().parents[1] / "benchmarks/results/h200-2026-11-26/resnet20_fp_best.pt"
TORCHVISION_IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])  # torchvision's docs
INIT_RUN = dict(QUICK, limit_train=256, limit_test=200, bn_recal_images=128, grad_stats_every=0)


def _plain_state_dict(tmp_path) -> Path:
    """The committed FP ResNet-20 as a published-style .th file (no normalisation record)."""
    sys.path.insert(0, str(FP_CKPT.parents[3]))
    from benchmarks.old_style_checkpoint import convert
    dst = tmp_path / "resnet20-old.th"
    convert(str(FP_CKPT), str(dst))
    return dst


@needs_cifar
def test_init_from_plain_state_dict_keeps_its_imagenet_normalisation(tmp_path, capsys):
    th = _plain_state_dict(tmp_path)
    out = tmp_path / "ttq"
    train(TrainConfig(mode="ttq", arch="resnet20", init=str(th), normalization="imagenet",
                      epochs=1, lr=0.01, out=str(out), **INIT_RUN))
    for name in ("best.pt", "last.pt"):
        norm = torch.load(out / name, weights_only=True)["normalization"]
        assert norm["mean"] == pytest.approx(TORCHVISION_IMAGENET[0])
        assert norm["std"] == pytest.approx(TORCHVISION_IMAGENET[1])
        assert "--normalization imagenet" in norm["origin"]
    said = [ln for ln in capsys.readouterr().out.splitlines() if "input normalisation" in ln]
    assert len(said) == 1 and "0.485" in said[0] and "imagenet" in said[0], said
    # a --resume continues with the run's own record, unchanged
    first = torch.load(out / "last.pt", weights_only=True)["normalization"]
    train(TrainConfig(mode="ttq", arch="resnet20", init=str(th), normalization="imagenet",
                      epochs=2, lr=0.01, out=str(out), resume=True, **INIT_RUN),
          given={"epochs", "resume", "out"})
    assert torch.load(out / "last.pt", weights_only=True)["normalization"] == first


@needs_cifar
def test_init_from_toolkit_checkpoint_keeps_its_recorded_normalisation(tmp_path):
    ckpt = torch.load(FP_CKPT, weights_only=True)
    ckpt["normalization"] = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    init = tmp_path / "fp-half.pt"
    torch.save(ckpt, init)
    out = tmp_path / "ttq"
    train(TrainConfig(mode="ttq", init=str(init), epochs=1, lr=0.01, out=str(out), **INIT_RUN))
    norm = torch.load(out / "best.pt", weights_only=True)["normalization"]
    assert norm["mean"] == [0.5, 0.5, 0.5] and norm["std"] == [0.25, 0.25, 0.25]
    assert "recorded in --init" in norm["origin"]
    # a request that contradicts the record is refused, naming both
    with pytest.raises(ConfigError, match="--normalization imagenet contradicts"):
        Trainer(TrainConfig(mode="ttq", init=str(init), normalization="imagenet", epochs=1,
                            out=str(tmp_path / "refused"), **INIT_RUN))


def test_train_help_shows_imagenet_normalisation_for_published_th_files(capsys):
    from ttq_core.train.cli import build_parser
    text = build_parser().format_help()
    th_lines = [ln for ln in text.splitlines() if ".th" in ln and "--init" in ln]
    assert th_lines and all("--normalization imagenet" in ln for ln in th_lines), th_lines
