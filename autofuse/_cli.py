"""The ``autofuse`` command (also ``python -m autofuse``).

Subcommands: ``plugins`` lists every plugin, what it registered and any load error.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import asdict
from typing import TextIO


def _plugins(args: argparse.Namespace, out: TextIO) -> int:
    from autofuse import plugins

    with warnings.catch_warnings():
        # Load errors are part of the listing; a warning on stderr would say it twice.
        warnings.simplefilter("ignore", plugins.PluginWarning)
        infos = plugins.list_plugins()
    if args.json:
        json.dump([asdict(i) for i in infos], out, indent=2)
        out.write("\n")
        return 0
    for info in infos:
        dist = f"{info.distribution} {info.version}" if info.distribution else "-"
        state = "loaded" if info.loaded else "NOT LOADED"
        out.write(f"{info.name}  ({dist}; {info.source}; {state})\n")
        for kind in ("learners", "combiners", "metrics"):
            names = getattr(info, kind)
            if names:
                out.write(f"    {kind}: {', '.join(names)}\n")
        for error in info.errors:
            out.write(f"    error: {error}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autofuse", description="AutoML that searches many learners and fuses the best.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("plugins", help="list plugins: what each registered, load errors")
    p.add_argument("--json", action="store_true", help="print the listing as JSON")
    p.set_defaults(run=_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args, sys.stdout)
