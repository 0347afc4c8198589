"""``--combiner NAME`` and ``--combiner-option KEY=VALUE``, shared by ``autofuse fit`` and
``autofuse fuse``.

VALUE is read as JSON when it parses as JSON (``2``, ``1e-4``, ``true``, ``null``,
``["best","caruana"]``), else taken as a string (``level2=gbm``). The options reach the
combiner's build as keyword arguments; the combiner says which it takes, and a name or
value it refuses is bad input (exit 2).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence


def combiner_option(text: str) -> tuple[str, Any]:
    """``"k=2"`` -> ``("k", 2)``; ``"level2=gbm"`` -> ``("level2", "gbm")``."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


class _Collect(argparse.Action):
    """Gathers repeated ``--combiner-option`` into one dict (a later KEY replaces an
    earlier one)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        key, value = values  # type: ignore[misc]
        options = dict(getattr(namespace, self.dest) or {})
        options[key] = value
        setattr(namespace, self.dest, options)


def add_arguments(p: argparse.ArgumentParser, default: str) -> None:
    """Add ``--combiner`` (default ``default``) and ``--combiner-option`` to ``p``; they
    land in ``combiner`` (None when not given) and ``combiner_options`` (a dict, or None)."""
    p.add_argument("--combiner", metavar="NAME",
                   help=f"how the models are fused (default {default}): best, average, "
                   "caruana, stacking, prune, auto, or a plugin's (see autofuse plugins)")
    p.add_argument("--combiner-option", dest="combiner_options", action=_Collect,
                   type=combiner_option, metavar="KEY=VALUE",
                   help="an option of the combiner, repeatable: VALUE is JSON if it parses "
                   "(2, 1e-4, true, [\"best\",\"caruana\"]), else text; e.g. level2=gbm "
                   "for stacking, max_members=3 or infer_limit=1e-4 for prune")
