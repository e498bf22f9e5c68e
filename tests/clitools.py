"""The CLI as the tests drive it: in-process, and the one-line error every bad input must give."""

from __future__ import annotations

from click.testing import CliRunner

from w2v.cli import main


def cli(*args: object) -> tuple[int, str]:
    """Run the CLI in-process; a non-SystemExit exception is re-raised so a traceback fails the test."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def one_line_error(code: int, out: str, *needles: str) -> str:
    """Exit 2, the last line `Error: ...` holding every needle, no traceback; returns that line."""
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), out
    assert "Traceback" not in out
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]
