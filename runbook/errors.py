"""One exception root for the package, with structured subclasses.

Every error a user can mend (a bad target, a missing file, a lab that is not up) is a
:class:`RunbookError`; the CLI prints its one-line message and exits with its ``exit_code``
(2, per the contract), never a traceback.
"""

from __future__ import annotations

__all__ = [
    "BadInput",
    "LabError",
    "MissingTool",
    "RunbookError",
]


class RunbookError(Exception):
    """Root of every error ssh-runbook raises on purpose.

    ``hint`` says how to mend it; the CLI prints ``message (hint)`` on one line.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint as the single line the CLI prints."""
        text = self.message if not self.hint else f"{self.message}: {self.hint}"
        return " ".join(text.split())


class BadInput(RunbookError):
    """Unusable input: a malformed target, a port out of range, a missing or garbled file."""


class MissingTool(RunbookError):
    """A program the step needs (sshd, ssh, ip, ...) is not installed."""


class LabError(RunbookError):
    """The lab could not be started, inspected or stopped."""
