import pytest

from core.roles import Role
from exceptions.models import ExceptionEvent, FulfillmentException, Presence, Queue
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
    assert "Coordinator carla claimed the exception" in timeline
    assert "Coordinator carla resolved the exception (6 min)" in timeline
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


def test_after_resolving_a_row_the_pager_and_the_tab_badges_drop(live_server, page, screenshot):
    user_with_role("carla", Role.COORDINATOR, "warehouse", "stock")
    exception, *_ = [raise_on_order(code) for code in ("short_pick", "out_of_stock", "out_of_stock")]
    sign_in_and_open_team_tab(page, live_server)
    pager = page.locator("#results .pager-count")

    def badge(tab):
        return page.locator(f"#tab-counts .count[data-tab='{tab}']")

    assert pager.inner_text().startswith("3 open")
    assert (badge("mine").inner_text(), badge("team").inner_text(), badge("unassigned").inner_text()) == ("0", "3", "3")

    row = page.locator(f"#exception-{exception.pk}")
    row.get_by_role("button", name="Claim").click()
    badge("unassigned").filter(has_text="2").wait_for()
    assert (badge("mine").inner_text(), pager.inner_text().split(" ")[0]) == ("1", "3")  # claimed, still in this tab

    row.locator("summary", has_text="Resolve").click()
    row.get_by_label("Resolution note").fill("Recounted the shelf")
    row.get_by_role("button", name="Resolve").click()
    row.wait_for(state="detached")
    page.locator("#results .pager-count", has_text="2 open").wait_for()

    assert (badge("mine").inner_text(), badge("team").inner_text(), badge("unassigned").inner_text()) == ("0", "2", "2")
    assert page.locator("#results tbody tr").count() == 2
    screenshot("queue_counters")


def test_the_queue_refreshes_itself_and_says_when_it_loaded_even_after_a_click_in_a_row(live_server, page, screenshot, settings):
    settings.QUEUE_REFRESH_SECONDS = 1
    user_with_role("carla", Role.COORDINATOR, "stock")
    exception = raise_on_order("out_of_stock")
    sign_in_and_open_team_tab(page, live_server)
    page.evaluate("window.__sameDocument = true")
    loaded = page.locator("#results .loaded time")
    first = loaded.inner_text()
    assert first.count(":") == 2

    # Open and close a row's form: the summary keeps the focus, which is no work in progress.
    summary = page.locator(f"#exception-{exception.pk} summary", has_text="Resolve")
    summary.click()
    summary.click()
    later = raise_on_order("out_of_stock")
    page.locator(f"#exception-{later.pk}").wait_for(timeout=8000)

    assert loaded.inner_text() != first
    assert page.locator("#results .pager-count").inner_text().startswith("2 open")
    assert page.evaluate("window.__sameDocument") is True
    screenshot("queue_refreshed")


def test_a_note_being_written_holds_the_refresh_back(live_server, page, settings):
    settings.QUEUE_REFRESH_SECONDS = 1
    user_with_role("carla", Role.COORDINATOR, "stock")
    exception = raise_on_order("out_of_stock")
    sign_in_and_open_team_tab(page, live_server)
    row = page.locator(f"#exception-{exception.pk}")
    row.locator("summary", has_text="Resolve").click()
    row.get_by_label("Resolution note").fill("Half a thought")
    later = raise_on_order("out_of_stock")

    page.wait_for_timeout(3500)  # three refresh intervals

    assert page.locator(f"#exception-{later.pk}").count() == 0
    assert row.get_by_label("Resolution note").input_value() == "Half a thought"
    row.locator("summary", has_text="Resolve").click()  # closed, the list may refresh again
    page.locator(f"#exception-{later.pk}").wait_for(timeout=8000)


def test_a_coordinator_marks_themself_away_and_back_in_the_page(live_server, page, screenshot):
    carla = user_with_role("carla", Role.COORDINATOR, "stock")
    sign_in(page, live_server, "carla")
    page.evaluate("window.__sameDocument = true")

    page.get_by_role("button", name="Mark me away").click()
    page.locator("#presence", has_text="You are away").wait_for()
    screenshot("queue_presence_away")
    assert Presence.objects.get(user=carla).away is True

    page.get_by_role("button", name="I'm back").click()
    page.locator("#presence", has_text="You are here").wait_for()
    assert Presence.objects.get(user=carla).away is False
    assert page.evaluate("window.__sameDocument") is True


@pytest.fixture(autouse=True)
def manual_queues():
    Queue.objects.update(assignment=Queue.Assignment.MANUAL)  # the work waits to be claimed


def sign_in_and_open_team_tab(page, live_server):
    sign_in(page, live_server, "carla")
    page.click("text=My teams")
    page.wait_for_url("**/queues/?tab=team")
