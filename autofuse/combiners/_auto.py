"""``auto``: try several combiners and keep the one with the best outer score (nested
cross-validation over the out-of-fold predictions), never the best in-sample score."""

from __future__ import annotations

from autofuse.combiners._base import Combiner
from autofuse.combiners._fusion import Fusion
from autofuse.combiners._nested import Assessment, assess, better
from autofuse.combiners._view import LibraryView

#: The combiners ``auto`` compares unless told otherwise.
AUTO_CANDIDATES = ("best", "average", "caruana", "stacking")


class Auto(Combiner):
    """Choose among ``combiners`` (name -> Combiner) by outer score; ties go to the one
    listed first (the simpler one, in the default order). They are tried in that order,
    and once the view's deadline has passed the rest are skipped (the first always runs)."""

    def __init__(self, combiners: dict[str, Combiner]) -> None:
        if not combiners:
            raise ValueError("auto needs at least one combiner to choose from")
        self.combiners = dict(combiners)

    def assess_all(self, view: LibraryView) -> tuple[Assessment, list[Assessment]]:
        """Every candidate combiner assessed on ``view``; (the chosen one, all of them).
        Raises RuntimeError when every one failed."""
        tried = []
        for name, combiner in self.combiners.items():
            if tried and view.time_left() <= 0:  # the first one always runs
                tried.append(Assessment(name, error="skipped: the time limit was reached"))
                continue
            tried.append(assess(name, combiner, view))
        chosen = None
        for a in tried:
            if a.ok and (chosen is None or better(view, a.outer, chosen.outer)):
                chosen = a
        if chosen is None:
            raise RuntimeError("auto: every combiner failed: " + "; ".join(
                f"{a.name}: {a.error}" for a in tried))
        name = view.metric.name
        for a in tried:
            if a is chosen:
                a.reason = f"chosen by auto: best outer {name} of {len(tried)} combiners"
            elif a.ok:
                a.reason = (f"not chosen by auto: outer {name} {a.outer:.6g} vs "
                            f"{chosen.outer:.6g} ({chosen.name})")
            else:
                a.reason = a.error if a.error.startswith("skipped") else f"failed: {a.error}"
        return chosen, tried

    def fuse(self, view: LibraryView) -> Fusion:
        chosen, _ = self.assess_all(view)
        assert chosen.fusion is not None
        return chosen.fusion
