from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from orders.models import Partner

pytestmark = pytest.mark.django_db


def create_partner(*args) -> str:
    out = StringIO()
    call_command("create_partner", *args, stdout=out)
    return out.getvalue()


def test_prints_only_the_token_of_a_new_partner_user():
    out = create_partner("acme", "--name", "Acme Shop", "--kind", "marketplace")

    partner = Partner.objects.get(code="acme")
    token = Token.objects.get(user=partner.api_user)
    assert out == token.key + "\n"
    assert (partner.name, partner.kind) == ("Acme Shop", "marketplace")
    assert not partner.api_user.has_usable_password()
    assert partner.webhook_secret


def test_running_again_prints_the_same_token_and_creates_nothing():
    first = create_partner("acme", "--name", "Acme Shop")
    second = create_partner("acme", "--name", "Acme Shop")

    assert first == second
    assert Partner.objects.count() == 1
    assert Token.objects.count() == 1


def test_a_bad_code_is_refused_with_a_clear_error():
    with pytest.raises(CommandError) as excinfo:
        create_partner("not a slug!", "--name", "Bad")
    assert "code" in str(excinfo.value)
    assert not Partner.objects.exists()
