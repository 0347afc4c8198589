"""Learners: what the search tunes. ``LearnerSpec`` describes one; the built-ins wrap
scikit-learn estimators, each with its own preprocessing. Plugins build theirs with the
same pieces: ``preprocessor`` (the column preparation the built-ins use) and
``trial_threads`` (the threads a trial may use)."""

from autofuse.learners._sklearn import BUILTIN_LEARNERS, SOUP_LEARNERS, preprocessor
from autofuse.learners._spec import LearnerSpec, trial_threads

__all__ = ["BUILTIN_LEARNERS", "SOUP_LEARNERS", "LearnerSpec", "preprocessor", "trial_threads"]
