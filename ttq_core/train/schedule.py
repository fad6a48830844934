"""Learning-rate schedules as pure functions of the optimizer step.

``lr_at(step)`` depends only on the step index, so a resumed run continues the exact
schedule with no scheduler state to save.  Warm-up is linear from ``peak/warmup_steps`` to
``peak``; after it comes cosine decay to 0, step decay (×gamma at each milestone, given
as fractions of the whole run) or a constant LR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class LRSchedule:
    peak: float                 # peak learning rate
    total_steps: int            # optimizer steps in the whole run
    warmup_steps: int = 0       # steps of linear warm-up
    kind: str = "cosine"        # "cosine", "step" or "constant"
    milestones: Sequence[float] = (0.5, 0.75)  # step: fractions of total_steps
    gamma: float = 0.1          # step: factor at each milestone

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak * (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return self.peak
        if self.kind == "step":
            passed = sum(step >= round(m * self.total_steps) for m in self.milestones)
            return self.peak * self.gamma ** passed
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return 0.5 * self.peak * (1.0 + math.cos(math.pi * progress))
