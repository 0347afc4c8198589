"""``InputError``: the run was given bad input (data, target, options), found before any
long work started. The command line turns it into exit code 2 with a one-line message;
anything else that goes wrong is a failure (exit code 1)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class InputError(ValueError):
    """Bad input: the message names the problem."""


@contextmanager
def input_errors(**names: str) -> Iterator[None]:
    """Inside this block (the checks before a run starts), a ``ValueError`` is bad input.
    ``names`` say what the API's ``X`` and ``y`` are called where the input came from
    (``X="new.csv"``): a message that starts with one of them is reworded."""
    try:
        yield
    except ValueError as exc:
        message = reword(str(exc), **names)
        if isinstance(exc, InputError) and message == str(exc):
            raise
        raise InputError(message) from exc


def reword(message: str, **names: str) -> str:
    """``message`` with a leading ``X``/``y`` replaced by what ``names`` calls it."""
    for api_name, name in names.items():
        if message.startswith(f"{api_name} "):
            return name + message[len(api_name):]
    return message
