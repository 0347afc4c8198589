"""The ensemble-selection core: Cython kernels, their NumPy twin, and the greedy loop.

The compiled kernels are used when they were built; ``AUTOFUSE_PUREPYTHON=1`` (read at
import) forces the NumPy reference everywhere, which is also what runs when the extension
is missing (with a warning that says how to fix the build).
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

from autofuse._core._greedy import SelectionResult, select

_PURE = os.environ.get("AUTOFUSE_PUREPYTHON", "").strip() not in ("", "0")
_kernels: ModuleType | None = None
if not _PURE:
    try:
        _kernels = importlib.import_module("autofuse._core._kernels")
    except ImportError as exc:  # pragma: no cover - exercised only on a broken build
        warnings.warn(
            f"autofuse: the compiled selection core could not be imported ({exc}); using the "
            "much slower NumPy implementation. Rebuild it with `pip install --force-reinstall "
            "--no-deps --no-binary autofuse .` from a checkout (needs a C compiler), or set "
            "AUTOFUSE_PUREPYTHON=1 to choose the NumPy implementation deliberately.",
            RuntimeWarning,
            stacklevel=2,
        )


def backend() -> str:
    """``"cython"`` when the compiled kernels are in use, else ``"numpy"``."""
    return "numpy" if _kernels is None else "cython"


def openmp_enabled() -> bool:
    """Whether the compiled core can run candidates in parallel (built with OpenMP)."""
    return _kernels is not None and _kernels.openmp_enabled()


__all__ = ["SelectionResult", "backend", "openmp_enabled", "select"]
