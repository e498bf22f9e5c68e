"""Errors that reach the user as one line, never as a traceback."""


class UserError(Exception):
    """Bad input or options: the CLI prints the message on one line and exits with 2."""
