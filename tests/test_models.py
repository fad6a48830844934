"""Tests of ttq_core.models: published parameter counts, conv+linear MACs, module
names, registry behaviour and forward shapes."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from ttq_core.errors import ConfigError
from ttq_core.models import ModelSpec, build_model, list_models, model_spec

# (name, num_classes, parameters, conv+linear MACs at the default input size)
REFERENCE = [
    ("resnet20", 10, 269_722, 40_551_040),
    ("resnet32", 10, 464_154, 68_862_592),
    ("resnet44", 10, 658_586, 97_174_144),
    ("resnet56", 10, 853_018, 125_485_696),
    ("resnet18", 1000, 11_689_512, 1_814_073_344),
    ("alexnet", 1000, 61_100_840, 714_188_480),
]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, ...], batch: int = 1) -> int:
    """Conv2d and Linear multiply-accumulates of one forward pass, via forward hooks."""
    total = 0

    def conv_hook(m: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += output.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inputs, output) -> None:
        nonlocal total
        rows = output.numel() // m.out_features
        total += m.out_features * m.in_features * rows

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(batch, *input_size))
    finally:
        for h in handles:
            h.remove()
    return total // batch


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {name: build_model(name, num_classes=nc) for name, nc, _, _ in REFERENCE}


@pytest.mark.parametrize("name,num_classes,params,macs", REFERENCE)
def test_parameter_count(models, name, num_classes, params, macs):
    assert count_params(models[name]) == params


@pytest.mark.parametrize("name,num_classes,params,macs", REFERENCE)
def test_macs_at_default_input(models, name, num_classes, params, macs):
    assert count_macs(models[name], model_spec(name).input_size) == macs


def test_mac_hook_scales_with_batch(models):
    assert count_macs(models["resnet20"], (3, 32, 32), batch=2) == 40_551_040


@pytest.mark.parametrize("name", ["resnet20", "resnet18"])
def test_flop_counter_mode_agrees(models, name):
    model = models[name].eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *model_spec(name).input_size))
    expected = dict((n, m) for n, _, _, m in REFERENCE)[name]
    assert counter.get_total_flops() == 2 * expected


def test_cifar_resnet_names(models):
    names = dict(models["resnet20"].named_modules())
    for key in ["conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2",
                "layer1.0.bn2", "layer1.0.shortcut", "layer2.0.shortcut", "layer3.2.bn2", "linear"]:
        assert key in names, key
    assert "layer3.3" not in names
    for key in ["layer1.0.shortcut", "layer2.0.shortcut", "layer3.0.shortcut"]:
        assert sum(p.numel() for p in names[key].parameters()) == 0
    keys = set(models["resnet20"].state_dict())
    assert "linear.weight" in keys and "linear.bias" in keys
    assert not any("shortcut" in k for k in keys)
    assert isinstance(names["linear"], nn.Linear) and names["linear"].in_features == 64


def test_resnet18_names(models):
    names = dict(models["resnet18"].named_modules())
    for key in ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer4.1.bn2",
                "layer2.0.downsample.0", "layer2.0.downsample.1", "avgpool", "fc"]:
        assert key in names, key
    assert "layer4.1.downsample" not in names
    assert "layer1.0.downsample" not in names
    ds = names["layer2.0.downsample.0"]
    assert isinstance(ds, nn.Conv2d) and ds.kernel_size == (1, 1) and ds.stride == (2, 2) and ds.bias is None
    assert isinstance(names["layer2.0.downsample.1"], nn.BatchNorm2d)
    conv1 = names["conv1"]
    assert conv1.kernel_size == (7, 7) and conv1.stride == (2, 2) and conv1.padding == (3, 3)


def test_alexnet_names(models):
    keys = set(models["alexnet"].state_dict())
    for idx in (0, 3, 6, 8, 10):
        assert f"features.{idx}.weight" in keys and f"features.{idx}.bias" in keys
    for idx in (1, 4, 6):
        assert f"classifier.{idx}.weight" in keys and f"classifier.{idx}.bias" in keys
    assert isinstance(models["alexnet"].avgpool, nn.AdaptiveAvgPool2d)
    assert sum(isinstance(m, nn.Dropout) for m in models["alexnet"].modules()) == 2


def test_alexnet_bn_variant():
    model = build_model("alexnet_bn")
    assert model.arch_kwargs["batch_norm"] is True and model.arch_kwargs["dropout"] == 0.0
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 5
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    spec = model_spec("alexnet_bn")
    assert spec.family == "alexnet" and spec.input_size == (3, 224, 224)
    assert spec.builder is model_spec("alexnet").builder


@pytest.mark.parametrize("name", ["resnet20", "resnet56", "resnet18", "alexnet", "alexnet_bn"])
def test_rebuild_from_arch_kwargs(name):
    model = build_model(name, num_classes=7)
    arch = json.loads(json.dumps(model.arch_kwargs))  # as stored in a checkpoint
    assert arch["num_classes"] == 7 and model.arch_name == name
    rebuilt = build_model(name, **arch)
    a, b = model.state_dict(), rebuilt.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    assert rebuilt.arch_kwargs == model.arch_kwargs
    rebuilt.load_state_dict(a)


@pytest.mark.parametrize("name,num_classes", [("resnet20", 10), ("resnet32", 100), ("resnet18", 5), ("alexnet", 3), ("alexnet_bn", 4)])
def test_forward_shapes(name, num_classes):
    model = build_model(name, num_classes=num_classes).eval()
    batch = 2 if model_spec(name).family == "cifar-resnet" else 1
    with torch.no_grad():
        out = model(torch.randn(batch, *model_spec(name).input_size))
    assert out.shape == (batch, num_classes)


def test_train_mode_forward_cifar():
    model = build_model("resnet20").train()
    out = model(torch.randn(4, 3, 32, 32))
    out.sum().backward()
    assert model.conv1.weight.grad is not None


def test_registry_listing_and_spec():
    assert list_models() == sorted(["resnet20", "resnet32", "resnet44", "resnet56", "resnet18", "alexnet", "alexnet_bn"])
    spec = model_spec("resnet20")
    assert isinstance(spec, ModelSpec)
    assert spec.input_size == (3, 32, 32) and spec.family == "cifar-resnet" and spec.name == "resnet20"
    with pytest.raises(Exception):
        spec.name = "x"  # frozen


def test_unknown_name_is_config_error():
    with pytest.raises(ConfigError) as info:
        build_model("resnet21")
    msg = str(info.value)
    assert "\n" not in msg and "resnet21" in msg and "resnet20" in msg and "alexnet_bn" in msg
    with pytest.raises(ConfigError):
        model_spec("nope")


@pytest.mark.parametrize("kwargs", [
    {"depth": 20},
    {"num_classes": 0},
    {"num_classes": 2.5},
    {"num_classes": True},
])
def test_bad_kwargs_are_config_errors_cifar(kwargs):
    with pytest.raises(ConfigError):
        build_model("resnet20", **kwargs)


@pytest.mark.parametrize("kwargs", [
    {"batch_norm": "yes"},
    {"dropout": 1.0},
    {"dropout": -0.1},
    {"dropout": (0.5,)},
    {"widths": [1, 2]},
])
def test_bad_kwargs_are_config_errors_alexnet(kwargs):
    with pytest.raises(ConfigError):
        build_model("alexnet", **kwargs)


def test_non_json_value_rejected():
    with pytest.raises(ConfigError):
        build_model("resnet18", zero_init_residual=torch.tensor(True))
