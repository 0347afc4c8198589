"""Idle OpenMP threads sleep instead of spinning, as in autofuse's workers: these tests fit
in-process, where scikit-learn's idle OpenMP threads would otherwise spin against CatBoost's
own thread pool on a small machine. Set before scikit-learn is loaded."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
