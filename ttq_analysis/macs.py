"""Dense multiply-accumulate counts per layer with fvcore's ``FlopCountAnalysis``.

Counting convention (fvcore's): **one multiply-add counts as one flop**, so fvcore's
"flops" of a conv or linear operator are its MACs.  Example: a 3×3 conv from 16 to 16
channels on a 32×32 output computes 32·32·16 outputs, each a sum of 16·3·3 products:
32·32·16·144 = 2,359,296 MACs (``torch.utils.flop_counter`` reports twice that, since it
counts the multiply and the add separately).

Only the ``conv`` and ``linear``/``addmm`` operators of each conv/linear module count as
the layer's MACs; every other operator fvcore counts (batch norm, pooling, ...) is
reported apart in :attr:`DenseCounts.other_ops` (so are conv/linear/matmul operators run
outside an ``nn.Conv2d``/``nn.Linear`` module, e.g. attention's q·kᵀ, under
``"<op> outside conv/linear layers"``), and operators fvcore cannot count are
listed in :attr:`DenseCounts.unsupported_ops`, never silently dropped.  Ternary layers
are counted with quantization switched off (same shapes, same MACs), so the trace sees
plain convolutions.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from ttq_core.quantize import TernaryLayerMixin

CONV_LINEAR_OPS = ("conv", "linear", "addmm", "matmul")
LAYER_TYPES = (nn.Conv2d, nn.Linear)


@contextlib.contextmanager
def _quiet_torchscript():
    """Silence exactly TorchScript's deprecation warnings (fvcore traces with it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=r".*torch\.jit\.\w+` is deprecated.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=r".*TorchScript.*deprecated.*")
        yield


def _fvcore():
    with _quiet_torchscript():
        from fvcore.nn import FlopCountAnalysis
    return FlopCountAnalysis


@contextlib.contextmanager
def quantization_off(model: nn.Module):
    """Temporarily run ternary layers as their float selves (restored on exit)."""
    layers = [m for m in model.modules() if isinstance(m, TernaryLayerMixin)]
    before = [m.quantize_enabled for m in layers]
    try:
        for m in layers:
            m.quantize_enabled = False
        yield
    finally:
        for m, flag in zip(layers, before):
            m.quantize_enabled = flag


@dataclass
class DenseCounts:
    """fvcore's dense counts for one input (batch of 1).

    ``layer_macs``: conv/linear module name -> MACs; ``other_ops``: operator -> count of
    everything else fvcore counted (batch norm, pooling...); ``unsupported_ops``: operator
    -> number of occurrences fvcore could not count.
    """

    layer_macs: dict[str, int]
    other_ops: dict[str, int] = field(default_factory=dict)
    unsupported_ops: dict[str, int] = field(default_factory=dict)


def count_dense_macs(model: nn.Module, input_shape: tuple[int, ...],
                     device: torch.device | str = "cpu") -> DenseCounts:
    """Dense MACs of every conv/linear layer of ``model`` for one input of ``input_shape``
    (C, H, W), with fvcore."""
    FlopCountAnalysis = _fvcore()
    names = [n for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
    x = torch.zeros((1, *input_shape), device=device)
    was_training = model.training
    model.eval()
    logger = logging.getLogger("fvcore")
    level = logger.level
    try:
        logger.setLevel(logging.ERROR)  # fvcore logs per-op warnings; we report them as data
        with quantization_off(model), _quiet_torchscript(), torch.no_grad():
            fca = FlopCountAnalysis(model, (x,))
            fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_module = fca.by_module_and_operator()
            unsupported = dict(fca.unsupported_ops())
            total_by_op = dict(by_module.get("", {}))
    finally:
        logger.setLevel(level)
        model.train(was_training)
    layer_macs = {}
    for name in names:
        ops = by_module.get(name, {})
        layer_macs[name] = int(sum(v for k, v in ops.items() if k in CONV_LINEAR_OPS))
    other = {op: int(v) for op, v in total_by_op.items() if op not in CONV_LINEAR_OPS}
    for op in CONV_LINEAR_OPS:  # e.g. attention's q·kᵀ matmul, a Conv1d: reported, not dropped
        outside = int(total_by_op.get(op, 0)) - sum(int(by_module.get(n, {}).get(op, 0))
                                                    for n in names)
        if outside > 0:
            other[f"{op} outside conv/linear layers"] = outside
    return DenseCounts(layer_macs, other, {k: int(v) for k, v in unsupported.items()})
