"""``auto``: try several combiners and keep one by its outer score (nested cross-validation
over the out-of-fold predictions), never by its in-sample score.

Outer scores of combiners fitted on the same predictions differ by little, often by less
than the noise of the rows they are measured on, so ``auto`` keeps a preferred combiner
(``caruana`` by default) unless another beats it by more than one standard error of their
paired differences over the outer folds; among those that do, the best outer score wins.
"""

from __future__ import annotations

from autofuse.combiners._base import Combiner
from autofuse.combiners._fusion import Fusion
from autofuse.combiners._nested import Assessment, assess, better, clearly_better
from autofuse.combiners._view import LibraryView

#: The combiners ``auto`` compares unless told otherwise, in the order they are tried.
AUTO_CANDIDATES = ("caruana", "best", "average", "stacking")
#: The combiner ``auto`` keeps unless another is clearly better out of sample.
AUTO_PREFER = "caruana"


class Auto(Combiner):
    """Choose among ``combiners`` (name -> Combiner) by outer score.

    ``prefer`` (a name among them, or None) is kept unless another combiner's outer score
    is better by more than one standard error of the paired outer-fold differences; with
    None, or when it fails, the best outer score wins (ties: the one listed first). They
    are tried in the order given; once the view's deadline has passed the rest are
    skipped (the first always runs).
    """

    def __init__(self, combiners: dict[str, Combiner], prefer: str | None = None) -> None:
        if not combiners:
            raise ValueError("auto needs at least one combiner to choose from")
        if prefer is not None and prefer not in combiners:
            raise ValueError(f"auto: prefer must be one of the candidates "
                             f"{list(combiners)} or None, got {prefer!r}")
        self.combiners = dict(combiners)
        self.prefer = prefer
        # The time the search leaves: what the most demanding candidate asks for.
        self.time_share = max(float(getattr(c, "time_share", 0.0) or 0.0)
                              for c in self.combiners.values())
        # The learners the view must include past the best trials: what any candidate wants.
        self.wants_learners = tuple(sorted({n for c in self.combiners.values()
                                            for n in getattr(c, "wants_learners", ())}))

    def assess_all(self, view: LibraryView) -> tuple[Assessment, list[Assessment]]:
        """Every candidate combiner assessed on ``view``; (the chosen one, all of them).
        Raises RuntimeError when every one failed."""
        tried = []
        for name, combiner in self.combiners.items():
            if tried and view.time_left() <= 0:  # the first one always runs
                tried.append(Assessment(name, error="skipped: the time limit was reached"))
                continue
            tried.append(assess(name, combiner, view))
        ok = [a for a in tried if a.ok]
        if not ok:
            raise RuntimeError("auto: every combiner failed: " + "; ".join(
                f"{a.name}: {a.error}" for a in tried))
        chosen, why = self._choose(view, ok)
        name = view.metric.name
        for a in tried:
            if a is chosen:
                a.reason = f"chosen by auto: {why}"
            elif a.ok:
                a.reason = (f"not chosen by auto: outer {name} {a.outer:.6g} vs "
                            f"{chosen.outer:.6g} ({chosen.name})")
            else:
                a.reason = a.error if a.error.startswith("skipped") else f"failed: {a.error}"
        return chosen, tried

    def _choose(self, view: LibraryView, ok: list[Assessment]) -> tuple[Assessment, str]:
        name = view.metric.name
        anchor = next((a for a in ok if a.name == self.prefer), None)
        pool = ok if anchor is None else [a for a in ok if clearly_better(view, a, anchor)]
        if anchor is not None and not pool:
            return anchor, (f"no other combiner's outer {name} beat {anchor.name}'s by more "
                            "than one standard error over the outer folds")
        chosen = pool[0]
        for a in pool[1:]:
            if better(view, a.outer, chosen.outer):
                chosen = a
        if anchor is None:
            return chosen, f"best outer {name} of {len(ok)} combiners"
        return chosen, (f"outer {name} {chosen.outer:.6g} beats {anchor.name}'s "
                        f"{anchor.outer:.6g} by more than one standard error over the outer "
                        "folds")

    def fuse(self, view: LibraryView) -> Fusion:
        chosen, _ = self.assess_all(view)
        assert chosen.fusion is not None
        return chosen.fusion
