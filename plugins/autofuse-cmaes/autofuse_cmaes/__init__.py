"""autofuse-cmaes: post hoc ensembling by CMA-ES over blend weights, as an autofuse combiner.

Installing the package registers the combiner ``"cmaes"`` through the ``autofuse``
entry-point group::

    import autofuse
    model = autofuse.fit(X, y, combiner="cmaes")

The method is Purucker & Beel, "CMA-ES for Post Hoc Ensembling in AutoML: A Great Success
and Salvageable Failure" (AutoML 2023, arXiv:2307.00286), with their GES-like weight
normalisation (CMA-ES-ExplicitGES); see ``CMAESEnsemble`` and the README.
"""

from __future__ import annotations

from typing import Any, Callable

import autofuse
from autofuse.combiners import CombinerSpec

from autofuse_cmaes._ensemble import (
    CMAESEnsemble,
    ges_round,
    normalize_weights,
    softmax_weights,
)

__all__ = ["CMAESEnsemble", "SPEC", "build", "ges_round", "normalize_weights",
           "softmax_weights"]
__version__ = "0.1.0"

#: Generations the registered combiner runs at most (see README, "Budget").
N_GENERATIONS = 100


def build(metric: Any, random_state: Any, n_threads: Any) -> CMAESEnsemble:
    """A new, unfitted ``CMAESEnsemble`` for a run judged by ``metric``."""
    return CMAESEnsemble(metric, n_generations=N_GENERATIONS, normalization="ges",
                         random_state=random_state, n_threads=n_threads)


SPEC = CombinerSpec(
    "cmaes", build,
    f"CMA-ES over blend weights with GES-like normalisation, at most {N_GENERATIONS} "
    "generations (Purucker & Beel, AutoML 2023)")


@autofuse.hookimpl
def autofuse_register_combiners(register: Callable[[CombinerSpec], None]) -> None:
    register(SPEC)
