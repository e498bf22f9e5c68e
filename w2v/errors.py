"""Errors that reach the user as one line, never as a traceback, and the other ways a run ends."""


class UserError(Exception):
    """Bad input or options: the CLI prints the message on one line and exits with 2."""


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after writing a checkpoint (exit 130); the message says how to go on."""


class LeaderFailed(Exception):
    """In a process group, raised on the other processes when the leader failed before training.

    The leader reports why; the others exit with `code` quietly.
    """

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
