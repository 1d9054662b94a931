"""The CLI's one error style, argparse's own: `voiceflow COMMAND: error: MESSAGE`, one line on stderr.

argparse already writes its usage errors this way (a sub-command's prog is "voiceflow COMMAND");
every command's own refusals go through here so a user (or a script) sees one form.
"""

from __future__ import annotations

import sys


def error_line(command: str, message: str) -> str:
    return f"voiceflow {command}: error: {message}"


def print_error(command: str, message: str) -> None:
    print(error_line(command, message), file=sys.stderr)


def fail(command: str, message: str, code: int = 2) -> int:
    """Print the error; returns `code` for the handler to return (2: usage, 1: the work failed)."""
    print_error(command, message)
    return code
