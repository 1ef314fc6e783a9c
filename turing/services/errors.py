"""The errors the turing app's writes raise; each message says what is wrong."""

from __future__ import annotations


class StudyError(ValueError):
    """A study that cannot be built or changed as asked; the message says why."""


class AnswerError(Exception):
    """An answer that cannot be taken; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class InvitationError(ValueError):
    """A link that cannot be used; the message says why."""
