"""What every API endpoint shares: the error shape of DESIGN §5, pagination, per-partner throttling."""

from __future__ import annotations

import functools
import math
import sys

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage
from django.core.paginator import Paginator as DjangoPaginator
from django.http import Http404
from rest_framework import exceptions, parsers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle

from .errors import DomainError
from .roles import Role, user_has_role

# DRF's own error codes, renamed where ours read better to a partner's engineer.
CODE_NAMES = {
    "invalid": "validation_error",
    "not_authenticated": "not_authenticated",
    "authentication_failed": "authentication_failed",
}
MESSAGES = {
    status.HTTP_400_BAD_REQUEST: "The request is not valid; see fields.",
    status.HTTP_401_UNAUTHORIZED: "Authentication is required: send 'Authorization: Token <key>'.",
    status.HTTP_403_FORBIDDEN: "You may not do this.",
    status.HTTP_404_NOT_FOUND: "Not found.",
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class JSONParser(parsers.JSONParser):
    """DRF's, also refusing JSON nested deeper than Python's decoder can follow (400, not a crash)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None


def error_body(code: str, message: str, *, fields: dict | None = None, **detail) -> dict:
    """The one error shape of DESIGN §5, for DRF views and plain Django handlers alike."""
    return {"error": {"code": code, "message": message, "fields": fields or {}, **detail}}


def error_response(
    code: str, message: str, http_status: int, *, fields: dict | None = None, headers: dict | None = None, **detail
) -> Response:
    return Response(error_body(code, message, fields=fields, **detail), status=http_status, headers=headers)


def _flatten(detail):
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def validation_error_body(detail) -> dict:
    """A serializer's errors in the one error shape, as a 400 answers them."""
    return error_body(
        "validation_error", MESSAGES[400], fields=_flatten(detail if isinstance(detail, dict) else {"non_field_errors": detail})
    )


def api_exception_handler(exc, context):
    """Every error as {"error": {"code", "message", "fields"}}; domain errors keep their own code and status."""
    # Imported here: rest_framework.views reads the API settings, which name this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DomainError):
        return error_response(exc.code, exc.message, exc.http_status, fields=exc.fields or None, **exc.detail)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = validation_error_body(exc.detail)["error"]["fields"]
        code, message = "validation_error", MESSAGES[400]
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        code = CODE_NAMES.get(code, code)
        message, fields = str(exc.detail), None
    headers = {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")}
    return error_response(code, message, response.status_code, fields=fields, headers=headers)


class PartnerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, reading the token, its user and the user's partner in one query."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        if "\x00" in key:  # PostgreSQL refuses NUL in text: not a token we could have issued
            raise exceptions.AuthenticationFailed("Invalid token.")
        try:
            token = model.objects.select_related("user__partner").get(key=key)
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        partner = getattr(token.user, "partner", None)
        if partner is not None and not partner.active:
            raise exceptions.AuthenticationFailed("This partner's access is switched off; ask the operations team.")
        return (token.user, token)


# Lists count their rows exactly up to here; beyond, a count would visit every row of a year's history on each page.
COUNT_LIMIT = 10_000


class _BoundedCount(DjangoPaginator):
    """Counts at most COUNT_LIMIT + 1 rows, so the count of a long list costs the same as that of a short one.
    Past the limit the number of pages is not known: a page says whether another follows by reading one row more."""

    @functools.cached_property
    def _counted(self) -> int:
        return self.object_list.order_by()[: COUNT_LIMIT + 1].count()

    @property
    def count(self) -> int:
        return min(self._counted, COUNT_LIMIT)

    @property
    def exact(self) -> bool:
        return self._counted <= COUNT_LIMIT

    @functools.cached_property
    def num_pages(self) -> int:
        return super().num_pages if self.exact else sys.maxsize  # any page number is worth asking for

    def page(self, number):
        if self.exact:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows:
            raise EmptyPage(self.error_messages["no_results"])
        page = self._get_page(rows[: self.per_page], number, self)
        page.has_next = lambda: len(rows) > self.per_page
        return page


class Pagination(PageNumberPagination):
    """Pages of 50 (page_size up to 200). `count` is exact up to COUNT_LIMIT; beyond it, `count` is COUNT_LIMIT and
    `count_exact` false, and the pages go on as far as `next` leads."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    django_paginator_class = _BoundedCount

    def get_paginated_response(self, data):
        paginator = self.page.paginator
        return Response(
            {
                "count": paginator.count,
                "count_exact": paginator.exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        described = super().get_paginated_response_schema(schema)
        described["properties"]["count"]["description"] = f"The number of rows, exact up to {COUNT_LIMIT:,}."
        described["properties"]["count_exact"] = {
            "type": "boolean",
            "example": True,
            "description": f"False when there are more than {COUNT_LIMIT:,} rows (count then says {COUNT_LIMIT:,}).",
        }
        described["required"] = [*described.get("required", []), "count_exact"]
        return described


class PartnerRateThrottle(SimpleRateThrottle):
    """One budget per partner and minute (or whatever the rate's period), however many of its
    processes call; staff get one per person.

    The budget is a counter per window raised atomically: requests arriving together from
    several processes cannot both take the last unit, and a request costs the same whatever the
    budget. (DRF's own throttle reads, extends and writes back the list of every request time in
    the window, which two processes can interleave.) With Redis the counter is raised and given
    its expiry by one script, in one round trip on one client kept for the process; without it
    (`make run`), through the cache.
    """

    scope = "partner"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        partner = getattr(request.user, "partner", None)
        ident = f"partner-{partner.pk}" if partner is not None else f"user-{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def window_key(self, key: str, now: float) -> str:
        return f"{key}:{int(now // self.duration)}"

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        self.window_ends = (int(now // self.duration) + 1) * self.duration
        return self.count_in_window(self.window_key(key, now), self.cost(request)) <= self.num_requests

    def cost(self, request) -> int:
        """How many units of the budget the request takes: one, unless it carries several orders."""
        return 1

    def count_in_window(self, window_key: str, cost: int = 1) -> int:
        """Count this request (`cost` units) in its window and return how many the window holds now."""
        raise_counter = _redis_window_counter()
        if raise_counter is not None:
            # The cache's own key (prefix and version): cache.delete() and cache.get() see the same counter.
            return raise_counter(keys=[self.cache.make_key(window_key)], args=[self.duration + 1, cost])
        self.cache.add(window_key, 0, timeout=self.duration + 1)
        try:
            return self.cache.incr(window_key, cost)
        except ValueError:  # the window expired between add and incr
            self.cache.add(window_key, cost, timeout=self.duration + 1)
            return cost

    def wait(self):
        return max(1, math.ceil(self.window_ends - self.timer()))


_RAISE_WINDOW_COUNTER = """
local used = redis.call('INCRBY', KEYS[1], ARGV[2])
if used == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return used
"""


@functools.cache
def _redis_window_counter():
    """The throttle's Redis script, on a client made once per process; None when the cache is not Redis.

    Django's Redis cache makes a new client object for every call (two per request for add and
    incr), which costs the API more than the round trips themselves.
    """
    cache = settings.CACHES["default"]
    if cache["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
        return None
    return redis.Redis.from_url(cache["LOCATION"]).register_script(_RAISE_WINDOW_COUNTER)


def caller_partner(user):
    """The partner a user speaks for, or None for staff."""
    return getattr(user, "partner", None) if user.is_authenticated else None


def is_staff_caller(user) -> bool:
    return user.is_authenticated and caller_partner(user) is None and (user.is_staff or user_has_role(user, *Role))


def document_error_responses(result, generator, request, public):
    """drf-spectacular hook: every API v1 operation may answer these errors, in the one error shape."""
    error_schema = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "fields"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {"type": "object"},
                },
                "additionalProperties": True,
            }
        },
    }
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = error_schema
    reasons = {
        "400": "Invalid input (malformed JSON, wrong types, unknown fields, bad filters)",
        "401": "Missing or wrong token",
        "403": "Not allowed for this account",
        "404": "Not found, another partner's, or a page past the end",
        "405": "Method not allowed",
        "413": "Body too large",
        "415": "Send application/json",
        "429": "Too many requests; wait for Retry-After seconds",
    }
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status_code, reason in reasons.items():
                responses.setdefault(
                    status_code,
                    {
                        "description": reason,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result
