"""The quantizer family: TTQ (ternary layers with trained scales Wp, Wn, threshold rules,
export) and the other methods ``ttq-train --quantizer`` offers (TWN, BWN, LSQ int4/int8).

See :mod:`ttq_core.quantize.family` for the registry and each method's module for its
exact forward and gradients (TTQ: :mod:`ttq_core.quantize.function`).
"""

# The quantizer modules register their methods in this order (layers: ttq; twn; bwn;
# lsq: int4, int8), which is the order of QUANTIZERS and of ttq-train --quantizer.
from .layers import (MIN_SCALE, TERNARY_LAYER_TYPES, TernaryConv2d, TernaryLayerMixin,  # isort: skip
                     TernaryLinear, TernaryQuantizer)
from .twn import TWNQuantizer  # isort: skip
from .bwn import BWNQuantizer  # isort: skip
from .lsq import LSQQuantizer  # isort: skip
from .api import (FIRST_LAST, TernaryExport, apply_quant_record, default_fp_layers,
                  export_ternary, layer_weight_stats, quant_record, quantized_layers,
                  record_method, ternarize, ternary_layers)
from .base import NotTernaryError, WeightQuantizer
from .family import QUANTIZERS, QuantizerSpec, get_quantizer, quantizer_names, register_quantizer
from .function import TernaryWeight, ternary_weight
from .rules import ThresholdRule, get_rule, register_rule, rule_names

__all__ = [
    "BWNQuantizer", "FIRST_LAST", "LSQQuantizer", "MIN_SCALE", "NotTernaryError", "QUANTIZERS",
    "QuantizerSpec", "TERNARY_LAYER_TYPES", "TWNQuantizer", "TernaryConv2d", "TernaryExport",
    "TernaryLayerMixin", "TernaryLinear", "TernaryQuantizer", "TernaryWeight", "ThresholdRule",
    "WeightQuantizer", "apply_quant_record", "default_fp_layers", "export_ternary", "get_quantizer",
    "get_rule", "layer_weight_stats", "quant_record", "quantized_layers", "quantizer_names",
    "record_method", "register_quantizer", "register_rule", "rule_names", "ternarize",
    "ternary_layers", "ternary_weight",
]
