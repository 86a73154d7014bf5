"""The error every layer raises for a problem the user can act on.

It carries a message that names the problem and a hint that says what to do;
the command line prints both and exits with ``exit_code`` instead of showing a
traceback.
"""

from __future__ import annotations


class AicacheError(Exception):
    """A problem caused by input or state the user controls.

    Parameters
    ----------
    message
        What went wrong, naming the value, file or command involved.
    hint
        What the user can do about it.
    exit_code
        The process exit status the command line uses.
    """

    def __init__(self, message: str, *, hint: str = "", exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class StoreUnreadableError(AicacheError):
    """The private store exists but is corrupt, foreign or from a newer version."""


class Interrupted(AicacheError):
    """The user pressed Ctrl-C; everything the command started has been ended."""

    def __init__(self, message: str, *, hint: str = "", exit_code: int = 130) -> None:
        super().__init__(message, hint=hint, exit_code=exit_code)
