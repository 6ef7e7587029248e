"""Signing and checking webhooks: Shopify's HMAC header, and Standard Webhooks (the standardwebhooks package).

Every comparison is constant-time (hmac.compare_digest, here and inside standardwebhooks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def _webhook(secret: str) -> Webhook:
    # A whsec_ secret carries base64 key bytes; any other (a Shopify app's secret) is used as it is written.
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


class SignatureRejected(Exception):
    """The request is not provably from the system it claims to be from."""


def shopify_signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_verify(secrets: list[str], body: bytes, header: str | None) -> None:
    if not header:
        raise SignatureRejected("X-Shopify-Hmac-Sha256 is missing.")
    given = header.strip().encode()
    # Every secret is tried, so the time taken does not tell which one nearly matched.
    matched = [hmac.compare_digest(shopify_signature(secret, body).encode(), given) for secret in secrets]
    if not any(matched):
        raise SignatureRejected("X-Shopify-Hmac-Sha256 does not match the body.")


def standard_headers(secret: str, *, message_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one message."""
    at = at or datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": _webhook(secret).sign(message_id, at, body.decode()),
    }


def standard_verify(secrets: list[str], body: bytes, headers: dict[str, str]) -> None:
    """Accept the request if any of its signatures matches any of the secrets, within 5 minutes' tolerance."""
    reasons = []
    for secret in secrets:
        try:
            _webhook(secret).verify(body, headers, json_parse=False)
            return
        except Exception as error:  # malformed headers raise ValueError or binascii.Error too
            reasons.append(str(error) or type(error).__name__)
    raise SignatureRejected(reasons[0] if reasons else "The system has no secret.")
