"""Declares the Cython extensions of ``autofuse._core``; everything else lives in pyproject.toml.

OpenMP is used where the compiler accepts ``-fopenmp``; elsewhere the core is built without
it and every ``prange`` runs on one thread (``autofuse._core.openmp_enabled()`` says which).
Set ``AUTOFUSE_CYTHON_DEBUG=1`` to build with bounds checks and without optimisation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("AUTOFUSE_CYTHON_DEBUG") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}


def _openmp_flags() -> list[str]:
    """Return the OpenMP compile/link flag if the C compiler accepts it, else []."""
    if os.environ.get("AUTOFUSE_NO_OPENMP") == "1" or sys.platform == "win32":
        return []
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    if shutil.which(cc[0]) is None:
        return []
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.c")
        with open(path, "w") as fh:
            fh.write(src)
        try:
            ok = subprocess.run(
                [*cc, "-fopenmp", path, "-o", os.path.join(tmp, "t")],
                capture_output=True,
                timeout=60,
            ).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
    if not ok:
        print("autofuse: the C compiler does not accept -fopenmp; building the core single-threaded")
        return []
    return ["-fopenmp"]


omp = _openmp_flags()
compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
if sys.platform != "win32":
    # Keep a*b+c as two roundings so the core matches its NumPy reference on every CPU.
    compile_args += ["-ffp-contract=off"]

extensions = [
    Extension(
        "autofuse._core._kernels",
        ["autofuse/_core/_kernels.pyx"],
        include_dirs=[np.get_include(), "autofuse/_core"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args + omp,
        extra_link_args=omp,
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
