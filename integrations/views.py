"""The webhook endpoint: thin; receiving is integrations.services.inbound."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import DomainError

from .errors import IntegrationError
from .services.inbound import inbound_receive


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@csrf_exempt  # signed by the sender, not a browser form
@require_POST
def webhook(request, slug: str):
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.WEBHOOK_MAX_BYTES:
        limit = settings.WEBHOOK_MAX_BYTES
        return _error(413, IntegrationError.PAYLOAD_TOO_LARGE, f"A webhook body may be at most {limit} bytes.")
    try:
        received = inbound_receive(slug=slug, body=request.body, headers=request.headers)
    except DomainError as error:
        return JsonResponse(error.as_dict(), status=error.http_status)
    if received.event is None:
        return JsonResponse({"status": "duplicate", "message": "This message was received before."}, status=200)
    return JsonResponse({"status": "accepted", "event": received.event.pk}, status=202)
