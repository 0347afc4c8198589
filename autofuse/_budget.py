"""One deadline for a whole fit: search, fusion and any final refit.

The clock starts when ``fit`` is called. The search stops at ``search_deadline``, which
leaves ``reserve`` seconds for fusing the library and building the fitted model; refits on
all rows (``refit_full=True``) run against the final deadline and are skipped, keeping the
fold models, when they would not fit in it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


#: Share of the budget kept for refitting the members when ``refit_full=True``.
REFIT_SHARE = 0.2


def reserve_for(time_limit: float, refit_full: bool = False, fusion_share: float = 0.0
                ) -> float:
    """Seconds kept back from the search: for fusion, 6% of the budget, at least 1.5 s,
    at most 30% of it, or ``fusion_share`` of it for a combiner that fits models of its own
    (``distill``: its students); with ``refit_full``, another 20% for the refits."""
    fuse = max(min(max(1.5, 0.06 * time_limit), 0.3 * time_limit),
               fusion_share * time_limit)
    return fuse + (REFIT_SHARE * time_limit if refit_full else 0.0)


@dataclass
class Budget:
    """The run's deadlines as ``time.monotonic()`` values (None: no time limit)."""

    time_limit: float | None
    refit_full: bool = False
    start: float = field(default_factory=time.monotonic)
    fusion_share: float = 0.0  # the combiner's ``time_share``

    @property
    def deadline(self) -> float | None:
        return None if self.time_limit is None else self.start + self.time_limit

    @property
    def search_deadline(self) -> float | None:
        if self.time_limit is None:
            return None
        return self.start + self.time_limit - reserve_for(self.time_limit, self.refit_full,
                                                          self.fusion_share)

    def left(self) -> float:
        """Seconds to the final deadline (infinite without a time limit)."""
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start
