"""Exit codes and the errors that carry them to the CLI and the TUI."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a step failed or verification found differences
    BAD_INPUT = 2  # the operator's input cannot be used
    REFUSED = 3  # lock held, target not empty, a check failed
    INTERRUPTED = 130  # Ctrl+C / SIGHUP


# A refusal's remedy a face can offer as a choice: the rollback restoring the backups anyway (the rows written
# since saved first), the CLI's --restore-backup, the r of the TUI's confirmation.
RESTORE_ANYWAY = "restore anyway"


class WizardError(Exception):
    """An error whose message is one line an operator can act on."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, unchanged: bool = False, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # True: the step failed and left everything as it was before it (a rollback retried measures again)
        self.unchanged = unchanged
        self.remedy = remedy  # RESTORE_ANYWAY, or None: the message says what to do


class BadInput(WizardError):
    exit_code = ExitCode.BAD_INPUT


class Refused(WizardError):
    exit_code = ExitCode.REFUSED


class StepError(WizardError):
    exit_code = ExitCode.FAILED


class Interrupted(WizardError):
    exit_code = ExitCode.INTERRUPTED
