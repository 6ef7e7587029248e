"""A coordinator marks themself away, or back, from the queue page; automatic assignment follows."""

import pytest
from django.test import Client
from django.urls import reverse

from core.roles import Role
from exceptions.models import Presence, Queue
from exceptions.services import presence_set
from tests.factories import raise_on_order, user_with_role

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def away(user) -> bool:
    return Presence.objects.filter(user=user, away=True).exists()


def test_marking_oneself_away_from_the_page_keeps_automatic_assignment_off_one(client):
    Queue.objects.filter(slug="warehouse").update(assignment=Queue.Assignment.ROUND_ROBIN)
    carla = user_with_role("carla", Role.COORDINATOR, "warehouse")
    dave = user_with_role("dave", Role.COORDINATOR, "warehouse")
    client.force_login(carla)

    response = client.post(reverse("presence"), {"away": "1"}, **HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<form id="presence"') and "<html" not in body
    assert "You are away" in body and "I'm back" in body
    assert away(carla)
    assert {raise_on_order("short_pick").owner for _ in range(3)} == {dave}


def test_coming_back_puts_one_in_the_rotation_again(client):
    Queue.objects.filter(slug="warehouse").update(assignment=Queue.Assignment.ROUND_ROBIN)
    carla = user_with_role("carla", Role.COORDINATOR, "warehouse")
    dave = user_with_role("dave", Role.COORDINATOR, "warehouse")
    Presence.objects.create(user=carla, away=True)
    client.force_login(carla)

    response = client.post(reverse("presence"), {"away": "0"}, **HTMX)

    assert "Mark me away" in response.content.decode()
    assert not away(carla)
    assert {raise_on_order("short_pick").owner for _ in range(2)} == {carla, dave}


def test_the_queue_page_shows_the_toggle_in_the_state_one_is_in(client, coordinator):
    client.force_login(coordinator)
    assert "Mark me away" in client.get(reverse("queues")).content.decode()

    presence_set(user=coordinator, away=True)

    body = client.get(reverse("queues")).content.decode()
    assert 'hx-post="/presence/"' in body and "You are away" in body and 'name="away" value="0"' in body


def test_without_htmx_the_toggle_redirects_back_to_the_queue_with_a_message(client, coordinator):
    client.force_login(coordinator)

    response = client.post(reverse("presence"), {"away": "1"}, follow=True)

    assert response.redirect_chain == [(reverse("queues"), 302)]
    assert "You are marked away." in response.content.decode()
    assert away(coordinator)


@pytest.mark.parametrize("value", ["", "yes", "2"])
def test_anything_but_away_or_back_is_refused_and_changes_nothing(client, coordinator, value):
    client.force_login(coordinator)

    assert client.post(reverse("presence"), {"away": value}, **HTMX).status_code == 400
    assert not Presence.objects.filter(user=coordinator).exists()


def test_the_toggle_needs_a_signed_in_person_a_post_and_the_csrf_token(client, coordinator):
    assert client.post(reverse("presence"), {"away": "1"}).url.startswith("/accounts/login/")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(coordinator)
    assert browser.get(reverse("presence")).status_code == 405
    assert browser.post(reverse("presence"), {"away": "1"}).status_code == 403
    assert not away(coordinator)

    browser.get(reverse("queues"))  # sets the cookie the page's forms carry the token of
    token = browser.cookies["csrftoken"].value
    assert browser.post(reverse("presence"), {"away": "1"}, HTTP_X_CSRFTOKEN=token, **HTMX).status_code == 200
    assert away(coordinator)


def test_a_partner_api_user_cannot_mark_presence(client):
    partner = user_with_role("partner-acme")
    client.force_login(partner)

    assert client.post(reverse("presence"), {"away": "1"}).status_code == 403
    assert not Presence.objects.filter(user=partner).exists()


def test_the_service_keeps_one_row_a_person_and_is_safe_to_repeat(coordinator):
    first = presence_set(user=coordinator, away=True)
    again = presence_set(user=coordinator, away=True)
    back = presence_set(user=coordinator, away=False)

    assert first.pk == again.pk == back.pk
    assert Presence.objects.filter(user=coordinator).count() == 1
    assert not away(coordinator)
