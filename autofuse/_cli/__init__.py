"""The ``autofuse`` command (also ``python -m autofuse``), for hands-off runs.

``fit`` searches and fuses into a run folder (and resumes one), ``fuse`` fuses a run's
models again with another combiner, ``predict`` applies a fitted model to a table,
``leaderboard`` prints a run's trials and combiners, ``report`` writes its HTML report,
``plugins`` lists the plugins, ``worker`` joins a run shared through a database server
(``fuse``, ``leaderboard`` and ``report`` take ``--storage URL --study NAME`` for one). Exit codes: 0 done, 2 bad usage or bad input (one
line on stderr says what), 1 failure, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, NoReturn, TextIO

from autofuse._errors import InputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: Exit code after SIGTERM (128 + 15, as the shell reports a process it terminated).
EXIT_TERMINATED = 143


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} "
                              f"(see {self.prog} --help)\n")


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def build_parser() -> argparse.ArgumentParser:
    from autofuse._cli import _fit, _fuse, _predict, _shared, _views

    parser = _Parser(prog="autofuse",
                     description="AutoML that searches many learners and fuses the best.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)
    _fit.add_parser(commands)
    _fuse.add_parser(commands)
    _predict.add_parser(commands)
    _views.add_parsers(commands)
    _shared.add_parser(commands)
    return parser


def _show_warning(message: Any, category: type, filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    sys.stderr.write(f"autofuse: warning: {_one_line(message)}\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"autofuse {args.command}"
    warnings.showwarning = _show_warning
    try:
        return args.handler(args, sys.stdout)
    except InputError as exc:
        sys.stderr.write(f"{prog}: error: {_one_line(exc)}\n")
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        from autofuse._cli._fit import Terminated

        if isinstance(exc, Terminated):
            sys.stderr.write(f"{prog}: terminated\n")
            return EXIT_TERMINATED
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `autofuse leaderboard RUN | head`
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:
        hint = getattr(exc, "autofuse_hint", "")
        sys.stderr.write(f"{prog}: failed: {type(exc).__name__}: {_one_line(exc)}{hint}\n")
        return EXIT_FAILED
