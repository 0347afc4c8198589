"""Shared test setup.

Hypothesis profiles: ``ci`` (the default, quick) and ``thorough`` (2,000 examples per
property); choose with ``HYPOTHESIS_PROFILE=thorough``. ``AUTOFUSE_PUREPYTHON=1`` runs the
whole suite on the NumPy backend; the tests that compare the two backends then skip.

The core suite runs without installed plugins (CI installs the packages in ``plugins/``
into the same environment and runs their own tests): ``AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD``
is set before anything loads them. ``tests/test_plugins.py`` turns loading back on where
it tests it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

os.environ["AUTOFUSE_DISABLE_PLUGIN_AUTOLOAD"] = "1"


@pytest.fixture
def backends() -> list[str]:
    """The backends available in this run."""
    from autofuse._core import backend

    return ["cython", "numpy"] if backend() == "cython" else ["numpy"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """With AUTOFUSE_REQUIRE_COMPILED=1 (CI), refuse to run on the NumPy fallback."""
    if os.environ.get("AUTOFUSE_REQUIRE_COMPILED") == "1":
        from autofuse._core import backend

        if backend() != "cython":
            raise pytest.UsageError("AUTOFUSE_REQUIRE_COMPILED=1 but the compiled core is not built")
