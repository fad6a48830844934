"""The same analysis on every device: ``analyze`` measures in full float32 (issue 20).

On the CPU the TF32 flags change nothing, so the CPU tests check the switch itself: off
inside ``analyze`` (seen from a forward hook), the caller's values back afterwards, also
when the analysis fails.  Where CUDA is present, the ``analysis.json`` of the shipped
ternary ResNet-20 on real test images is compared between CPU and CUDA: every number
within 1e-5 relative, a bound that TF32's changes (~5e-5) break and float32 summation
order (~1e-7) does not.
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


def _leaves(doc, path=""):
    """(path, value) of every scalar in a JSON document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, f"{path}/{k}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, f"{path}/{i}")
    else:
        yield path, doc


def _differences(a, b, rel: float) -> list[str]:
    la, lb = dict(_leaves(a)), dict(_leaves(b))
    out = [f"{k}: only in one" for k in la.keys() ^ lb.keys()]
    for k in la.keys() & lb.keys():
        x, y = la[k], lb[k]
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
        if numbers and abs(x - y) > rel * max(abs(x), abs(y)):
            out.append(f"{k}: {x} vs {y}")
        elif not numbers and x != y:
            out.append(f"{k}: {x!r} vs {y!r}")
    return sorted(out)


def test_difference_helper_tells_tf32_sized_changes_apart():
    # the tolerance below separates what TF32 did (issue 20: effective additions 9,584,922
    # vs 9,585,449, 5.5e-5 relative) from float32 summation-order noise (~1e-7)
    a = {"adds": 9584922.0, "acc": 0.849, "name": "x", "rows": [1, 2]}
    assert _differences(a, dict(a, adds=9584922.5), 1e-5) == []
    assert _differences(a, dict(a, adds=9585449.0), 1e-5) == ["/adds: 9584922.0 vs 9585449.0"]
    assert _differences(a, dict(a, name="y"), 1e-5) == ["/name: 'x' vs 'y'"]


@needs_cifar
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_cuda_analysis_json_agree(tf32_on):
    # TF32 left on by the caller, as PyTorch's cuDNN default is: the analysis must not use it.
    # Both devices compute in float32 but sum in different orders (oneDNN, cuDNN), which can
    # move a pre-activation within ~1e-7 of zero across it: every number of analysis.json
    # must agree to 1e-5 relative (TF32 moved them by ~5e-5), most exactly.
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
    cpu, cuda = docs["cpu"], docs["cuda"]
    # integer summaries of 500 images may move by one image: an image whose sparsity sits
    # next to a histogram bin edge, or (very rarely) whose top-1 class changes
    hist = {d: doc.pop("histograms") for d, doc in (("cpu", cpu), ("cuda", cuda))}
    for layer, counts in hist["cpu"].get("layers", {}).items():
        moved = sum(abs(a - b) for a, b in zip(counts, hist["cuda"]["layers"][layer]))
        assert sum(counts) == sum(hist["cuda"]["layers"][layer]) and moved <= 2, layer
    accuracy = [doc["network"].pop("measured_acc") for doc in (cpu, cuda)]
    assert abs(accuracy[0] - accuracy[1]) <= 1 / 500
    differences = _differences(cpu, cuda, 1e-5)
    assert not differences, f"{len(differences)} numbers differ: {differences[:10]}"
    exact = _differences(cpu, cuda, 0.0)
    print(f"CPU vs CUDA: {len(exact)} of {len(dict(_leaves(cpu)))} values not bit-identical "
          f"(all within 1e-5): {exact[:5]}; accuracy {accuracy}")
