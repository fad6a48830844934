"""The committed H200 checkpoints (benchmarks/results/h200-2026-11-26) reproduce, on this
CPU and through today's code paths (the grouped ternarization, fp32), the test accuracy
their training run recorded on the GPU (per-layer path, bf16 autocast) over the full
CIFAR-10 JPEG test split."""

from pathlib import Path

import pytest
import torch

from ttq_core.checkpoint import load_model
from ttq_core.data import DeviceData, load_cifar10
from ttq_core.train.loop import evaluate

from conftest import CIFAR_ARCHIVE, needs_cifar

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "h200-2026-11-26"


@needs_cifar
@pytest.mark.parametrize("name", ["resnet20_fp_best.pt", "resnet20_ttq_best.pt"])
def test_committed_checkpoint_reproduces_recorded_accuracy(name):
    loaded = load_model(RESULTS / name)
    ckpt = loaded.checkpoint
    arrays = load_cifar10(str(CIFAR_ARCHIVE), progress=False)
    norm = ckpt["normalization"]
    test = DeviceData(arrays.test.images, arrays.test.labels, norm["mean"], norm["std"])
    with torch.inference_mode():
        _, acc = evaluate(loaded.model, test, 500, torch.device("cpu"))
    # bf16 on the GPU vs fp32 here may flip a handful of the 10,000 predictions
    assert acc == pytest.approx(ckpt["metrics"]["test_acc"], abs=0.003)
    assert ckpt["metrics"]["test_images"] == len(test) == 10000
