"""The one settings module: everything that varies between machines comes from the environment.

Defaults give a working local run with no server processes besides the app itself: a SQLite file
in WAL mode and Celery's filesystem transport, both under the data folder. Production points
`DATABASE_URL` at PostgreSQL and `CELERY_BROKER_URL` at Redis (or RabbitMQ).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import Env

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env.path("HISTOTURING_DATA_DIR", BASE_DIR / "data")

DEBUG = env.boolean("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; for a local (DEBUG) run, generated once and kept."""
    configured = env.string("SECRET_KEY")
    if configured:
        if len(configured) < 32:
            raise ImproperlyConfigured("SECRET_KEY is too short: use at least 32 random characters")
        return configured
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off: set SECRET_KEY, or DEBUG=1 for a local run "
            "(which keeps a generated key in the data folder)"
        )
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():  # the one thing importing these settings may write, and only under DEBUG
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.items("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.apps.HistoturingAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "csp",
    "core",
    "gan",
    "turing",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.csp_everywhere",  # after django-csp on the way out: error pages get the policy too
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "core.context_processors.roles",
            ],
        },
    },
]


# --- Database -------------------------------------------------------------------------------------
def _database() -> dict[str, Any]:
    default_url = f"sqlite:///{DATA_DIR / 'histoturing.sqlite3'}"
    url = env.string("DATABASE_URL", default_url)
    assert url is not None
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(url))
    except Exception as exc:  # the parser raises several types; all mean the same thing here
        raise ImproperlyConfigured(f"DATABASE_URL could not be parsed: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine == "django.db.backends.sqlite3":
        name = str(config.get("NAME") or "")
        if not name or name == ":memory:":
            raise ImproperlyConfigured("DATABASE_URL must name a SQLite file: worker and web share it")
        # WAL lets the web server read while the worker writes; IMMEDIATE transactions take the
        # write lock up front, so concurrent writers wait (timeout) instead of failing mid-way.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        # The test database must be a file too, so that the test suite's Celery worker sees it.
        config["TEST"] = {"NAME": str(Path(name).with_name(Path(name).stem + "-test.sqlite3"))}
    elif engine == "django.db.backends.postgresql":
        # Persistent connections, checked before reuse, so a restarted PostgreSQL is reconnected
        # to instead of failing every request that holds a stale connection.
        config["CONN_MAX_AGE"] = env.integer("DATABASE_CONN_MAX_AGE", 60, minimum=0)
        config["CONN_HEALTH_CHECKS"] = True
    else:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme for {engine!r} is not supported: use sqlite or postgres"
        )
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth and sessions ----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Readers have no time limit: a session lasts 60 days, renewed whenever a reader opens a page (not
# on every API call, which would cost a database write per answer).
SESSION_COOKIE_AGE = env.integer("SESSION_COOKIE_AGE", 60 * 24 * 3600, minimum=300)

# --- Security (production values whenever DEBUG is off) ---------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.boolean("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env.boolean("CSRF_COOKIE_SECURE", not DEBUG)
# Production (DEBUG off) redirects to HTTPS and sends HSTS for a year unless told otherwise; preloading
# commits the whole domain, so it is an explicit choice (SECURE_HSTS_PRELOAD=1).
SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# No inline script anywhere (every script is a static module); inline styles are allowed for the
# server-drawn SVG charts, whose matplotlib output styles its elements inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# Failed logins: per client address, LOGIN_FAILURE_LIMIT in the window, then a pause; per account,
# LOGIN_FREE_FAILURES free, then a wait that doubles with each failure up to LOGIN_DELAY_MAX_S.
LOGIN_FAILURE_LIMIT = env.integer("LOGIN_FAILURE_LIMIT", 10, minimum=1)
LOGIN_FREE_FAILURES = env.integer("LOGIN_FREE_FAILURES", 5, minimum=1)
LOGIN_DELAY_MAX_S = env.integer("LOGIN_DELAY_MAX_S", 60, minimum=1)
LOGIN_FAILURE_WINDOW_S = env.integer("LOGIN_FAILURE_WINDOW_S", 15 * 60, minimum=10)
if env.boolean("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- I18N, static and media -------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.string("TIME_ZONE", "UTC") or "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# The folders a process needs, made when Django starts (core.apps), not on importing these settings:
# tools import them too (mypy's Django plugin, `manage.py check` in a read-only checkout).
DATA_FOLDERS = [DATA_DIR, STATIC_ROOT]
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG

# Media is never served by URL: patch images reach browsers only through views that check access
# and (for experts) blinded tokens. Hence no MEDIA_URL route.
MEDIA_ROOT = env.path("MEDIA_ROOT", DATA_DIR / "media")


# Where media lives: the local folder (the embedded default), or an S3-compatible object store (AWS S3,
# MinIO, Ceph) through django-storages, so that a worker on another host shares nothing with the web
# host but the database, the broker and the store. Every read and write of a patch, pack, checkpoint,
# grid or sample goes through Django's storage API; no code takes a local path of a stored file.
def media_storage(env: Env) -> dict[str, Any]:
    """The default storage's entry of STORAGES, from the environment `env` reads."""
    if env.choice("MEDIA_STORAGE", "filesystem", ("filesystem", "s3")) == "filesystem":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    bucket = env.string("AWS_STORAGE_BUCKET_NAME")
    if not bucket:
        raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME (the bucket's name)")
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": env.string("AWS_LOCATION", "") or "",  # a prefix inside the bucket
        "region_name": env.string("AWS_S3_REGION_NAME") or None,
        # A MinIO or Ceph server, or a test server on the loopback; empty: AWS itself.
        "endpoint_url": env.string("AWS_S3_ENDPOINT_URL") or None,
        "addressing_style": env.choice("AWS_S3_ADDRESSING_STYLE", "auto", ("auto", "path", "virtual")),
        # Credentials: these variables, or (unset) boto3's own chain (instance role, ~/.aws, ...).
        "access_key": env.string("AWS_ACCESS_KEY_ID") or None,
        "secret_key": env.string("AWS_SECRET_ACCESS_KEY") or None,
        # Nothing is ever public: no ACL is set (the bucket's own policy applies, which should deny
        # anonymous reads), and a URL, were one ever made, would be signed and short-lived. No URL of
        # the store reaches a browser: the site serves every image itself (#28, docs/threat-model.md).
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": 300,
        # Names are content hashes or carry their step: an object written again has the same bytes.
        "file_overwrite": True,
        # A read is spooled to memory up to this size, to a temporary file beyond it.
        "max_memory_size": 32 * 1024 * 1024,
        "object_parameters": {"CacheControl": "private, no-store"},
    }
    return {"BACKEND": "core.storage.MediaS3Storage", "OPTIONS": options}


MEDIA_STORAGE = env.choice("MEDIA_STORAGE", "filesystem", ("filesystem", "s3"))
STORAGES = {
    "default": media_storage(env),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A worker's local copies of what it reads from storage (training packs, checkpoints), keyed by their
# content hash and bounded in size: the least recently used go first.
WORKER_CACHE_DIR = env.path("WORKER_CACHE_DIR", DATA_DIR / "cache")
WORKER_CACHE_MAX_BYTES = env.integer("WORKER_CACHE_MAX_MB", 50 * 1024, minimum=1) * 1024**2
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Celery -------------------------------------------------------------------------------------
_BROKER_SCHEMES = ("filesystem", "redis", "rediss", "amqp", "amqps", "pyamqp", "memory")


def _broker_url() -> str:
    url = env.string("CELERY_BROKER_URL", "filesystem://")
    assert url is not None
    scheme = urlsplit(url).scheme
    if scheme not in _BROKER_SCHEMES:
        raise ImproperlyConfigured(
            f"CELERY_BROKER_URL scheme {scheme!r} is not supported: use one of {', '.join(_BROKER_SCHEMES)}"
        )
    return url


CELERY_BROKER_URL = _broker_url()
BROKER_FOLDER = DATA_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: messages are files in one folder that producers and workers share.
    DATA_FOLDERS.append(BROKER_FOLDER / "queue")
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        # Exchange tables: under the data folder too, not in whatever folder a process started in.
        "control_folder": str(BROKER_FOLDER / "control"),
        "store_processed": False,
    }
else:
    # Unacknowledged long tasks come back only after this many seconds; recovery of runs whose
    # worker died is done sooner by the workers themselves (core.signals starts the recovery loop,
    # core.services.jobs_recover_orphans does the work).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.integer("CELERY_VISIBILITY_TIMEOUT", 12 * 3600, minimum=60)
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker outlives a broker outage of any length: it keeps reconnecting rather than exiting.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A running job goes on through a broker outage (its state and heartbeat live in the database); a
# message delivered again later finds the job claimed or ended and does nothing (core.jobs).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Job state, progress and results live in our own tables (core.Job), which pages read.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SOFT_TIME_LIMIT = env.integer("CELERY_TASK_SOFT_TIME_LIMIT", 3600, minimum=10)
CELERY_TASK_TIME_LIMIT = env.integer("CELERY_TASK_TIME_LIMIT", 3900, minimum=10)
GPU_TASK_SOFT_TIME_LIMIT = env.integer("GPU_TASK_SOFT_TIME_LIMIT", 7 * 24 * 3600, minimum=10)
GPU_TASK_TIME_LIMIT = env.integer("GPU_TASK_TIME_LIMIT", 7 * 24 * 3600 + 600, minimum=10)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A job whose heartbeat is older than this is taken as orphaned by a dead worker.
JOB_HEARTBEAT_TIMEOUT_S = env.integer("JOB_HEARTBEAT_TIMEOUT_S", 120, minimum=5)
# A job queued this long whose broker queue has fewer messages than queued jobs is sent again.
JOB_RESEND_AFTER_S = env.integer("JOB_RESEND_AFTER_S", 300, minimum=1)

# --- Data paths -----------------------------------------------------------------------------------
# Folders that a study manager may import from by path on the server (uploads are also accepted).
IMPORT_ROOT = env.path("IMPORT_ROOT", DATA_DIR / "imports")
DOWNLOAD_DIR = env.path("DOWNLOAD_DIR", DATA_DIR / "downloads")
ZENODO_RECORD_URL = env.string("ZENODO_RECORD_URL", "https://zenodo.org/api/records/1214456")
# The standard FID weights (Inception-v3, 2015-12-05); a local copy for machines without internet.
FID_WEIGHTS_PATH = env.path(
    "FID_WEIGHTS_PATH", DATA_DIR / "weights" / "weights-inception-2015-12-05-6726825d.pth"
)
# The study builder's default equivalence margin (in AUC) for new studies. Each study stores its own
# margin and alpha when it is built (frozen at its first answer): changing this never rewrites a verdict.
DEFAULT_EQUIVALENCE_MARGIN = env.number("DEFAULT_EQUIVALENCE_MARGIN", 0.10, minimum=0.01)
# How often one reader may fetch one item's image in a window before every item answers 429: a
# reading page fetches each image once or twice (preload, show); the browser caches it for a day.
ITEM_IMAGE_FETCH_LIMIT = env.integer("ITEM_IMAGE_FETCH_LIMIT", 30, minimum=2)
ITEM_IMAGE_FETCH_WINDOW_S = env.integer("ITEM_IMAGE_FETCH_WINDOW_S", 3600, minimum=1)
# Images larger than this (pixels) are refused before decoding (decompression bombs).
IMPORT_MAX_PIXELS = env.integer("IMPORT_MAX_PIXELS", 4096 * 4096, minimum=128 * 128)

# --- E-mail (invitations) ---------------------------------------------------------------------
# SMTP from the environment in production; a local run (DEBUG) prints each message, invitation links
# included, on the web server's console unless EMAIL_BACKEND says otherwise.
EMAIL_BACKEND = env.string(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.string("EMAIL_HOST", "localhost")
EMAIL_PORT = env.integer("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env.string("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.string("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.boolean("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env.string("DEFAULT_FROM_EMAIL", "histoturing <noreply@localhost>")
# The address invitation links point at (e.g. https://turing.example.org); empty: the address the
# study manager's browser used.
SITE_URL = env.string("SITE_URL", "")
# How long an invitation link may be used (once).
INVITATION_VALID_DAYS = env.integer("INVITATION_VALID_DAYS", 14, minimum=1)

# --- REST framework -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's defaults, with a JSON parser that refuses a body nested too deeply (a 400, not a 500).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "histoturing API",
    "DESCRIPTION": "Blinded visual Turing test of synthetic histopathology patches.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.string("LOG_LEVEL", "INFO")},
}
