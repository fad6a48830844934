"""TTQ quantizer: ternary layers with trained scales Wp, Wn, threshold rules, export.

See :mod:`ttq_core.quantize.function` for the exact forward and gradients.
"""

from .api import (FIRST_LAST, TernaryExport, apply_quant_record, default_fp_layers,
                  export_ternary, layer_weight_stats, quant_record, ternarize, ternary_layers)
from .function import TernaryWeight, ternary_weight
from .layers import (MIN_SCALE, TERNARY_LAYER_TYPES, TernaryConv2d, TernaryLayerMixin,
                     TernaryLinear, TernaryQuantizer)
from .rules import ThresholdRule, get_rule, register_rule, rule_names

__all__ = [
    "FIRST_LAST", "MIN_SCALE", "TERNARY_LAYER_TYPES", "TernaryConv2d", "TernaryExport",
    "TernaryLayerMixin", "TernaryLinear", "TernaryQuantizer", "TernaryWeight", "ThresholdRule",
    "apply_quant_record", "default_fp_layers", "export_ternary", "get_rule",
    "layer_weight_stats", "quant_record", "register_rule", "rule_names", "ternarize",
    "ternary_layers", "ternary_weight",
]
