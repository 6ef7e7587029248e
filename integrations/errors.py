from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError


class IntegrationError(StrEnum):
    UNKNOWN_SYSTEM = "unknown_system"
    NOT_SIGNED = "signature_rejected"
    INACTIVE_SYSTEM = "inactive_system"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NOTHING_TO_RETRY = "nothing_to_retry"


class Unauthenticated(DomainError):
    """The request is not provably from the system it names: nothing was stored."""

    http_status = 401
