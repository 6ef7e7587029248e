import csv
from urllib.parse import urlencode

from django.http import HttpResponse, HttpResponseNotFound, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.api import error_body
from core.auth import role_required
from inventory.models import Location

from . import charts, metrics
from .health import broker_status, database_status


@never_cache
@require_GET
def healthz(request):
    db_ok, db_detail = database_status()
    broker_ok, broker_detail = broker_status()
    healthy = db_ok and broker_ok
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
    }
    return JsonResponse(body, status=200 if healthy else 503)


def _api_error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def is_api_request(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception):
    """Under /api/ a path that names nothing answers in the API's error shape too, not with a page."""
    if is_api_request(request):
        if not request.path_info.endswith("/") and _resolves(f"{request.path_info}/"):
            return _api_error(
                "not_found", f"There is no endpoint at {request.path}; the API's paths end with a slash: {request.path}/", 404
            )
        return _api_error("not_found", f"There is no endpoint at {request.path}; see /api/docs/.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api_request(request):
        return _api_error("server_error", "Something went wrong on our side; it has been logged. Please retry later.", 500)
    return defaults.server_error(request)


def length_required(request):
    """411 for a body framed by Transfer-Encoding (chunked), which Django would read as empty."""
    message = "Send the body with a Content-Length header and no Transfer-Encoding; a chunked body is not accepted."
    if is_api_request(request):
        return _api_error("length_required", message, 411)
    return HttpResponse(message, status=411, content_type="text/plain; charset=utf-8")


@role_required()
@require_GET
def dashboard(request):
    period, errors = metrics.period_from(request.GET)
    figures = metrics.dashboard(period)
    trend = figures["trend"]
    context = {
        "period": period,
        "errors": errors,
        "figures": figures,
        "tables": metrics.tables(figures, period),
        "links": metrics.Links(period),
        "charts": {
            "created": charts.sparkline(trend["days"], trend["created"]),
            "resolved": charts.sparkline(trend["days"], trend["resolved"]),
        },
        "sites": Location.objects.filter(active=True).order_by("code"),
        "csv_query": urlencode(
            {"from": period.start.isoformat(), "to": period.end.isoformat(), **({"site": period.site.pk} if period.site else {})}
        ),
    }
    return render(request, "fulfillment/dashboard.html", context)


@role_required()
@require_GET
def dashboard_csv(request):
    name = request.GET.get("table", "")
    if name not in metrics.TABLE_NAMES:
        message = f"There is no dashboard table “{name}”; the tables are: {', '.join(metrics.TABLE_NAMES)}."
        return HttpResponseNotFound(message, content_type="text/plain; charset=utf-8")
    period, _ = metrics.period_from(request.GET)
    table = metrics.tables(metrics.dashboard(period), period)[name]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    site = f"-{period.site.code}" if period.site else ""
    response["Content-Disposition"] = f'attachment; filename="dashboard-{name}-{period.start}-{period.end}{site}.csv"'
    writer = csv.writer(response)
    writer.writerow(table.columns)
    writer.writerows([cell.value for cell in row] for row in table.rows)
    return response
