"""WSGI app for bench/api_ingest.py: the project's URLs plus a bare "floor" view.

Serve it with gunicorn from the project root (api_ingest.py does this for you):

    DATABASE_URL=postgres://.../scratch_db .venv/bin/gunicorn bench.floor_app:application

POST /bench/floor/ takes a JSON body and stores it with one INSERT into the bench-only
table bench_floor (api_ingest.py creates it in its scratch database), answering 201 {"id": ...}.
It passes through the same middleware as the API, so the difference between the two is what
the order intake itself costs. Settings are the project's own, except for ROOT_URLCONF.

POST /bench/api-floor/ is the API's own layers without the order services: a DRF view with the
project's token authentication, partner throttle and JSON parser that validates the body with
the intake's OrderInputSerializer, then stores it with the floor's one INSERT. Between the floor,
it and the intake, the intake's cost splits into what the API layers take and what the order
services take.
"""

import json
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fulfillment.settings")
# Served over plain HTTP on loopback, also when started by hand as above: no HTTPS redirect, no secure-only cookies.
for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
    os.environ.setdefault(name, "0")
application = get_wsgi_application()

from django.conf import settings
from django.db import connection
from django.http import HttpResponseBadRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.serializers import OrderInputSerializer

# Changed after setup rather than in a settings module of its own, so every other setting stays
# exactly what fulfillment.settings makes of the environment; URLs are resolved at the first request.
settings.ROOT_URLCONF = __name__


def _store(body: str) -> int:
    # Django's default autocommit: this INSERT is the request's only statement and only commit.
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor (body) VALUES (%s) RETURNING id", [body])
        (row_id,) = cursor.fetchone()
    return row_id


@csrf_exempt
@require_POST
def floor(request):
    try:
        json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest("expected a JSON body")
    return JsonResponse({"id": _store(request.body.decode())}, status=201)


class ApiFloor(APIView):
    def post(self, request):
        OrderInputSerializer(data=request.data).is_valid(raise_exception=True)
        return Response({"id": _store(request.body.decode())}, status=201)


urlpatterns = [
    path("bench/floor/", floor, name="bench-floor"),
    path("bench/api-floor/", ApiFloor.as_view(), name="bench-api-floor"),
    path("", include("fulfillment.urls")),
]
