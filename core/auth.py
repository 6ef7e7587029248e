"""Shared page guards: every page needs a signed-in person with one of the roles."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from .roles import Role, user_has_role


def role_required(*roles: Role):
    """Signed in (else redirect to sign-in) and holding one of `roles` (else 403). No roles: any role."""
    wanted = roles or tuple(Role)

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not user_has_role(request.user, *wanted):
                raise PermissionDenied("Your account has no role that opens this page.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
