"""``autofuse report RUN``: one self-contained HTML page about a run folder.

The page shows what the run found (the blend against the best single model), how the
search went, what the blend is made of, the combiners tried side by side (in-sample and
outer scores, size, predict time) and score against predict time with the Pareto
frontier, with the run's configuration, data fingerprint, calls and package versions. Its
figures are PNGs inside the file, so it can be mailed or archived and opens offline.

``_facts`` reads and checks the run, ``_plots`` draws the figures (matplotlib, the
``report`` extra, imported only here), ``_page`` lays them out and ``_html`` holds the
pieces of markup and the style sheet.
"""

from __future__ import annotations

import os

from autofuse._errors import InputError
from autofuse._report._facts import read_facts
from autofuse._run_folder import RunFolder, replace_file

__all__ = ["write_report"]

MATPLOTLIB_MISSING = "the report needs matplotlib: pip install 'autofuse[report]'"


def write_report(folder: RunFolder, out: str | None = None) -> str:
    """Write the HTML report of the run in ``folder`` to ``out`` (default
    ``report.html`` in the folder), replacing any file there whole, and return its
    absolute path.

    Raises ``InputError`` if ``folder`` is not a run folder, if its first fit has not
    finished, if ``out`` is a folder or in a folder that does not exist, or if matplotlib
    is not installed.
    """
    facts = read_facts(folder)
    path = os.path.abspath(out if out is not None else folder.file("report.html"))
    _check_writable(path)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(MATPLOTLIB_MISSING) from None
    from autofuse._report import _page, _plots

    figures = {"history": _plots.history(facts), "learners": _plots.by_learner(facts),
               "latency": _plots.latency(facts)}
    if facts.members:
        figures["weights"] = _plots.weights(facts)
    replace_file(path, _page.render(facts, figures).encode("utf-8"))
    return path


def _check_writable(path: str) -> None:
    if os.path.isdir(path):
        raise InputError(f"{path} is a folder; give the report a file name")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise InputError(f"cannot write {path}: no such folder {parent}")
