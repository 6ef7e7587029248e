import pytest

from core.roles import Role
from exceptions.models import ExceptionEvent, FulfillmentException, Queue
from tests.factories import raise_on_order, user_with_role

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_coordinator_claims_and_resolves_without_a_page_reload(live_server, page, screenshot):
    coordinator = user_with_role("carla", Role.COORDINATOR, "warehouse", "stock")
    exception = raise_on_order("short_pick")
    other = raise_on_order("out_of_stock")
    sign_in_and_open_team_tab(page, live_server)
    page.evaluate("window.__sameDocument = true")  # survives only if the page never reloads
    row = page.locator(f"#exception-{exception.pk}")
    assert row.locator("td.owner").inner_text() == "nobody"

    row.get_by_role("button", name="Claim").click()
    row.locator("td.owner", has_text="carla").wait_for()
    assert row.locator(".status").inner_text() == "In progress"
    page.locator("#tab-counts .count[data-tab='mine']", has_text="1").wait_for()

    row.locator("summary", has_text="Resolve").click()
    row.get_by_label("Resolution note").fill("Found the missing units on the next shelf")
    row.get_by_label("Minutes spent").fill("6")
    screenshot("queue-resolving")
    row.get_by_role("button", name="Resolve").click()
    row.wait_for(state="detached")

    assert page.evaluate("window.__sameDocument") is True
    assert page.locator(f"#exception-{other.pk}").count() == 1
    screenshot("queue-after-resolve")
    resolved = FulfillmentException.objects.get(pk=exception.pk)
    assert (resolved.status, resolved.owner, resolved.operator_minutes) == ("resolved", coordinator, 6)

    page.goto(f"{live_server.url}/exceptions/{exception.pk}/")
    timeline = page.locator(".timeline").inner_text()
    assert "Claimed" in timeline
    assert "Resolve: in progress → resolved" in timeline
    assert "Found the missing units on the next shelf" in timeline
    screenshot("exception-detail-timeline")
    assert list(ExceptionEvent.objects.filter(exception=exception).values_list("kind", flat=True)) == [
        "created",
        "claimed",
        "status_changed",
    ]


def test_resolving_without_a_note_shows_the_message_and_keeps_the_row(live_server, page, screenshot):
    user_with_role("carla", Role.COORDINATOR, "warehouse")
    exception = raise_on_order("short_pick")
    sign_in_and_open_team_tab(page, live_server)
    row = page.locator(f"#exception-{exception.pk}")

    row.locator("summary", has_text="Resolve").click()
    # bypass the browser's own required check to see what the server says
    row.locator("textarea[name=note]").evaluate("el => { el.required = false; el.value = '   '; }")
    row.get_by_role("button", name="Resolve").click()
    page.locator(f"#exception-{exception.pk} .error", has_text="A note is required.").first.wait_for()

    screenshot("queue-resolve-refused")
    assert FulfillmentException.objects.get(pk=exception.pk).status == "open"


@pytest.fixture(autouse=True)
def manual_queues():
    Queue.objects.update(assignment=Queue.Assignment.MANUAL)  # the work waits to be claimed


def sign_in_and_open_team_tab(page, live_server):
    sign_in(page, live_server, "carla")
    page.click("text=My teams")
    page.wait_for_url("**/queues/?tab=team")
