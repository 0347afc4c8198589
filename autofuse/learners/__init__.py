"""Learners: what the search tunes. ``LearnerSpec`` describes one; the built-ins wrap
scikit-learn estimators, each with its own preprocessing."""

from autofuse.learners._sklearn import BUILTIN_LEARNERS
from autofuse.learners._spec import LearnerSpec, trial_threads

__all__ = ["BUILTIN_LEARNERS", "LearnerSpec", "trial_threads"]
