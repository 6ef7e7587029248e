"""The base of every domain error.

Each app lists its codes as a StrEnum in its own `errors.py`. A domain error
carries a code, a message a person can read and, for input errors, the fields
at fault. Pages show the message; the API maps the error to DESIGN §5's shape.
"""

from __future__ import annotations

from enum import StrEnum


class CoreError(StrEnum):
    ILLEGAL_TRANSITION = "illegal_transition"
    CONCURRENT_UPDATE = "concurrent_update"


class DomainError(Exception):
    """A use case refused to run; nothing was changed."""

    http_status = 400

    def __init__(self, code: StrEnum | str, message: str, *, fields: dict | None = None, **detail) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.fields = fields or {}
        self.detail = detail

    def as_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        body.update(self.detail)
        return {"error": body}


class InvalidInput(DomainError):
    http_status = 400


class NotFound(DomainError):
    http_status = 404


class Conflict(DomainError):
    """The world is not in a state that allows this (an illegal transition, a lost race)."""

    http_status = 409


class Forbidden(DomainError):
    http_status = 403
