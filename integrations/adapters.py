"""How each kind of sender signs, names and stamps its webhooks: read at receipt, before anything is stored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from . import signatures
from .models import Adapter, ExternalSystem


@dataclass(frozen=True)
class Receipt:
    sender_id: str
    topic: str
    occurred_at: datetime


def _stamp(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _envelope(body: bytes) -> dict:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}  # stored as it came; applying it will say what is wrong
    return parsed if isinstance(parsed, dict) else {}


def verify(system: ExternalSystem, body: bytes, headers) -> Receipt:
    """Check the signature and read the sender's id, the topic and the sender's stamp; raise SignatureRejected."""
    now = datetime.now(UTC)
    if system.adapter == Adapter.SHOPIFY:
        signatures.shopify_verify(system.accepted_secrets, body, headers.get("X-Shopify-Hmac-Sha256"))
        sender_id = headers.get("X-Shopify-Webhook-Id") or headers.get("X-Shopify-Event-Id")
        if not sender_id:
            raise signatures.SignatureRejected("X-Shopify-Webhook-Id is missing.")
        stamp = _stamp(headers.get("X-Shopify-Triggered-At")) or _stamp(_envelope(body).get("updated_at"))
        return Receipt(sender_id, headers.get("X-Shopify-Topic", ""), stamp or now)
    standard = {name: headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    signatures.standard_verify(system.accepted_secrets, body, standard)
    envelope = _envelope(body)
    topic = envelope.get("type") if isinstance(envelope.get("type"), str) else ""
    signed_at = datetime.fromtimestamp(float(standard["webhook-timestamp"]), tz=UTC)
    return Receipt(standard["webhook-id"], topic, _stamp(envelope.get("occurred_at")) or signed_at)
