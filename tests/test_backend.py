"""Which backend runs, and what happens when the compiled core is missing."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from autofuse.combiners import CaruanaSelection

PROBE = (
    "import warnings, numpy as np\n"
    "warnings.simplefilter('always')\n"
    "{setup}\n"
    "import autofuse._core as core\n"
    "from autofuse.combiners import CaruanaSelection\n"
    "P = np.random.default_rng(0).dirichlet([1, 1, 1], size=(4, 30))\n"
    "y = np.arange(30) % 3\n"
    "print(core.backend(), CaruanaSelection('log_loss', ensemble_size=5).fit(P, y).indices_.tolist())\n"
)


def _probe(setup: str = "", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(setup=setup)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )


def test_purepython_switch_selects_numpy_and_agrees():
    pure = _probe(AUTOFUSE_PUREPYTHON="1")
    assert pure.stdout.startswith("numpy ")
    P = np.random.default_rng(0).dirichlet([1, 1, 1], size=(4, 30))
    here = CaruanaSelection("log_loss", ensemble_size=5).fit(P, np.arange(30) % 3)
    assert pure.stdout.split(" ", 1)[1].strip() == str(here.indices_.tolist())


def test_missing_extension_warns_and_falls_back():
    broken = _probe("import sys; sys.modules['autofuse._core._kernels'] = None",
                    AUTOFUSE_PUREPYTHON="")
    assert broken.stdout.startswith("numpy ")
    assert "compiled selection core could not be imported" in broken.stderr
    assert "AUTOFUSE_PUREPYTHON=1" in broken.stderr
