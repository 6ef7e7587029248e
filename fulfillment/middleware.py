"""Middleware of our own."""

from django.middleware.common import CommonMiddleware


class SlashKeepingCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, except that it never redirects an API path to add its slash.

    A 301 for POST /api/v1/orders makes most HTTP clients repeat the request as a GET, so the
    partner would get a list of orders instead of an error; the API answers 404 with the right path.
    """

    def should_redirect_with_slash(self, request) -> bool:
        if request.path_info.startswith("/api/"):
            return False
        return super().should_redirect_with_slash(request)
