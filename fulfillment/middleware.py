"""Middleware of our own."""

from django.conf import settings
from django.core import signals
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.handlers.exception import get_exception_response
from django.http import Http404
from django.http.multipartparser import MultiPartParserError
from django.middleware.common import CommonMiddleware
from django.urls import Resolver404, get_resolver, get_urlconf, resolve
from django.utils.log import log_response

from .views import is_api_request, length_required


class LengthRequiredMiddleware:
    """Refuses with 411 a request whose body is framed by Transfer-Encoding (chunked) instead of Content-Length.

    Django reads exactly CONTENT_LENGTH bytes, so a chunked body reads as empty and an order would be
    refused field by field. WSGI gives no portable way to read it instead: gunicorn hands the
    application the decoded body, Django's own server (runserver, the live test server) a stream
    cut at Content-Length 0 with the chunks still unread in the socket. A Content-Length beside
    Transfer-Encoding does not count: HTTP says the latter wins, and the pair is how requests are
    smuggled. First in the chain, so the answer goes out without a Content-Length and Django's
    server closes the connection rather than read those chunks as the next request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "HTTP_TRANSFER_ENCODING" in request.META:
            return length_required(request)
        return self.get_response(request)


class ApiErrorsAsJsonUnderDebugMiddleware:
    """Under /api/, with DEBUG on, a path that names nothing and an unhandled exception answer as with DEBUG off.

    Django calls handler404 and handler500 only when DEBUG is off; with it on (`make run`) it answers
    both with its HTML debug pages, which a partner's client cannot read. Last in the chain, so the
    answer passes back through every other middleware as the handlers' answers do.
    """

    # Not server errors: Django answers them 400 or 403 itself, with DEBUG on as with it off.
    CLIENT_ERRORS = (PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.DEBUG and is_api_request(request):
            try:
                resolve(request.path_info, getattr(request, "urlconf", None))
            except Resolver404 as exc:
                return get_exception_response(request, get_resolver(get_urlconf()), 404, exc)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not (settings.DEBUG and is_api_request(request)) or isinstance(exception, self.CLIENT_ERRORS):
            return None
        resolver = get_resolver(get_urlconf())
        if isinstance(exception, Http404):
            return get_exception_response(request, resolver, 404, exception)
        # What Django does for an uncaught exception with DEBUG off: tell listeners, answer with handler500, log it.
        signals.got_request_exception.send(sender=None, request=request)
        response = resolver.resolve_error_handler(500)(request)
        log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request, exception=exception)
        return response


class SlashKeepingCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, except that it never redirects an API path to add its slash.

    A 301 for POST /api/v1/orders makes most HTTP clients repeat the request as a GET, so the
    partner would get a list of orders instead of an error; the API answers 404 with the right path.
    """

    def should_redirect_with_slash(self, request) -> bool:
        if request.path_info.startswith("/api/"):
            return False
        return super().should_redirect_with_slash(request)
