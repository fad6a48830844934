"""The same analysis on every device: ``analyze`` measures in full float32 (issue 20).

On the CPU the TF32 flags change nothing, so the CPU tests check the switch itself: off
inside ``analyze`` (seen from a forward hook), the caller's values back afterwards, also
when the analysis fails.  Where CUDA is present, the ``analysis.json`` of the shipped
ternary ResNet-20 on real test images is compared between CPU and CUDA.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ttq_analysis import analyze
from ttq_analysis.precision import full_float32

from conftest import CIFAR_ARCHIVE, REPO, needs_cifar

CKPT = REPO / "benchmarks" / "results" / "cpu-2026-11-27" / "resnet20_ttq_best.pt"


def _flags() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


@pytest.fixture
def tf32_on():
    saved = _flags()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _tiny():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 2))


def test_tf32_off_inside_analyze_and_restored_after(tf32_on):
    model = _tiny()
    seen = []
    model[0].register_forward_hook(lambda *_: seen.append(_flags()))
    analyze(model, data=torch.randn(5, 2, 4, 4), input_shape=(2, 4, 4), device="cpu",
            progress=False)
    assert seen and set(seen) == {(False, False)}
    assert _flags() == (True, True)


def test_tf32_restored_when_analyze_fails(tf32_on):
    model = _tiny()

    def fail(module, args):
        if args[0].shape[0] == 5:   # the data batch, not the one-image shape probe
            raise RuntimeError("boom")
    model[0].register_forward_pre_hook(fail)
    with pytest.raises(RuntimeError, match="boom"):
        analyze(model, data=torch.randn(5, 2, 4, 4), input_shape=(2, 4, 4), device="cpu",
                progress=False)
    assert _flags() == (True, True)
    with pytest.raises(ValueError):
        with full_float32():
            assert _flags() == (False, False)
            raise ValueError
    assert _flags() == (True, True)


@needs_cifar
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_analysis_json_agree(tf32_on):
    # TF32 left on by the caller, as PyTorch's cuDNN default is: the analysis must not use it.
    from ttq_core.checkpoint import load_model
    from ttq_core.data import cifar10_split
    docs = {}
    for device in ("cpu", "cuda"):
        loaded = load_model(CKPT, device=torch.device(device))
        data = cifar10_split("test", loaded.checkpoint["normalization"], str(CIFAR_ARCHIVE),
                             limit=500, device=device, progress=False)
        doc = analyze(str(CKPT), data=data, device=device, progress=False).to_dict()
        doc["meta"].pop("device")
        docs[device] = json.loads(json.dumps(doc))
    assert docs["cpu"] == docs["cuda"]
