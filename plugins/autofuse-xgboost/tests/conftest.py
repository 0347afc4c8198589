"""Idle OpenMP threads sleep instead of spinning, as in autofuse's workers: these tests fit
in-process, where scikit-learn's and XGBoost's OpenMP runtimes would otherwise spin against
each other on a small machine. Set before either library is loaded."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
