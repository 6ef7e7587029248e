"""Idempotency and intake under real concurrency (PostgreSQL, a real HTTP server) and their query cost."""

import json
import urllib.error
import urllib.request

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import IdempotencyKey, Order
from tests.threads import run_together

from .conftest import order_body, partner_client

ORDERS = "/api/v1/orders/"


def post(url: str, token: str, body: dict, key: str | None = None) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as failure:
        return failure.code, json.loads(failure.read()), dict(failure.headers)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_twenty_parallel_requests_with_one_key_create_exactly_one_order(live_server, catalogue):
    from rest_framework.authtoken.models import Token

    client = partner_client("acme")
    token = Token.objects.get(user=client.partner.api_user).key
    answers = []

    assert (
        run_together(20, lambda _: answers.append(post(f"{live_server.url}{ORDERS}", token, order_body(), key="same-key"))) == []
    )

    assert Order.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    order_id = Order.objects.get().pk
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) <= {201, 409} and statuses.count(201) >= 1
    created = [body for status, body, headers in answers if status == 201 and "Idempotent-Replayed" not in headers]
    replayed = [body for status, body, headers in answers if status == 201 and headers.get("Idempotent-Replayed") == "true"]
    assert len(created) == 1 and created[0]["id"] == order_id
    assert all(body == created[0] for body in replayed)
    in_flight = [body for status, body, _ in answers if status == 409]
    assert all(body["error"]["code"] == "request_in_progress" for body in in_flight)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_requests_with_one_external_id_and_no_key_create_one_order(live_server, catalogue):
    from rest_framework.authtoken.models import Token

    client = partner_client("acme")
    token = Token.objects.get(user=client.partner.api_user).key
    answers = []

    assert run_together(8, lambda _: answers.append(post(f"{live_server.url}{ORDERS}", token, order_body()))) == []

    assert Order.objects.count() == 1
    order_id = Order.objects.get().pk
    assert sorted(status for status, _, _ in answers) == [201] + [409] * 7
    expected = {
        "code": "duplicate_order",
        "message": f"You already sent order 1001; it is order {order_id}.",
        "fields": {},
        "order_id": order_id,
    }
    assert all(body["error"] == expected for status, body, _ in answers if status == 409)


def intake_queries(client, lines: int, external_id: str) -> int:
    customer = {"name": "Ada Lovelace", "email": f"{external_id}@example.com", "tier": "standard"}  # not a suspected duplicate
    body = order_body(
        external_id=external_id,
        customer=customer,
        lines=[{"sku": f"SKU-{1 + n % 3}", "quantity": 1, "uom": "each", "unit_price": "12.50"} for n in range(lines)],
    )
    with CaptureQueriesContext(connection) as captured:
        response = client.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY=f"key-{external_id}")
    assert response.status_code == 201 and response.json()["status"] == "allocated"
    return len(captured)


@pytest.mark.django_db
def test_intake_runs_the_same_number_of_queries_for_1_and_50_lines(acme, catalogue, django_assert_max_num_queries):
    one = intake_queries(acme, 1, "Q-1")
    fifty = intake_queries(acme, 50, "Q-50")
    assert one == fifty
    # With an Idempotency-Key: the token, 22 for the order (BEGIN/COMMIT and savepoints included), 6 for the key.
    with django_assert_max_num_queries(29):
        intake_queries(acme, 50, "Q-50b")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_partners_budget_holds_when_its_requests_arrive_together(live_server, monkeypatch):
    from django.core.cache import cache
    from rest_framework.authtoken.models import Token

    from core.api import PartnerRateThrottle

    client = partner_client("acme")
    token = Token.objects.get(user=client.partner.api_user).key
    monkeypatch.setattr(PartnerRateThrottle, "THROTTLE_RATES", {"partner": "5/min"})
    monkeypatch.setattr(PartnerRateThrottle, "timer", lambda self: 1_800_000_030.0)
    throttle = PartnerRateThrottle()
    cache.delete(
        throttle.window_key(
            throttle.cache_format % {"scope": "partner", "ident": f"partner-{client.partner.pk}"}, throttle.timer()
        )
    )
    statuses = []

    def ask(_: int) -> None:
        request = urllib.request.Request(f"{live_server.url}{ORDERS}", headers={"Authorization": f"Token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as refused:
            statuses.append(refused.code)

    assert run_together(12, ask) == []
    assert sorted(statuses) == [200] * 5 + [429] * 7


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_key_another_request_is_still_working_on_is_409_in_flight(catalogue):
    import threading

    from django.db import transaction

    from orders.services import idempotency

    client = partner_client("acme")
    holding, release = threading.Event(), threading.Event()

    def hold_the_key() -> None:
        try:
            with transaction.atomic():
                idempotency.claim_locked(
                    partner=client.partner, key="busy", body_fingerprint=idempotency.fingerprint(order_body())
                )
                holding.set()
                release.wait(10)
                transaction.set_rollback(True)
        finally:
            connection.close()

    worker = threading.Thread(target=hold_the_key)
    worker.start()
    try:
        assert holding.wait(10)
        response = client.post(ORDERS, order_body(), format="json", HTTP_IDEMPOTENCY_KEY="busy")
    finally:
        release.set()
        worker.join()

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "request_in_progress"
    assert not Order.objects.exists() and not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_a_key_row_gone_between_the_collision_and_the_read_is_claimed_again(catalogue, monkeypatch):
    """Another request took over the expired key: our INSERT met the old row, our read finds none."""
    from orders.services import idempotency

    client = partner_client("acme")
    insert, calls = idempotency._insert, []

    def collide_once(**kwargs):
        calls.append(kwargs["key"])
        if len(calls) == 1:
            return None  # the INSERT met a row (ON CONFLICT DO NOTHING) that was gone by the time we read
        return insert(**kwargs)

    monkeypatch.setattr(idempotency, "_insert", collide_once)

    claimed = idempotency.claim_locked(partner=client.partner, key="k-taken-over", body_fingerprint="f" * 64)

    assert isinstance(claimed, int) and IdempotencyKey.objects.get(pk=claimed).key == "k-taken-over"
    assert calls == ["k-taken-over", "k-taken-over"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_copies_of_one_order_arriving_together_are_not_both_taken_as_new(catalogue):
    """A double submit: the second copy waits for the first to commit, then sees it and is held."""
    import threading

    from django.db import transaction

    from exceptions.models import FulfillmentException

    acme, globex = partner_client("acme"), partner_client("globex")
    first_stored, release, answers = threading.Event(), threading.Event(), {}

    def first_copy() -> None:
        try:
            with transaction.atomic():  # the request's own transaction commits only when this block ends
                answers["first"] = acme.post(ORDERS, order_body(external_id="A-1"), format="json")
                first_stored.set()
                release.wait(10)
        finally:
            connection.close()

    def second_copy() -> None:
        try:
            answers["second"] = globex.post(ORDERS, order_body(external_id="G-1"), format="json")
        finally:
            connection.close()

    first, second = threading.Thread(target=first_copy), threading.Thread(target=second_copy)
    first.start()
    try:
        assert first_stored.wait(10)
        second.start()
        second.join(0.5)
        assert second.is_alive(), "the second copy went ahead while the first was still open"
    finally:
        release.set()
        first.join()
        second.join()

    assert answers["first"].status_code == answers["second"].status_code == 201
    assert answers["first"].json()["status"] == "allocated"
    assert answers["second"].json()["status"] == "on_hold"
    held = FulfillmentException.objects.get(type__code="duplicate_order")
    assert (held.order_id, held.detail["duplicate_of"]) == (answers["second"].json()["id"], answers["first"].json()["id"])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_orders_whose_problems_lock_two_round_robin_queues_in_opposite_order_are_both_taken(catalogue, monkeypatch, caplog):
    """Round-robin queues lock their cursor until the order commits; two orders with the same two problems in
    opposite order lock them in opposite order. PostgreSQL breaks the deadlock by failing one, and it runs again."""
    import time

    from exceptions.models import FulfillmentException, Queue
    from orders.services import intake
    from tests.factories import user_with_role

    Queue.objects.filter(slug__in=["intake", "finance"]).update(assignment=Queue.Assignment.ROUND_ROBIN)
    user_with_role("pat", None, "intake", "finance")
    raise_exception = intake.exception_raise

    def raise_slowly(**kwargs):
        raised = raise_exception(**kwargs)
        time.sleep(0.3)  # holding that queue's row while the other order takes the other queue's
        return raised

    monkeypatch.setattr(intake, "exception_raise", raise_slowly)
    unknown = {"sku": "NOPE", "quantity": 1, "uom": "each", "unit_price": "1.00"}
    mispriced = {"sku": "SKU-1", "quantity": 1, "uom": "each", "unit_price": "99.00"}
    bodies = [
        order_body(external_id="A", customer={"name": "A", "email": "a@example.com"}, lines=[unknown, mispriced]),
        order_body(external_id="B", customer={"name": "B", "email": "b@example.com"}, lines=[mispriced, unknown]),
    ]
    clients, answers = [partner_client("acme"), partner_client("acme")], {}

    def submit(index: int) -> None:
        answers[index] = clients[index].post(ORDERS, bodies[index], format="json")

    assert run_together(2, submit) == []

    assert [answers[i].status_code for i in (0, 1)] == [201, 201]
    assert sorted(Order.objects.values_list("external_id", "status")) == [("A", "on_hold"), ("B", "on_hold")]
    assert FulfillmentException.objects.filter(owner__username="pat").count() == 4
    assert "deadlock broken by PostgreSQL" in caplog.text
