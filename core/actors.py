"""Who did it: every audit event and ledger row names its actor."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    USER = "user"
    PARTNER = "partner"
    SYSTEM = "system"
    JOB = "job"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    name: str
    user_id: int | None = None

    def __str__(self) -> str:
        return self.kind if self == SYSTEM else f"{self.kind}:{self.name}"

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(ActorKind.USER, user.get_username(), user.pk)

    @classmethod
    def for_partner(cls, code: str, user_id: int | None = None) -> Actor:
        return cls(ActorKind.PARTNER, code, user_id)

    @classmethod
    def job(cls, name: str) -> Actor:
        return cls(ActorKind.JOB, name)

    @classmethod
    def external(cls, slug: str) -> Actor:
        """Another system (the WMS, the ERP, a storefront) acting through its webhooks."""
        return cls(ActorKind.SYSTEM, slug)


SYSTEM = Actor(ActorKind.SYSTEM, "system")
