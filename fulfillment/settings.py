"""Settings come from the environment (DESIGN §2).

Without DATABASE_URL the portal runs on SQLite in WAL mode under var/; without
REDIS_URL Celery uses kombu's filesystem transport under var/. That is the
embedded default of `make run`; tests and production set both URLs.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto: https` (the header a TLS-ending proxy sets, and its value for HTTPS) as Django's
    (META key, value); None when empty."""
    if not value.strip():
        return None
    name, separator, expected = (part.strip() for part in value.partition(":"))
    if not (separator and name and expected):
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER is 'Header-Name: value' (X-Forwarded-Proto: https), not {value!r}.")
    key = name.upper().replace("-", "_")
    return (key if key.startswith("HTTP_") else f"HTTP_{key}", expected)


DEBUG = env_bool("DEBUG", False)
# The fallback key only serves the local one-command start; production sets SECRET_KEY.
SECRET_KEY = os.environ.get("SECRET_KEY", "local-only-insecure-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")

# HTTPS only, unless DEBUG is on (`make run` serves plain HTTP on loopback). Each can be switched off on its
# own for other plain-HTTP servers on loopback: the test suite's and the benchmarks'.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Health probes often come over plain HTTP from inside the network, past the proxy that ends TLS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else str(365 * 24 * 60 * 60)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Asking browsers to preload the domain binds every host under it for months and is hard to take back: that
# is for whoever owns the domain to decide (SECURE_HSTS_PRELOAD=1), not a default to be warned about.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Behind a proxy that ends TLS, the header it sets to say the request came over HTTPS; without it every
# request looks like plain HTTP and SECURE_SSL_REDIRECT would redirect for ever.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(os.environ.get("SECURE_PROXY_SSL_HEADER", ""))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "core",
    "inventory",
    "exceptions",
    "orders",
    "integrations",
    # Last, so its post_migrate hook runs after every app has created its permissions.
    "fulfillment",
]

MIDDLEWARE = [
    "fulfillment.middleware.LengthRequiredMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "fulfillment.middleware.SlashKeepingCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "fulfillment.middleware.ApiErrorsAsJsonUnderDebugMiddleware",
]

ROOT_URLCONF = "fulfillment.urls"
WSGI_APPLICATION = "fulfillment.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'portal.sqlite3'}",
        # Kept connections: a new PostgreSQL backend per request costs more than most requests' own queries.
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside one writer; IMMEDIATE makes every transaction
        # take the write lock at BEGIN, so concurrent writers wait (up to `timeout`)
        # instead of failing half-way with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/queues/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# Celery: Redis when REDIS_URL is set, otherwise the filesystem transport (no server).
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    _broker_dir = VAR_DIR / "celery" / "broker"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"  # kombu's default is ./control, in the working tree
    for _folder in (_broker_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
        # The worker looks again this often once it holds its prefetch of unacknowledged tasks (late acks);
        # kombu's 1 s would let it take two tasks a second whatever they cost.
        "polling_interval": 0.1,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")  # one per test worker, so runs do not mix
# At least once: a task is acknowledged after it ran, given back if its worker dies, and a worker takes one
# at a time, so a killed worker loses nothing it had not started.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sla-sweep": {"task": "exceptions.tasks.sla_sweep_task", "schedule": 60.0},
    "release-wave": {"task": "orders.tasks.release_wave_task", "schedule": 60.0},
    "idempotency-prune": {"task": "orders.tasks.idempotency_prune_task", "schedule": 3600.0},
    "outbox-sweep": {"task": "integrations.tasks.outbox_sweep_task", "schedule": 60.0},
    "availability-publish": {
        "task": "integrations.tasks.availability_publish_task",
        "schedule": float(os.environ.get("AVAILABILITY_WINDOW_SECONDS", "10")),
    },
    "wms-counts-pull": {"task": "integrations.tasks.wms_counts_pull_task", "schedule": 900.0},
    "invoice-watch": {"task": "integrations.tasks.invoice_watch_task", "schedule": 900.0},
    "replenish": {"task": "orders.tasks.replenish_task", "schedule": crontab(hour=2, minute=30)},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Integrations. Deliveries: 8 attempts, the waits doubling from about 2 minutes (about 4 hours in all, as
# Shopify retries); a post may take OUTBOX_TIMEOUT_SECONDS; a claimed delivery is tried again after the lease.
OUTBOX_MAX_ATTEMPTS = int(os.environ.get("OUTBOX_MAX_ATTEMPTS", "8"))
OUTBOX_BACKOFF_SECONDS = float(os.environ.get("OUTBOX_BACKOFF_SECONDS", "114"))
OUTBOX_TIMEOUT_SECONDS = float(os.environ.get("OUTBOX_TIMEOUT_SECONDS", "5"))
OUTBOX_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("OUTBOX_CONNECT_TIMEOUT_SECONDS", "2"))
OUTBOX_LEASE_SECONDS = float(os.environ.get("OUTBOX_LEASE_SECONDS", "60"))
OUTBOX_SHORT_WAIT_SECONDS = float(os.environ.get("OUTBOX_SHORT_WAIT_SECONDS", "300"))
INBOUND_SWEEP_AFTER_SECONDS = float(os.environ.get("INBOUND_SWEEP_AFTER_SECONDS", "60"))
WEBHOOK_MAX_BYTES = 1024 * 1024
# A shipment that left this long ago with no invoice from the ERP opens shipment_not_invoiced; the watch looks
# back INVOICE_WATCH_DAYS beyond that, so its query stays one window of shipments however long the history.
INVOICE_GRACE_HOURS = float(os.environ.get("INVOICE_GRACE_HOURS", "24"))
INVOICE_WATCH_DAYS = int(os.environ.get("INVOICE_WATCH_DAYS", "7"))
# Stock levels changed within this long before the last availability run are looked at again, for changes
# whose transaction committed after that run began.
AVAILABILITY_LOOKBACK_SECONDS = float(os.environ.get("AVAILABILITY_LOOKBACK_SECONDS", "60"))

# Replenishment: days of demand the daily mean and its deviation are measured over.
REPLENISHMENT_DEMAND_DAYS = int(os.environ.get("REPLENISHMENT_DEMAND_DAYS", "28"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.PartnerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "DEFAULT_THROTTLE_CLASSES": ["core.api.PartnerRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"partner": os.environ.get("PARTNER_THROTTLE_RATE", "600/min")},
    "EXCEPTION_HANDLER": "core.api.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "PAGE_SIZE": 50,
}
# The API refuses bodies above this before parsing them (413).
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(1024 * 1024)))
API_MAX_ORDER_LINES = 500

SPECTACULAR_SETTINGS = {
    "TITLE": "Fulfillment exception portal — partner API",
    "DESCRIPTION": (
        "Submit orders, follow them, cancel them or change their address, read availability, report warehouse "
        "events, and read the exceptions on your orders. Authenticate with `Authorization: Token <key>` "
        "(from `manage.py create_partner`). Errors always look like "
        '`{"error": {"code": "...", "message": "...", "fields": {...}}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.api.document_error_responses"],
}

# Shared by every process when Redis is there (throttling budgets, for one); local otherwise.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "demo")

# How often the queue page reloads its rows while nobody is typing in it.
QUEUE_REFRESH_SECONDS = int(os.environ.get("QUEUE_REFRESH_SECONDS", "30"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
