"""The queue as a morning's workbench, in real Chromium: bulk actions, the keyboard and saved views."""

import pytest

from core.roles import Role
from exceptions.models import ExceptionStatus, FulfillmentException, Queue, SavedView
from orders.models import OrderStatus
from tests.factories import make_order, order_in_state, raise_on_order, user_with_role

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def carla(db):
    Queue.objects.update(assignment=Queue.Assignment.MANUAL)
    return user_with_role("carla", Role.COORDINATOR, "warehouse", "stock")


def open_team_tab(page, live_server, query: str = "") -> None:
    sign_in(page, live_server, "carla")
    page.goto(f"{live_server.url}/queues/?tab=team{query}")
    page.locator("#results table.queue").wait_for()


def test_bulk_resolve_of_20_does_19_and_reports_the_refused_one_in_its_row(live_server, page, screenshot, carla):
    stuck = raise_on_order("out_of_stock", order_in_state(OrderStatus.BACKORDERED))  # the order is still short
    others = [raise_on_order("out_of_stock") for _ in range(40)]
    open_team_tab(page, live_server, "&size=50&sort=age")
    rows = page.locator("#results tr[data-row]")
    assert rows.count() == 41

    rows.nth(0).locator(".row-select").click()
    rows.nth(19).locator(".row-select").click(modifiers=["Shift"])  # a range: the first twenty
    page.locator("#bulk [data-selected]", has_text="20").wait_for()
    page.locator("#bulk [name=action]").select_option("resolve")
    assert page.locator("#bulk [name=reason]").is_hidden()  # only what the action asks for
    page.locator("#bulk [name=note]").fill("Stock found on the returns shelf")
    screenshot("bulk-resolve-selected")
    page.locator("#bulk button[type=submit]").click()

    report = page.locator(".bulk-report")
    report.wait_for()
    assert "Resolve: 19 of 20 done." in report.inner_text()
    refused_row = page.locator(f"#exception-{stuck.pk}")
    assert "still backordered" in refused_row.locator(".error").inner_text()
    assert "refused" in refused_row.get_attribute("class")
    screenshot("bulk-resolve-report")
    selected = [stuck, *others[:19]]
    assert FulfillmentException.objects.get(pk=stuck.pk).status == ExceptionStatus.OPEN
    assert all(FulfillmentException.objects.get(pk=e.pk).status == ExceptionStatus.RESOLVED for e in selected[1:])
    assert FulfillmentException.objects.filter(status=ExceptionStatus.OPEN).count() == 41 - 19
    assert page.locator("#tab-counts .count[data-tab='team']").inner_text() == "22"


def test_keyboard_triage_j_j_x_x_r_resolves_the_second_row(live_server, page, screenshot, carla):
    exceptions = [raise_on_order("short_pick") for _ in range(5)]
    open_team_tab(page, live_server, "&sort=age")
    rows = page.locator("#results tr[data-row]")
    second = rows.nth(1)
    assert second.get_attribute("data-row") == str(exceptions[1].pk)

    page.keyboard.press("j")
    page.keyboard.press("j")
    assert "current" in second.get_attribute("class")
    page.keyboard.press("x")
    assert second.locator(".row-select").is_checked()
    assert page.locator("#bulk [data-selected]").inner_text() == "1"
    page.keyboard.press("x")
    assert not second.locator(".row-select").is_checked()
    page.keyboard.press("r")  # nothing selected: this row's own resolve
    note = second.locator("textarea[name=note]")
    assert note.evaluate("el => el === document.activeElement")
    page.keyboard.type("jxr typed in the note moves nothing")
    assert "current" in second.get_attribute("class")
    screenshot("keyboard-resolve")
    page.keyboard.press("Control+Enter")
    page.locator(f"#exception-{exceptions[1].pk}").wait_for(state="detached")

    resolved = FulfillmentException.objects.get(pk=exceptions[1].pk)
    assert resolved.status == ExceptionStatus.RESOLVED
    assert resolved.resolution_note == "jxr typed in the note moves nothing"
    assert FulfillmentException.objects.filter(status=ExceptionStatus.OPEN).count() == 4


def test_keyboard_selection_then_c_claims_the_selected_rows_and_question_mark_shows_help(live_server, page, carla):
    exceptions = [raise_on_order("short_pick") for _ in range(4)]
    open_team_tab(page, live_server, "&sort=age")

    page.keyboard.press("?")
    assert page.locator("#keyboard-help").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#keyboard-help").is_hidden()
    for key in "jxjjx":
        page.keyboard.press(key)
    page.keyboard.press("c")
    page.locator(".bulk-report", has_text="Claim: 2 of 2 done.").wait_for()

    owners = {e.pk: FulfillmentException.objects.get(pk=e.pk).owner_id for e in exceptions}
    assert [owners[e.pk] == carla.pk for e in exceptions] == [True, False, True, False]
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"


def test_a_saved_view_is_reopened_with_its_filter_search_and_sort(live_server, page, screenshot, carla):
    wanted = raise_on_order("short_pick", make_order(external_id="NW-SAVED-1"))
    raise_on_order("out_of_stock")
    open_team_tab(page, live_server, "&stage=warehouse&sort=-age")
    page.locator("summary", has_text="Save this view").click()
    page.get_by_label("Name").fill("Warehouse, newest first")
    page.get_by_role("button", name="Save").click()
    page.locator(".saved-view a", has_text="Warehouse, newest first").wait_for()
    assert SavedView.objects.get(user=carla).query == "tab=team&stage=warehouse&sort=-age"

    page.goto(f"{live_server.url}/queues/")
    page.locator(".saved-view a", has_text="Warehouse, newest first").click()
    page.wait_for_url("**/queues/?tab=team&stage=warehouse&sort=-age")
    assert page.locator("select[name=stage]").input_value() == "warehouse"
    assert page.locator("#results tr[data-row]").count() == 1
    assert page.locator(f"#exception-{wanted.pk}").count() == 1
    assert page.locator("a.sort.active").inner_text().startswith("Age")
    screenshot("saved-view-reopened")
