"""The `w2v` command line: a thin layer over the Python API."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from w2v.errors import UserError


class _OneLineError(click.ClickException):
    """Printed as `Error: ...` on one line; exit 2 is click's code for a user error."""

    exit_code = 2


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our UserError into a one-line error with exit code 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            raise _OneLineError(str(e)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="w2v", message="w2v %(version)s")
def main() -> None:
    """Train word2vec vectors (skip-gram, CBOW) and use them."""


# --- training commands (train) ---


# --- vectors commands (similar, analogy, evaluate, export) ---
