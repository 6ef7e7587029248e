"""The stock list, one stock level with its on-hand chart, and the replenishment page with its actions."""

import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from inventory.models import ReplenishmentSuggestion, StockLevel, StockMovement, SuggestionEvent, SuggestionStatus
from inventory.replenishment import suggestion_approve, suggestion_dismiss, suggestion_mark_ordered
from inventory.services import stock_adjust, stock_receive, stock_reserve
from inventory.views import BOTTOM, HEIGHT, TOP
from tests.factories import TEST_ACTOR, LocationFactory, SkuFactory, UserFactory, stock, user_with_role

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def level_at(location, sku, on_hand: int, **figures) -> StockLevel:
    if on_hand:
        stock(location, sku, on_hand)
    else:
        StockLevel.objects.get_or_create(location=location, sku=sku)
    StockLevel.objects.filter(location=location, sku=sku).update(**figures)
    return StockLevel.objects.get(location=location, sku=sku)


def suggest(location, sku, quantity: int = 120) -> ReplenishmentSuggestion:
    """A proposed suggestion as the replenishment run writes it: 12 a day, 5 days' lead time, 95 %."""
    return ReplenishmentSuggestion.objects.create(
        location=location,
        sku=sku,
        quantity=quantity,
        demand_per_day=Decimal("12"),
        demand_sigma=Decimal("2"),
        demand_days=28,
        lead_time_days=5,
        review_period_days=7,
        service_level_percent=Decimal("95"),
        safety_stock=8,
        reorder_point=68,
        order_up_to=152,
        position=60,
    )


def many_levels(count: int, *, prefix: str = "BULK") -> list[StockLevel]:
    """`count` levels over two sites, every third one with an open suggestion, without a ledger (the list
    shows counters; the ledger only matters for the chart)."""
    sites = [LocationFactory(code=f"{prefix}-A"), LocationFactory(code=f"{prefix}-B")]
    skus = [SkuFactory(code=f"{prefix}-{n:03d}") for n in range((count + 1) // 2)]
    levels = StockLevel.objects.bulk_create(
        StockLevel(location=sites[n % 2], sku=skus[n // 2], on_hand=n, reorder_point=10, safety_stock=3) for n in range(count)
    )
    for level in levels[::3]:
        suggest(level.location, level.sku)
    return levels


def cells(html: str, row_id: str) -> list[str]:
    row = re.search(rf'<tr id="{row_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, f"no row {row_id}"
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)
    ]


def listed(response) -> set[int]:
    return {level.pk for level in response.context["page"].object_list}


@pytest.fixture
def east():
    return LocationFactory(code="WH-EAST", name="East")


@pytest.fixture
def mug():
    return SkuFactory(code="MUG-1", name="Blue mug", case_pack=12)


@pytest.fixture
def signed_in(client, coordinator):
    client.force_login(coordinator)
    return client


# --- access --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/inventory/", "/inventory/replenishment/", "/inventory/WH-EAST/MUG-1/"])
def test_anonymous_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


@pytest.mark.parametrize("url", ["/inventory/", "/inventory/replenishment/"])
def test_a_user_without_the_view_permission_gets_403(client, url):
    client.force_login(UserFactory(username="partner-acme"))
    assert client.get(url).status_code == 403


def test_an_unknown_level_is_404(signed_in, east, mug):
    assert signed_in.get("/inventory/WH-EAST/MUG-1/").status_code == 404


def test_the_nav_links_to_stock_and_replenishment(signed_in):
    body = signed_in.get("/queues/").content.decode()
    assert 'href="/inventory/">Stock</a>' in body and 'href="/inventory/replenishment/">Replenishment</a>' in body


# --- the stock list ------------------------------------------------------------------------------------


def test_the_list_shows_each_levels_figures_and_its_open_suggestion(signed_in, east, mug):
    level = level_at(east, mug, 50, reorder_point=45, safety_stock=8, demand_per_day=Decimal("4"))
    stock_reserve(location_id=east.pk, sku_id=mug.pk, quantity=10, actor=TEST_ACTOR)
    suggest(east, mug, quantity=96)
    quiet = level_at(east, SkuFactory(code="PEN-1"), 7)

    body = signed_in.get(reverse("inventory")).content.decode()

    # location, SKU, on hand, reserved, available, days of cover (40 / 4), reorder point, safety stock, suggestion
    assert cells(body, f"level-{level.pk}") == ["WH-EAST", "MUG-1 Blue mug", "50", "10", "40", "10.0", "45", "8", "96 proposed"]
    assert cells(body, f"level-{quiet.pk}")[2:] == ["7", "0", "7", "—", "0", "0", "—"]
    assert 'href="/inventory/WH-EAST/MUG-1/"' in body
    assert re.search(rf'<tr id="level-{level.pk}" class="below-reorder"', body)
    assert "2 stock levels" in body


def test_each_filter_and_the_search_narrow_the_list(signed_in, east, mug):
    west = LocationFactory(code="WH-WEST")
    low = level_at(east, mug, 5, reorder_point=20)  # 5 ≤ 20
    exactly = level_at(west, mug, 20, reorder_point=20)  # at counts too
    plenty = level_at(east, SkuFactory(code="PEN-1", name="Red pen"), 90, reorder_point=20)
    reserved_down = level_at(west, SkuFactory(code="CUP-9", name="Tea cup"), 30, reorder_point=20)
    stock_reserve(location_id=west.pk, sku_id=reserved_down.sku_id, quantity=15, actor=TEST_ACTOR)  # available 15 ≤ 20
    suggest(east, plenty.sku)
    every = {low.pk, exactly.pk, plenty.pk, reserved_down.pk}

    assert listed(signed_in.get("/inventory/")) == every
    assert listed(signed_in.get("/inventory/", {"location": "WH-WEST"})) == {exactly.pk, reserved_down.pk}
    assert listed(signed_in.get("/inventory/", {"low": "on"})) == {low.pk, exactly.pk, reserved_down.pk}
    assert listed(signed_in.get("/inventory/", {"open": "on"})) == {plenty.pk}
    assert listed(signed_in.get("/inventory/", {"q": "pen"})) == {plenty.pk}  # by name
    assert listed(signed_in.get("/inventory/", {"q": "cup-9"})) == {reserved_down.pk}  # by code, any case
    assert listed(signed_in.get("/inventory/", {"location": "WH-EAST", "low": "on"})) == {low.pk}
    unknown = signed_in.get("/inventory/", {"location": "NOWHERE"})
    assert listed(unknown) == every and unknown.context["form"].errors["location"]


def test_an_htmx_filter_gets_only_the_results(signed_in, east, mug):
    level_at(east, mug, 5)
    response = signed_in.get("/inventory/", {"q": "MUG"}, HTTP_HX_TARGET="results", **HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="results">') and "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_the_list_pages_by_fifty_and_shows_the_total(signed_in):
    levels = many_levels(60)
    first = signed_in.get("/inventory/")
    second = signed_in.get("/inventory/", {"page": 2})

    assert len(first.context["page"].object_list) == 50 and len(second.context["page"].object_list) == 10
    assert listed(first) | listed(second) == {level.pk for level in levels}
    assert "60 stock levels · page 1 of 2" in first.content.decode()
    assert 'href="?page=2"' in first.content.decode()
    filtered = signed_in.get("/inventory/", {"location": "BULK-A"}).content.decode()
    assert "30 stock levels · page 1 of 1" in filtered


@pytest.mark.parametrize("count", [5, 60])
def test_the_list_runs_the_same_few_queries_for_5_and_60_levels(signed_in, count, django_assert_max_num_queries):
    many_levels(count)
    # session, user, the user's and the groups' permissions, the page of levels, the count, the locations
    with django_assert_max_num_queries(7):
        response = signed_in.get("/inventory/")
    assert len(response.context["page"].object_list) == min(count, 50)


@pytest.mark.parametrize("count", [5, 60])
def test_the_replenishment_list_runs_the_same_few_queries_for_5_and_60_suggestions(
    signed_in, count, django_assert_max_num_queries
):
    many_levels(count * 3)
    with django_assert_max_num_queries(7):
        response = signed_in.get("/inventory/replenishment/")
    assert len(response.context["page"].object_list) == min(count, 50)


# --- one level and its chart ---------------------------------------------------------------------------


def at_noon(days_ago: int) -> datetime:
    return datetime.combine(timezone.localdate() - timedelta(days=days_ago), time(12), tzinfo=timezone.get_current_timezone())


def moved(movement: StockMovement, days_ago: int) -> None:
    StockMovement.objects.filter(pk=movement.pk).update(at=at_noon(days_ago))


def test_the_chart_draws_the_daily_close_from_the_ledger_against_the_reorder_point_and_safety_stock(signed_in, east, mug):
    moved(stock_receive(location_id=east.pk, sku_id=mug.pk, quantity=40, actor=TEST_ACTOR), 30)
    moved(stock_receive(location_id=east.pk, sku_id=mug.pk, quantity=20, actor=TEST_ACTOR), 10)
    moved(stock_adjust(location_id=east.pk, sku_id=mug.pk, delta=-15, reason="broken", actor=TEST_ACTOR), 5)
    # Before the window: no step of its own, but what every day of it starts from.
    moved(stock_receive(location_id=east.pk, sku_id=mug.pk, quantity=5, actor=TEST_ACTOR), 90)
    StockLevel.objects.filter(location=east, sku=mug).update(reorder_point=30, safety_stock=10)

    response = signed_in.get("/inventory/WH-EAST/MUG-1/")
    body = response.content.decode()

    expected = [5] * 29 + [45] * 20 + [65] * 5 + [50] * 6  # 59 days ago … today
    days = response.context["chart"]["days"]
    assert [value for _, value in days] == expected
    assert days[-1][0] == timezone.localdate() and days[0][0] == timezone.localdate() - timedelta(days=59)

    assert "<svg" in body
    # The highest figure is 65, so the scale runs in twenties up to 80.
    ticks = re.findall(r'<text x="\d+" y="[\d.]+" text-anchor="end" dominant-baseline="middle">(\d+)</text>', body)
    assert ticks == ["0", "20", "40", "60", "80"]

    def y(value):
        return round(TOP + (HEIGHT - TOP - BOTTOM) * (80 - value) / 80, 1)

    points = re.search(r'<polyline class="on-hand-line" fill="none" points="([^"]+)"', body)[1].split()
    assert len(points) == 60
    xs = [float(p.split(",")[0]) for p in points]
    assert xs == sorted(xs) and len(set(xs)) == 60
    assert [float(p.split(",")[1]) for p in points] == [y(value) for value in expected]
    reorder = re.search(r'<line class="reorder-line" x1="\d+" x2="\d+" y1="([\d.]+)" y2="([\d.]+)" data-value="30"', body)
    safety = re.search(r'<line class="safety-line" x1="\d+" x2="\d+" y1="([\d.]+)" y2="([\d.]+)" data-value="10"', body)
    assert reorder and float(reorder[1]) == float(reorder[2]) == y(30)
    assert safety and float(safety[1]) == float(safety[2]) == y(10)
    assert "Reorder point 30" in body and "Safety stock 10" in body  # the legend


def test_the_level_page_lists_its_suggestions_with_their_events_and_the_last_twenty_movements(signed_in, east, mug):
    for _ in range(25):
        stock(east, mug, 1)
    older = suggest(east, mug, quantity=48)
    suggestion_approve(suggestion=older, actor=TEST_ACTOR)
    older.refresh_from_db()
    suggestion_dismiss(suggestion=older, reason="Supplier discontinued it", actor=TEST_ACTOR)
    newer = suggest(east, mug, quantity=96)
    ReplenishmentSuggestion.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=3))
    StockLevel.objects.filter(location=east, sku=mug).update(reorder_point=30, safety_stock=10, lead_time_days=5)

    response = signed_in.get("/inventory/WH-EAST/MUG-1/")
    body = response.content.decode()

    assert [s.pk for s in response.context["suggestions"]] == [newer.pk, older.pk]
    assert body.index(f'id="suggestion-{newer.pk}"') < body.index(f'id="suggestion-{older.pk}"')
    dismissed = " ".join(cells(body, f"suggestion-{older.pk}"))
    assert "12 a day over 28 days, lead time 5 days, 95 %: reorder at 68, have 60" in dismissed
    assert "proposed → approved by job:test" in dismissed
    assert "approved → dismissed by job:test" in dismissed and "Supplier discontinued it" in dismissed
    assert len(response.context["movements"]) == 20
    assert "Last 20 movements" in body
    assert "On hand</dt><dd>25" in body.replace("\n", "")


def test_the_level_page_runs_the_same_queries_however_long_the_ledger(signed_in, east, mug, django_assert_max_num_queries):
    for _ in range(30):
        stock(east, mug, 1)
    suggest(east, mug)
    # session, user, permissions ×2, the level, the history, the suggestions, their events, the movements
    with django_assert_max_num_queries(9):
        assert signed_in.get("/inventory/WH-EAST/MUG-1/").status_code == 200


# --- replenishment -------------------------------------------------------------------------------------


def act(client, suggestion, action: str, htmx: bool = True, **data):
    url = reverse("replenishment-action", args=[suggestion.pk, action])
    return client.post(url, data, **(HTMX if htmx else {}))


def test_the_replenishment_list_shows_open_ones_by_default_and_filters(signed_in, east, mug):
    west = LocationFactory(code="WH-WEST")
    pen = SkuFactory(code="PEN-1", name="Red pen")
    proposed = suggest(east, mug)
    ordered = suggest(west, mug)
    suggestion_mark_ordered(suggestion=ordered, quantity=120, actor=TEST_ACTOR)
    dismissed = suggest(east, pen)
    suggestion_dismiss(suggestion=dismissed, reason="Seasonal", actor=TEST_ACTOR)

    def shown(**params):
        return {s.pk for s in signed_in.get("/inventory/replenishment/", params).context["page"].object_list}

    assert shown() == {proposed.pk, ordered.pk}
    assert shown(status="dismissed") == {dismissed.pk}
    assert shown(status="ordered") == {ordered.pk}
    assert shown(status="all") == {proposed.pk, ordered.pk, dismissed.pk}
    assert shown(location="WH-WEST") == {ordered.pk}
    assert shown(status="all", q="pen") == {dismissed.pk}
    body = signed_in.get("/inventory/replenishment/").content.decode()
    assert "12 a day over 28 days, lead time 5 days, 95 %: reorder at 68, have 60" in body


def test_each_row_offers_the_actions_its_status_allows_prefilled(signed_in, east, mug):
    proposed = suggest(east, mug, quantity=96)
    ordered = suggest(east, SkuFactory(code="PEN-1"), quantity=48)
    suggestion_mark_ordered(suggestion=ordered, quantity=50, actor=TEST_ACTOR)

    body = signed_in.get("/inventory/replenishment/").content.decode()
    row = re.search(rf'<tr id="suggestion-{proposed.pk}".*?</tr>', body, re.S)[0]
    assert ">Approve</button>" in row and "Mark ordered" in row and ">Dismiss</button>" in row and "Receive" not in row
    assert re.search(r'name="quantity" type="number"[^>]*value="96"', row)
    assert re.search(r'name="reason"[^>]*required></textarea>', row)  # empty: the buyer says why
    row = re.search(rf'<tr id="suggestion-{ordered.pk}".*?</tr>', body, re.S)[0]
    assert "Receive into stock" in row and "Approve" not in row and "Mark ordered" not in row
    assert re.search(r'name="quantity" type="number"[^>]*value="50"', row)


def test_a_buyer_takes_a_suggestion_from_proposed_to_received_through_the_page(signed_in, coordinator, east, mug):
    stock(east, mug, 10)
    suggestion = suggest(east, mug, quantity=96)

    response = act(signed_in, suggestion, "approve")
    assert response.status_code == 200 and "Approved: 96 × MUG-1 at WH-EAST." in response.content.decode()
    assert response.content.decode().lstrip().startswith(f'<tr id="suggestion-{suggestion.pk}"')
    assert "replenishment-changed" in response["HX-Trigger"]

    response = act(signed_in, suggestion, "order", quantity="100", reference="PO-77")
    assert "On order: 100 × MUG-1 at WH-EAST (PO-77)." in response.content.decode()
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.quantity_ordered) == (SuggestionStatus.ORDERED, 100)

    response = act(signed_in, suggestion, "receive", quantity="90")
    assert "Received into stock: 90 × MUG-1 at WH-EAST." in response.content.decode()
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.quantity_received) == (SuggestionStatus.RECEIVED, 90)
    assert StockLevel.objects.get(location=east, sku=mug).on_hand == 100
    receipt = StockMovement.objects.filter(location=east, sku=mug).first()
    assert (receipt.kind, receipt.on_hand_delta, receipt.actor) == ("receipt", 90, "user:coord")
    assert list(SuggestionEvent.objects.filter(suggestion=suggestion).values_list("name", "actor")) == [
        ("approve", "user:coord"),
        ("mark_ordered", "user:coord"),
        ("receive", "user:coord"),
    ]


def test_dismissing_records_the_reason(signed_in, east, mug):
    suggestion = suggest(east, mug)
    response = act(signed_in, suggestion, "dismiss", reason="  Supplier discontinued it ")
    assert response.status_code == 200 and "Dismissed: 120 × MUG-1 at WH-EAST." in response.content.decode()
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.note) == (SuggestionStatus.DISMISSED, "Supplier discontinued it")


def test_a_plain_post_redirects_back_to_the_list_with_the_message(signed_in, east, mug):
    suggestion = suggest(east, mug)
    response = act(signed_in, suggestion, "approve", htmx=False, query="location=WH-EAST&status=all")
    assert response.status_code == 302 and response.url == "/inventory/replenishment/?location=WH-EAST&status=all"
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Approved: 120 × MUG-1 at WH-EAST."]
    page = signed_in.get(response.url).content.decode()
    assert page.count("Approved: 120 × MUG-1 at WH-EAST.") == 1  # the message, not a row's notice
    assert ReplenishmentSuggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.APPROVED


def test_receiving_a_proposed_suggestion_is_refused_with_the_reason_and_changes_nothing(signed_in, east, mug):
    stock(east, mug, 10)
    suggestion = suggest(east, mug)

    response = act(signed_in, suggestion, "receive", quantity="120")

    assert response.status_code == 409
    body = unescape(response.content.decode())
    assert "is proposed; 'receive' is not possible: only what was ordered can be received." in body
    assert 'role="alert"' in body
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.PROPOSED
    assert StockLevel.objects.get(location=east, sku=mug).on_hand == 10
    assert not SuggestionEvent.objects.exists()

    plain = act(signed_in, suggestion, "receive", htmx=False, quantity="120")
    assert plain.status_code == 302
    assert any("'receive' is not possible" in str(m) for m in get_messages(plain.wsgi_request))


def test_approving_twice_is_refused_the_second_time(signed_in, east, mug):
    suggestion = suggest(east, mug)
    assert act(signed_in, suggestion, "approve").status_code == 200
    again = act(signed_in, suggestion, "approve")
    assert again.status_code == 409 and "is approved; 'approve' is not possible" in unescape(again.content.decode())
    assert SuggestionEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "The quantity must be a whole number above zero."),
        ("lots", "Enter a whole number of units."),
        ("", "Enter a quantity."),
    ],
)
def test_marking_ordered_with_a_bad_quantity_is_refused_and_keeps_the_form_open(signed_in, east, mug, quantity, message):
    suggestion = suggest(east, mug)
    response = act(signed_in, suggestion, "order", quantity=quantity)
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body and "<details open><summary>Mark ordered" in body
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.quantity_ordered) == (SuggestionStatus.PROPOSED, None)


@pytest.mark.parametrize("reason", ["", "   "])
def test_dismissing_without_a_reason_changes_nothing(signed_in, east, mug, reason):
    suggestion = suggest(east, mug)
    response = act(signed_in, suggestion, "dismiss", reason=reason)
    assert response.status_code == 400 and "Say why it is dismissed." in response.content.decode()
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.note) == (SuggestionStatus.PROPOSED, "")
    assert not SuggestionEvent.objects.exists()


@pytest.mark.parametrize("htmx", [True, False])
def test_a_role_without_the_change_permission_gets_403_and_changes_nothing(client, service_agent, east, mug, htmx):
    suggestion = suggest(east, mug)
    client.force_login(service_agent)
    assert client.get("/inventory/replenishment/").status_code == 200  # customer service may look

    for action, data in [("approve", {}), ("order", {"quantity": "5"}), ("dismiss", {"reason": "no"})]:
        response = act(client, suggestion, action, htmx=htmx, **data)
        assert response.status_code == 403
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.PROPOSED and not SuggestionEvent.objects.exists()
    assert ">Approve</button>" not in client.get("/inventory/replenishment/").content.decode()


def test_an_unknown_suggestion_or_action_is_404_and_get_is_not_allowed(signed_in, east, mug):
    suggestion = suggest(east, mug)
    assert signed_in.post(reverse("replenishment-action", args=[suggestion.pk + 1000, "approve"])).status_code == 404
    assert signed_in.post(reverse("replenishment-action", args=[suggestion.pk, "delete"])).status_code == 404
    assert signed_in.get(reverse("replenishment-action", args=[suggestion.pk, "approve"])).status_code == 405


# --- the admin -----------------------------------------------------------------------------------------


def test_the_admin_approves_and_dismisses_selected_suggestions_and_names_those_that_failed(client, east, mug):
    pen = SkuFactory(code="PEN-1")
    proposed = suggest(east, mug)
    already = suggest(east, pen)
    suggestion_approve(suggestion=already, actor=TEST_ACTOR)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    url = reverse("admin:inventory_replenishmentsuggestion_changelist")

    response = client.post(url, {"action": "approve_selected", "_selected_action": [proposed.pk, already.pk]}, follow=True)

    notes = [str(m) for m in response.context["messages"]]
    assert "Approved 1 suggestion." in notes
    assert any(n.startswith("1 not approved: PEN-1 at WH-EAST: ") and "is approved" in n for n in notes)
    proposed.refresh_from_db()
    assert proposed.status == SuggestionStatus.APPROVED

    response = client.post(url, {"action": "dismiss_selected", "_selected_action": [proposed.pk, already.pk]}, follow=True)
    assert "Dismissed 2 suggestions." in [str(m) for m in response.context["messages"]]
    assert set(ReplenishmentSuggestion.objects.values_list("status", "note")) == {
        (SuggestionStatus.DISMISSED, "Dismissed in the admin by root")
    }
    assert set(SuggestionEvent.objects.filter(name="dismiss").values_list("actor", flat=True)) == {"user:root"}


def test_the_admin_shows_a_suggestion_read_only_with_its_events(client, east, mug):
    suggestion = suggest(east, mug)
    suggestion_approve(suggestion=suggestion, actor=TEST_ACTOR)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    model_admin = admin.site._registry[ReplenishmentSuggestion]

    body = client.get(reverse("admin:inventory_replenishmentsuggestion_change", args=[suggestion.pk])).content.decode()

    assert "reorder at 68, have 60" in body and "job:test" in body
    assert 'name="quantity"' not in body and 'name="_save"' not in body
    assert not model_admin.has_add_permission(None)
    changelist = client.get(reverse("admin:inventory_replenishmentsuggestion_changelist"), {"q": "MUG"}).content.decode()
    assert "MUG-1" in changelist and "Approve selected" in changelist and "Dismiss selected" in changelist


def test_the_admin_lists_show_the_planning_settings(client, east, mug):
    level_at(east, mug, 3)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    assert "column-drift_tolerance_units" in client.get(reverse("admin:inventory_location_changelist")).content.decode()
    assert "column-service_level_percent" in client.get(reverse("admin:inventory_sku_changelist")).content.decode()
    level = StockLevel.objects.get()
    form = client.get(reverse("admin:inventory_stocklevel_change", args=[level.pk])).content.decode()
    assert 'name="review_period_days"' in form


def test_a_coordinator_role_is_what_opens_the_pages(client):
    user_with_role("cora", Role.COORDINATOR)
    client.login(username="cora", password="pw")
    assert client.get("/inventory/").status_code == 200
