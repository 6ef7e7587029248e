"""With DEBUG on, as `make run` serves the portal, a refused action still shows in place."""

import pytest

from core.roles import Role
from exceptions.models import FulfillmentException, Queue
from tests.factories import raise_on_order, user_with_role

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def manual_queues():
    Queue.objects.update(assignment=Queue.Assignment.MANUAL)  # the work waits to be claimed


def test_under_debug_a_resolve_without_a_note_is_refused_in_place_and_the_queue_stays(live_server, page, screenshot, settings):
    settings.DEBUG = True
    user_with_role("carla", Role.COORDINATOR, "warehouse", "stock")
    exception = raise_on_order("short_pick")
    other = raise_on_order("out_of_stock")
    sign_in(page, live_server, "carla")
    page.click("text=My teams")
    page.wait_for_url("**/queues/?tab=team")
    row = page.locator(f"#exception-{exception.pk}")

    row.locator("summary", has_text="Resolve").click()
    # past the browser's own required check, to see what the server says
    row.locator("textarea[name=note]").evaluate("el => { el.required = false; el.value = ''; }")
    row.get_by_role("button", name="Resolve").click()
    # Waited for anywhere: the row itself, the header and the other rows are what is at stake.
    page.locator(".error", has_text="A note is required.").first.wait_for()

    screenshot("queue-resolve-refused-under-debug")
    assert page.title() == "Queues · Fulfillment portal"
    assert page.locator("header.topbar").get_by_role("link", name="Queues").is_visible()
    assert page.locator("#tab-counts").is_visible()
    assert page.locator(f"#exception-{other.pk}").is_visible()
    assert row.locator(".error", has_text="A note is required.").first.is_visible()
    assert row.locator("details[open] textarea[name=note]").is_visible()  # the form stays open to try again
    assert FulfillmentException.objects.get(pk=exception.pk).status == "open"
