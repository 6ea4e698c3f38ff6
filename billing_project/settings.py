"""Tally settings. Everything that differs between machines comes from the environment.

Fail closed: with ``DEBUG`` off the process refuses to start without ``SECRET_KEY`` and ``ALLOWED_HOSTS``,
and without ``DATABASE_URL`` / ``REDIS_URL`` unless the embedded development servers were asked for with
``TALLY_EMBEDDED=1`` (``make run``, ``make test`` and ``make bench`` set it; see core/embedded.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from billing_project.core.api.openapi_tags import TAGS as OPENAPI_TAGS

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    """A yes/no variable; unset or empty is the default, anything but 1/true/yes/on or 0/false/no/off is
    refused (a typo never turns a security switch off)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name}={os.environ[name]!r} is not a yes/no value: use 1/true/yes/on or "
                                   f"0/false/no/off")
    return value in _TRUE


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# --- core -------------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
# The embedded PostgreSQL/Redis under DATA_DIR are used only when asked for (make run / test / bench).
TALLY_EMBEDDED = env_bool("TALLY_EMBEDDED", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "").strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off Tally needs a long random secret (it signs sessions and "
            "CSRF tokens), e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'. "
            "(make run keeps one in DATA_DIR/secret_key.)"
        )
    SECRET_KEY = "dev-insecure-debug-only-tally-0123456789abcdefghijklmnopqrstuv"

# No '*' default: the Host header ends up in absolute URLs (pagination Link headers), so only the names
# listed here are answered; any other Host gets a 400.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS and not DEBUG:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set. With DEBUG off list the host names clients use to reach Tally, "
        "comma-separated (e.g. billing.example.com,billing.internal); requests for any other Host are refused."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- security (HTTPS) -------------------------------------------------------------------------------
# Session and CSRF cookies only over HTTPS unless DEBUG (make run and make test, plain HTTP on loopback,
# set SECURE_COOKIES=0). HSTS, the HTTPS redirect and trusting a proxy's scheme header depend on where TLS
# ends, so they are opt-in; `manage.py check --deploy` reports any left off.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)


def _proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """``X-Forwarded-Proto`` (means ``=https``) or ``Header-Name=value`` -> Django's (META key, value)."""
    value = value.strip()
    if not value:
        return None
    name, _, expected = value.partition("=")
    name, expected = name.strip(), expected.strip() or "https"
    if not name or any(c.isspace() for c in name):
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER={value!r}: expected a header name such as "
                                   f"X-Forwarded-Proto, optionally =value (default https)")
    return "HTTP_" + name.upper().replace("-", "_"), expected


# Only behind a proxy that sets this header itself (and strips it from clients' requests).
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(os.environ.get("SECURE_PROXY_SSL_HEADER", ""))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets, served from our own static files (no CDN)
    "billing_project.core",
    "webhooks",
    "ledger",
    "invoicing",
    "payments",
    "subscriptions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "billing_project.core.api.guards.ApiRequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "billing_project.core.api.idempotency.IdempotencyMiddleware",
]
APPEND_SLASH = False
CSRF_FAILURE_VIEW = "billing_project.core.api.errors.csrf_failure"
# The largest request body read into memory (a 100-event meter batch or a 500-line invoice is far below it);
# a larger one is 413 in the one error shape.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440))

ROOT_URLCONF = "billing_project.urls"
WSGI_APPLICATION = "billing_project.wsgi.application"

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

# --- database ---------------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if not DATABASE_URL:
    if not TALLY_EMBEDDED:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set. Point it at PostgreSQL (postgres://user:password@host:5432/tally), or "
            "set TALLY_EMBEDDED=1 to use the embedded development PostgreSQL under DATA_DIR "
            "(make run and make test do)."
        )
    from billing_project.core.embedded import embedded_database_url

    DATABASE_URL = embedded_database_url()
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        # A health check costs one extra round trip per request; broken connections are discarded on
        # error anyway. Turn it on for poolers that drop idle connections.
        conn_health_checks=env_bool("CONN_HEALTH_CHECKS", False),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis / celery ---------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if not REDIS_URL:
    if not TALLY_EMBEDDED:
        raise ImproperlyConfigured(
            "REDIS_URL is not set. Point it at Redis (redis://host:6379/0), or set TALLY_EMBEDDED=1 to use "
            "the embedded development Redis that make run starts."
        )
    from billing_project.core.embedded import embedded_redis_url

    REDIS_URL = embedded_redis_url()
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- payouts (issue 11, package methods) -----------------------------------------------------------
# A pending payout is moved on by the beat task (funds checked, then in transit → paid) once it is this old:
# the window in which it can still be canceled.
PAYOUT_PROCESS_AFTER_SECONDS = int(os.environ.get("PAYOUT_PROCESS_AFTER_SECONDS", "600"))

# --- stall (issue 10 §3): stored files, PDF limits, Celery pool ----------------------------------
# Uploaded/generated files (invoice PDFs) on the default storage, under DATA_DIR unless MEDIA_ROOT is set.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or Path(os.environ.get("DATA_DIR", BASE_DIR / ".data")) / "media")
MEDIA_URL = "media/"  # never served by Django: files go out through views that check the tenant
# A PDF rendered inside a web request (a draft's preview, or a finalized invoice not stored yet): at most
# this many line items (422 beyond), this many seconds in a killable child process, one per organization
# at a time (429). Keep INVOICE_PDF_TIME_LIMIT well under gunicorn's --timeout (GUNICORN_TIMEOUT, 30 s).
INVOICE_PDF_MAX_LINES = int(os.environ.get("INVOICE_PDF_MAX_LINES", "1000"))
INVOICE_PDF_TIME_LIMIT = float(os.environ.get("INVOICE_PDF_TIME_LIMIT", "15"))
# The worker runs the prefork pool (Procfile) so task time limits are enforced by killing the child;
# recycle children now and then (WeasyPrint's caches grow).
CELERY_WORKER_MAX_TASKS_PER_CHILD = int(os.environ.get("CELERY_WORKER_MAX_TASKS_PER_CHILD", "500"))
# --- end stall -----------------------------------------------------------------------------------

# --- webhooks (issue 13) ------------------------------------------------------------------------------
# Deliveries to private, loopback and link-local addresses are refused (SSRF) unless this is on, or the
# organization is in test mode. On with the embedded servers (make run, make test), off by default in production.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", TALLY_EMBEDDED)

# --- i18n / time ------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / ".data" / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- API --------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["billing_project.core.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["billing_project.core.api.auth.HasAdminScope"],
    "DEFAULT_RENDERER_CLASSES": ["billing_project.core.api.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["billing_project.core.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "billing_project.core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tally billing API",
    "DESCRIPTION": "Usage metering, prepaid credits, invoicing, subscriptions and payments on one "
    "double-entry ledger. Amounts are integers in the currency's minor unit.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files: /api/docs/ works without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Operations grouped by tag (from the path) with the shared error responses: billing_project/core/api/schema.py.
    "TAGS": OPENAPI_TAGS,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "billing_project.core.api.schema.postprocess_tags_and_errors",
    ],
}

# --- billing ----------------------------------------------------------------------------------------
# Whether new customer wallets may be overdrawn by usage (the original never checks; an explicit,
# per-account property here, editable in the admin).
LEDGER_USAGE_MAY_OVERDRAW = env_bool("LEDGER_USAGE_MAY_OVERDRAW", True)
IDEMPOTENCY_KEY_TTL_HOURS = int(os.environ.get("IDEMPOTENCY_KEY_TTL_HOURS", "24"))
# An in-flight idempotency record older than this is taken to belong to a crashed request.
IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS = int(os.environ.get("IDEMPOTENCY_IN_FLIGHT_TIMEOUT_SECONDS", "60"))
DEFAULT_HOLD_EXPIRY_SECONDS = int(os.environ.get("DEFAULT_HOLD_EXPIRY_SECONDS", str(7 * 24 * 3600)))
# Payments: the processors this deployment offers (name → dotted class path; the built-in "sandbox" is always
# there; env PAYMENTS_PROCESSORS="name=dotted.Path,…"), the default one (a registered name or a dotted path;
# an organization may choose another in the admin) and how long a processor attempt may stay pending before
# the sweeper asks the processor what became of it (must exceed the call timeout).
PAYMENTS_PROCESSORS = {
    "sandbox": "payments.processors.sandbox.SandboxProcessor",
    **{name.strip(): path.strip() for name, _, path in
       (item.partition("=") for item in os.environ.get("PAYMENTS_PROCESSORS", "").split(",") if "=" in item)},
}
PAYMENTS_PROCESSOR = os.environ.get("PAYMENTS_PROCESSOR", "sandbox")
PAYMENTS_RECONCILE_AFTER_SECONDS = env_int("PAYMENTS_RECONCILE_AFTER_SECONDS", 300)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
