"""The quantizer family: one registry entry per weight-quantization method ``ttq-train --quantizer`` offers.

===========  =========  ====  ===============  ==========================================
name         family     bits  scale per        method (module with its exact equations)
===========  =========  ====  ===============  ==========================================
``ttq``      ternary    2     layer            {−Wn, 0, +Wp}, Wp/Wn learned (``function``)
``twn``      ternary    2     layer            {−α, 0, +α}, Δ = 0.7·mean|w| (``twn``)
``bwn``      binary     1     output channel   ±α_c, α_c = mean|w_c| (``bwn``)
``int4``     integer    4     output channel   s_c·k, k ∈ [−7, 7], s_c learned (``lsq``)
``int8``     integer    8     output channel   s_c·k, k ∈ [−127, 127], s_c learned (``lsq``)
===========  =========  ====  ===============  ==========================================

``bits`` is the storage width per weight as deployed (a ternary weight needs 2 bits, not
log2(3)); the per-layer or per-channel scales come on top.  Each method's module registers
its entry (:func:`register_quantizer`, in the order above: the package imports ``layers``,
``twn``, ``bwn``, ``lsq``), and users add a method the same way.  A spec's
``factory(weight, **options)`` builds the quantizer of one layer from its latent weight
(``ttq`` takes its threshold rule and gradient scaling, see
:func:`ttq_core.quantize.ternarize`; every method with learned scales takes ``min_scale``).
This module imports no quantizer, so every quantizer module can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError

FAMILIES = ("ternary", "binary", "integer")
GRANULARITIES = ("layer", "output channel")


@dataclass(frozen=True)
class QuantizerSpec:
    """One method of the family.

    ``name``: registry key and ``--quantizer`` value; ``family``: "ternary", "binary" or
    "integer"; ``bits``: bits per weight as stored; ``granularity``: what one scale
    covers, "layer" or "output channel"; ``learned``: names of the quantizer's learned
    parameters (its state_dict keys under ``<layer>.quantizer.``); ``description``: one
    line; ``paper``: the reference (authors, venue) and ``arxiv`` its arXiv id;
    ``factory(weight, **options)``: the quantizer of one layer with latent weight
    ``weight`` (learned parameters not yet initialised: call ``init_from_``).
    """

    name: str
    family: str
    bits: int
    granularity: str
    learned: tuple[str, ...]
    description: str
    paper: str
    factory: Callable  # (weight, **options) -> a WeightQuantizer
    arxiv: str = ""

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ConfigError(f"quantizer {self.name!r}: family must be one of "
                              f"{', '.join(FAMILIES)}, got {self.family!r}")
        if self.granularity not in GRANULARITIES:
            raise ConfigError(f"quantizer {self.name!r}: granularity must be one of "
                              f"{', '.join(GRANULARITIES)}, got {self.granularity!r}")

    @property
    def is_ternary(self) -> bool:
        """Whether layers of this method have {−1, 0, +1} codes (``ternary_codes``)."""
        return self.family == "ternary"


QUANTIZERS: dict[str, QuantizerSpec] = {}


def register_quantizer(spec: QuantizerSpec) -> QuantizerSpec:
    """Add ``spec`` to :data:`QUANTIZERS` (replacing one of the same name)."""
    QUANTIZERS[spec.name] = spec
    return spec


def get_quantizer(name: str) -> QuantizerSpec:
    """The registry entry ``name``; a ConfigError listing the known ones otherwise."""
    try:
        return QUANTIZERS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown quantizer {name!r}; known: "
                          f"{', '.join(QUANTIZERS)}") from None


def quantizer_names() -> list[str]:
    return list(QUANTIZERS)


__all__ = ["FAMILIES", "GRANULARITIES", "QUANTIZERS", "QuantizerSpec", "get_quantizer",
           "quantizer_names", "register_quantizer"]
