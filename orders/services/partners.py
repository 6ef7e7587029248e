"""Partners: the sales channels that send orders, each with its API user and token."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from core.errors import InvalidInput

from ..errors import OrderError
from ..models import Partner


@transaction.atomic
def partner_ensure(*, code: str, name: str, kind: str = Partner.Kind.STOREFRONT) -> tuple[Partner, str, bool]:
    """Create the partner and its API user, or return the existing one; gives (partner, API token, created)."""
    if kind not in Partner.Kind.values:
        raise InvalidInput(
            OrderError.UNKNOWN_PARTNER, f"Unknown partner kind {kind!r}; use one of {', '.join(Partner.Kind.values)}."
        )
    partner = Partner.objects.select_for_update().filter(code=code).first()
    created = partner is None
    if created:
        partner = Partner(code=code, name=name, kind=kind, webhook_secret=secrets.token_urlsafe(32))
        try:
            partner.full_clean()
        except ValidationError as exc:
            raise InvalidInput(OrderError.UNKNOWN_PARTNER, "The partner is not valid.", fields=exc.message_dict) from None
        partner.save()
    if partner.api_user_id is None:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=f"partner-{code}")
        if user.has_usable_password():
            user.set_unusable_password()
            user.save(update_fields=["password"])
        partner.api_user = user
        partner.save(update_fields=["api_user"])
    token, _ = Token.objects.get_or_create(user_id=partner.api_user_id)
    return partner, token.key, created
