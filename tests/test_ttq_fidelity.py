"""TTQ trained as the authors train it (issue 10).

Pinned: ttq-train's defaults follow the authors' code (Wp = Wn = 1 at the start, Wp/Wn in
the weights' LR and weight-decay group, LR 0.1); batch-norm re-estimation gives the
running statistics a hand computation gives and changes no training step; and a short
real fine-tune from the committed FP ResNet-20 keeps its fraction of zero weights, where
the old parametrisation (least-squares scales, scale LR x0.01) loses it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ttq_core.checkpoint import load_model
from ttq_core.quantize import ternary_layers
from ttq_core.train import TrainConfig
from ttq_core.train.bn_calibration import recalibrate_batchnorm
from ttq_core.train.config import MODE_DEFAULTS
from ttq_core.train.loop import build_initial_model, param_groups, train

from conftest import CIFAR_ARCHIVE, REPO, needs_cifar

FP_CKPT = REPO / "benchmarks" / "results" / "h200-2026-11-26" / "resnet20_fp_best.pt"
OLD_DEFAULTS = dict(scale_init="least-squares", scale_lr_mult=0.01, wd_scales=False, lr=0.01,
                    bn_recal_images=0)


def test_defaults_follow_the_authors_code():
    cfg = TrainConfig(mode="ttq", init=str(FP_CKPT)).resolved()
    assert (cfg.scale_init, cfg.scale_lr_mult, cfg.wd_scales) == ("one", 1.0, True)
    assert MODE_DEFAULTS["ttq"]["lr"] == 0.1 and cfg.weight_decay == 2e-4
    model, fresh = build_initial_model(cfg, num_classes=10)
    assert fresh
    layers = list(ternary_layers(model))
    assert len(layers) == 18  # every conv but the first; the classifier stays FP
    for _, layer in layers:
        assert layer.quantizer.wp.item() == 1.0 and layer.quantizer.wn.item() == 1.0
    groups = param_groups(model, cfg)
    conv = layers[0][1].weight
    scale = layers[0][1].quantizer.wp

    def group_of(p):
        return next(g for g in groups if any(q is p for q in g["params"]))
    gw, gs = group_of(conv), group_of(scale)
    assert (gs["lr_mult"], gs["weight_decay"]) == (gw["lr_mult"], gw["weight_decay"]) == (1.0, 2e-4)


def test_old_checkpoints_resume_with_the_settings_they_ran_with():
    # a train_config stored before scale_init/bn_recal_images existed
    old = TrainConfig.from_dict({"mode": "ttq", "scale_lr_mult": 0.01, "wd_scales": False})
    assert (old.scale_init, old.bn_recal_images, old.scale_lr_mult) == ("least-squares", 0, 0.01)


class _Data:
    """The ``batches`` interface of DeviceData over fixed tensors (for the unit test)."""

    def __init__(self, x):
        self.x, self.device = x, "cpu"

    def batches(self, batch_size, shuffle=False, augment=False, generator=None):
        assert augment  # the trainer re-estimates under the training transform
        order = torch.randperm(len(self.x), generator=generator) if shuffle else torch.arange(len(self.x))
        for i in range(0, len(self.x), batch_size):
            idx = order[i:i + batch_size]
            yield self.x[idx], torch.zeros(len(idx), dtype=torch.long)


def test_bn_recalibration_equals_the_statistics_of_the_images():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    model[1].running_mean.fill_(123.0)  # stale statistics
    x = torch.randn(40, 3, 8, 8) * 3 + 1
    used = recalibrate_batchnorm(model, _Data(x), images=30, batch_size=7)
    assert used == 30
    # by hand: the 30 images it saw (same generator), mean and unbiased var per channel
    gen = torch.Generator().manual_seed(0x7_7171)
    seen = x[torch.randperm(40, generator=gen)[:30]]
    with torch.no_grad():
        y = model[0](seen)
    per_channel = y.transpose(0, 1).reshape(4, -1).double()
    # population statistics of the 30 images' outputs (batches of 7,7,7,7,2 normalised
    # separately, but the estimate is over all their elements, as fvcore's precise BN)
    assert torch.allclose(model[1].running_mean.double(), per_channel.mean(1), atol=1e-5)
    assert torch.allclose(model[1].running_var.double(), per_channel.var(1, unbiased=False),
                          rtol=1e-4)
    assert model[1].momentum == 0.1 and model.training  # momentum and mode put back


@needs_cifar
def test_recalibration_changes_no_training_step(tmp_path):
    common = dict(mode="ttq", data_dir=str(CIFAR_ARCHIVE), limit_train=256, limit_test=100,
                  batch_size=64, epochs=1, device="cpu", progress=False, grad_stats_every=0)
    a = train(TrainConfig(out=str(tmp_path / "a"), bn_recal_images=0, **common))
    b = train(TrainConfig(out=str(tmp_path / "b"), bn_recal_images=128, **common))
    for k, v in a["state_dict"].items():
        if "running_" in k or "num_batches_tracked" in k:
            continue
        assert torch.equal(v, b["state_dict"][k]), k
    assert not torch.equal(a["state_dict"]["bn1.running_mean"], b["state_dict"]["bn1.running_mean"])


def _initial_zero_fraction(t: float = 0.05) -> float:
    """Mean over the ternary layers of the FP checkpoint of the fraction |w| <= t·max|w|,
    counted directly on the stored weights (not through the quantizer)."""
    sd = torch.load(FP_CKPT, weights_only=True)["state_dict"]
    fr = [float((w.abs() <= t * w.abs().max()).float().mean()) for k, w in sd.items()
          if k.endswith(".weight") and w.dim() == 4 and k != "conv1.weight"]
    assert len(fr) == 18
    return sum(fr) / len(fr)


def _mean_zero(entry) -> float:
    return sum(v["frac_zero"] for v in entry["layers"].values()) / len(entry["layers"])


@needs_cifar
@pytest.mark.slow
def test_short_finetune_keeps_its_zero_fraction_where_the_old_defaults_lose_it(tmp_path):
    start = _initial_zero_fraction()
    assert 0.2 < start < 0.24  # the committed FP ResNet-20 at t = 0.05
    common = dict(mode="ttq", init=str(FP_CKPT), data_dir=str(CIFAR_ARCHIVE), limit_train=1000,
                  limit_test=200, batch_size=64, epochs=2, device="cpu", progress=False,
                  grad_stats_every=0)
    new = train(TrainConfig(out=str(tmp_path / "new"), **common))
    old = train(TrainConfig(out=str(tmp_path / "old"), **common, **OLD_DEFAULTS))
    assert _mean_zero(new["history"][-1]) >= 0.95 * start
    assert _mean_zero(old["history"][-1]) < 0.9 * start
    # and the new run does not test near chance because of stale batch-norm statistics
    assert new["history"][-1]["test_acc"] > 0.5
    loaded = load_model(tmp_path / "new" / "best.pt")
    assert loaded.checkpoint["quant"]["scale_init"] == "one"
