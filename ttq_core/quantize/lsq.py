"""``int4``/``int8``: symmetric per-output-channel uniform weights with a learned step size, LSQ
(Esser, McKinstry, Bablani, Appuswamy & Modha, "Learned Step Size Quantization", ICLR 2020,
arXiv:1902.08153).

For b bits, Q = 2^(b−1) − 1 (int4: Q = 7, levels −7..7; int8: Q = 127, levels −127..127).
Output channel c of a layer holds N_c weights and one learned step ``s_c > 0`` (weight
units; the state_dict holds them as ``<layer>.quantizer.step``, shape [C_out]).

Forward::

    v_i = w_i / s_c                           (dimensionless)
    k_i = clamp(round(v_i), −Q, Q)            integer, round half to even (torch.round)
    w_q = s_c · k_i                           at most 2Q + 1 = 2^b − 1 values per channel

Backward, with ``g = ∂L/∂w_q`` (loss units per weight unit) — LSQ's eqs. 3 and 5, round
passed straight through, the clamp differentiated:

* ``∂L/∂w_i = g_i · 1{−Q < v_i < Q}`` (dimensionless factor: weights clipped at ±Q·s_c
  get no gradient);
* ``∂L/∂s_c = γ_c · Σ_{i∈c} g_i · ∂w_q,i/∂s_c`` with ``∂w_q/∂s = round(v) − v`` for
  ``−Q < v < Q``, ``−Q`` for ``v ≤ −Q``, ``+Q`` for ``v ≥ Q`` (dimensionless, so
  ``∂L/∂s_c`` is in loss units per weight unit), and LSQ's gradient scale
  ``γ_c = 1 / sqrt(N_c · Q)``.

Initialisation (LSQ): ``s_c = 2 · mean|w_c| / sqrt(Q)`` on the starting weights.
Positivity: after every optimizer step the trainer projects ``s_c`` onto
``[min_scale, ∞)`` (:meth:`LSQQuantizer.clamp_scales_`, default 1e-8), since a step ≤ 0
divides by zero or flips every weight's sign.

Where we differ from the paper, and why: LSQ is per tensor (one s per layer, N_W its
weights) and quantizes weights to [−Q_N, Q_P] = [−2^(b−1), 2^(b−1) − 1]; here one step
per output channel (N_c in γ) and the symmetric range [−Q, Q], because issue 21 asks for
symmetric per-channel integers, and the symmetric range keeps ≤ 2^b − 1 levels per
channel (a zero-centred grid, no lone −2^(b−1) level).  LSQ's paper also quantizes the
activations; we quantize weights only, as every method here.

Example (one channel, int4, Q = 7, s = 0.1, N = 4): w = [0.23, −0.05, 0.8, −0.66]:
v = [2.3, −0.5, 8, −6.6], k = [2, 0 (half to even), 7, −7], w_q = [0.2, 0, 0.7, −0.7];
with g = [1, 2, 3, 4]: ∂L/∂w = [1, 2, 0, 4], ∂w_q/∂s = [−0.3, 0.5, 7, −0.4] and
∂L/∂s = (−0.3 + 1.0 + 21 − 1.6) / sqrt(4·7) = 20.1 / 5.2915 = 3.7986.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import WeightQuantizer, sign_fractions
from .bwn import _channel_view
from .family import QuantizerSpec, register_quantizer
from .function import _accumulate_stats

MIN_STEP = 1e-8  # weight units; lower bound of every step s_c (positivity guard)


def levels(bits: int) -> int:
    """Q = 2^(bits−1) − 1, the largest integer level of the symmetric range [−Q, Q]."""
    return 2 ** (bits - 1) - 1


class LSQWeight(torch.autograd.Function):
    """``w_q = s_c·clamp(round(w/s_c), −Q, Q)`` with LSQ's gradients (module doc)."""

    @staticmethod
    def forward(ctx, w, step, q: int, stats):  # noqa: D401 - autograd API
        s = _channel_view(step.to(w.dtype), w)
        v = w / s
        k = torch.clamp(torch.round(v), -q, q)
        ctx.save_for_backward(v, k, step)
        ctx.q = q
        ctx.stats = stats
        return k * s

    @staticmethod
    def backward(ctx, g):
        v, k, step = ctx.saved_tensors
        q = ctx.q
        inside = (v > -q) & (v < q)
        grad_w = g * inside.to(g.dtype)
        dwq_ds = torch.where(inside, k - v, k)  # k = ±Q where clipped
        n_c = v[0].numel()
        gamma = 1.0 / math.sqrt(n_c * q)
        grad_step = (g * dwq_ds).reshape(v.shape[0], -1).sum(dim=1) * gamma
        if ctx.stats is not None:
            _accumulate_stats(ctx.stats, g, grad_w, k > 0, k < 0)
        return grad_w, grad_step.to(step.dtype), None, None


class LSQQuantizer(WeightQuantizer):
    """Symmetric b-bit per-output-channel weights with learned steps (module doc).

    Args:
        bits: 4 or 8 (any b ≥ 2 works: Q = 2^(b−1) − 1).
        out_channels: C_out of the layer (the length of ``step``).
        min_scale: lower bound of the steps (:meth:`clamp_scales_`).

    In the history ``wp`` and ``wn`` are both the mean step over the output channels
    (weight units: the spacing of the integer grid, not a weight level), and ``delta`` is
    half of it, the mean |w| below which a weight rounds to 0.
    """

    def __init__(self, bits: int, out_channels: int, min_scale: float = MIN_STEP):
        super().__init__()
        if bits < 2:
            from ..errors import ConfigError
            raise ConfigError(f"LSQ needs at least 2 bits, got {bits}")
        self.bits = int(bits)
        self.q = levels(self.bits)
        self.method = f"int{self.bits}"
        self.min_scale = float(min_scale)
        self.step = nn.Parameter(torch.ones(int(out_channels)))

    def extra_repr(self) -> str:
        return f"bits={self.bits}, levels=[-{self.q}, {self.q}], channels={self.step.numel()}"

    @torch.no_grad()
    def init_from_(self, w: torch.Tensor) -> None:
        """LSQ's initial step per channel: ``s_c = 2·mean|w_c| / sqrt(Q)`` (≥ min_scale)."""
        mean_abs = w.detach().float().abs().reshape(w.shape[0], -1).mean(dim=1)
        self.step.copy_((2 * mean_abs / math.sqrt(self.q)).clamp(min=self.min_scale))

    @torch.no_grad()
    def clamp_scales_(self) -> None:
        """Project every step onto [min_scale, ∞) (call after each optimizer step)."""
        self.step.clamp_(min=self.min_scale)

    @torch.no_grad()
    def integers(self, w: torch.Tensor) -> torch.Tensor:
        """The integer levels k in [−Q, Q] of latent ``w`` (same shape, float dtype)."""
        s = _channel_view(self.step.detach().to(w.dtype), w)
        return torch.clamp(torch.round(w.detach() / s), -self.q, self.q)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return LSQWeight.apply(w, self.step, self.q, self.grad_stats)

    @torch.no_grad()
    def history_stats(self, w: torch.Tensor) -> torch.Tensor:
        pos, zero, neg = sign_fractions(self.integers(w))
        s = self.step.detach().float().mean()
        return torch.stack([pos, zero, neg, s, s, s / 2]).double()


def _lsq_factory(bits: int):
    def build(weight: torch.Tensor, min_scale: float = MIN_STEP) -> LSQQuantizer:
        return LSQQuantizer(bits, weight.shape[0], min_scale)
    return build


for _bits in (4, 8):
    register_quantizer(QuantizerSpec(
        f"int{_bits}", "integer", _bits, "output channel", ("step",),
        f"LSQ: s_c*k, integer k in [-{levels(_bits)}, {levels(_bits)}], s_c learned per "
        f"output channel", "Esser et al., ICLR 2020", _lsq_factory(_bits), "1902.08153"))
