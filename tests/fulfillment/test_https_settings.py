"""HTTPS settings from the environment: on with DEBUG off, off for `make run`, switched off for this suite."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from fulfillment.settings import proxy_ssl_header

ROOT = Path(__file__).resolve().parents[2]
HTTPS_VARIABLES = {
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
}


# Set by the browser tests for Playwright's event loop; no deployment sets it, and the deploy check says so.
BROWSER_TESTS_VARIABLE = "DJANGO_ALLOW_ASYNC_UNSAFE"


def environment_without_https_variables(**extra) -> dict:
    """This environment with DEBUG off, a strong key and none of the HTTPS variables, as a deployment starts."""
    left_out = HTTPS_VARIABLES | {"DEBUG", BROWSER_TESTS_VARIABLE}
    env = {name: value for name, value in os.environ.items() if name not in left_out}
    env.update(SECRET_KEY=secrets.token_urlsafe(50), **extra)
    return env


def manage(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def settings_in_a_fresh_process(env, *names) -> list[str]:
    program = f"from django.conf import settings; print(*(getattr(settings, name) for name in {names!r}))"
    printed = manage("shell", "-c", program, env=env)
    assert printed.returncode == 0, printed.stderr
    return printed.stdout.splitlines()[-1].split()  # after the shell's own line about what it imported


def test_the_deploy_check_passes_with_debug_off_and_nothing_else_set():
    check = manage("check", "--deploy", "--fail-level", "WARNING", env=environment_without_https_variables())

    assert check.returncode == 0, check.stderr
    assert "no issues" in check.stdout


def test_debug_off_turns_https_on_and_debug_on_turns_it_off():
    names = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS")

    production = settings_in_a_fresh_process(environment_without_https_variables(), *names)
    local = settings_in_a_fresh_process(environment_without_https_variables(DEBUG="1"), *names)

    assert production == ["True", "True", "True", str(365 * 24 * 60 * 60)]
    assert local == ["False", "False", "False", "0"]


def test_each_https_setting_can_be_switched_off_on_its_own():
    env = environment_without_https_variables(SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="3600")

    assert settings_in_a_fresh_process(env, "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "SECURE_HSTS_SECONDS") == [
        "False",
        "True",
        "3600",
    ]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", None),
        ("X-Forwarded-Proto: https", ("HTTP_X_FORWARDED_PROTO", "https")),
        ("x-forwarded-proto:https", ("HTTP_X_FORWARDED_PROTO", "https")),
        ("HTTP_X_FORWARDED_PROTO: https", ("HTTP_X_FORWARDED_PROTO", "https")),
    ],
)
def test_the_proxy_ssl_header_is_read_as_the_header_line_the_proxy_sends(value, expected):
    assert proxy_ssl_header(value) == expected


@pytest.mark.parametrize("value", ["X-Forwarded-Proto", "X-Forwarded-Proto:", ": https"])
def test_a_proxy_ssl_header_without_its_value_is_refused_at_start(value):
    with pytest.raises(ImproperlyConfigured):
        proxy_ssl_header(value)


@pytest.mark.django_db
def test_behind_a_proxy_plain_http_is_redirected_and_https_gets_hsts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    plain = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="http")
    secure = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")

    assert (plain.status_code, plain["Location"]) == (301, "https://testserver/accounts/login/")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"


@pytest.mark.django_db
def test_the_health_check_answers_plain_http_too(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
