"""User-facing errors: a problem the user can fix, reported as one line with exit code 2."""

from __future__ import annotations


class CustsegError(Exception):
    """A problem with the user's input or options.

    The message is one line that names what is wrong (file, column, row, option)
    and what to do about it. The CLI prints it on stderr and exits with code 2.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class CustsegWarning(UserWarning):
    """Something a Python caller should know about a result (e.g. order lines dropped by cleaning,
    customers unlike a model's training data); the command line prints the same on stderr."""
