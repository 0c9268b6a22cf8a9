"""The command line's own error: a message for the user and the exit code it means."""

from __future__ import annotations

from typing import NoReturn


class CliError(Exception):
    """Options that cannot work together or here; the message says what to change."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop the command with `message` on stderr and exit `code` (see nst_cli.main.EXIT_CODES)."""
    raise CliError(message, code)
