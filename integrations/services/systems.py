"""Registering the systems around the portal, and rotating their webhook secrets."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from core.errors import Conflict, InvalidInput
from inventory.models import Location
from orders.models import Partner

from ..errors import IntegrationError
from ..models import Adapter, ExternalSystem, SystemKind, new_standard_webhooks_secret

KIND_OF_ADAPTER = {
    Adapter.SHOPIFY: SystemKind.STOREFRONT,
    Adapter.GENERIC_STOREFRONT: SystemKind.STOREFRONT,
    Adapter.GENERIC_ERP: SystemKind.ERP,
    Adapter.GENERIC_WMS: SystemKind.WMS,
}


@dataclass(frozen=True)
class Registered:
    system: ExternalSystem
    secret: str  # the secret to give the system: the current one, or the new one of a rotation
    created: bool


def _invalid(message: str, **fields) -> InvalidInput:
    return InvalidInput(IntegrationError.UNKNOWN_SYSTEM, message, fields={k: [v] for k, v in fields.items()})


@transaction.atomic
def system_ensure(
    *,
    slug: str,
    kind: str,
    adapter: str,
    base_url: str = "",
    locations: list[str] | None = None,
    partner: str | None = None,
    secret: str | None = None,
    rotate_secret: bool = False,
    retire_old_secret: bool = False,
) -> Registered:
    """Register a system, or leave an existing one as it is; rotate or retire its secrets when asked."""
    system = ExternalSystem.objects.select_for_update().filter(slug=slug).first()
    if system is not None:
        return _rotate(system, secret=secret, rotate=rotate_secret, retire=retire_old_secret)
    if adapter not in Adapter.values:
        raise _invalid(f"Unknown adapter {adapter!r}; use one of {', '.join(Adapter.values)}.", adapter="Unknown adapter.")
    if KIND_OF_ADAPTER[adapter] != kind:
        raise _invalid(
            f"The {adapter} adapter is for a {KIND_OF_ADAPTER[adapter]}, not a {kind}.", kind="Does not fit the adapter."
        )
    the_partner = None
    if kind == SystemKind.STOREFRONT:
        if not partner:
            raise _invalid("A storefront names the partner whose orders it sends (--partner CODE).", partner="Required.")
        the_partner = Partner.objects.filter(code=partner).first()
        if the_partner is None:
            raise _invalid(f"There is no partner {partner!r}; create it with create_partner first.", partner="Unknown.")
    wanted = [code.strip() for code in locations or [] if code.strip()]
    found = list(Location.objects.filter(code__in=wanted))
    missing = sorted(set(wanted) - {location.code for location in found})
    if missing:
        raise _invalid(f"There is no location {', '.join(missing)}.", locations="Unknown location.")
    system = ExternalSystem(
        slug=slug,
        name=slug,
        kind=kind,
        adapter=adapter,
        base_url=base_url,
        partner=the_partner,
        secret=secret or new_standard_webhooks_secret(),
    )
    try:
        system.full_clean()
    except ValidationError as error:
        raise InvalidInput(IntegrationError.UNKNOWN_SYSTEM, "The system is not valid.", fields=error.message_dict) from None
    system.save()
    system.locations.set(found)
    return Registered(system, system.secret, created=True)


def _rotate(system: ExternalSystem, *, secret: str | None, rotate: bool, retire: bool) -> Registered:
    if rotate and retire:
        raise _invalid("Rotate first; retire the old secret once the system signs with the new one.")
    if rotate:
        if system.previous_secret:
            raise Conflict(
                IntegrationError.UNKNOWN_SYSTEM,
                f"{system.slug} is rotating already; retire the old secret (--retire-old-secret) before a new rotation.",
            )
        system.previous_secret, system.secret = system.secret, secret or new_standard_webhooks_secret()
        system.save(update_fields=["secret", "previous_secret"])
    elif retire and system.previous_secret:
        system.previous_secret = ""
        system.save(update_fields=["previous_secret"])
    return Registered(system, system.secret, created=False)
