"""Settings, read from the environment (django-environ).

Defaults let a bare laptop run the demo: SQLite and a Celery broker on the local filesystem.
Production (docker-compose) sets DATABASE_URL, REDIS_URL and real keys.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("CONNECTOR_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]", "testserver"]),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The default key is for a laptop demo only; a system check refuses it when DEBUG is off.
INSECURE_DEFAULT_SECRET_KEY = "insecure-demo-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_DEFAULT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

# Secrets (tokens, API keys) are encrypted at rest with Fernet keys derived from SECRET_KEY and
# this salt (django-fernet-encrypted-fields). A comma-separated list allows rotation: the first
# entry encrypts, every entry decrypts.
SALT_KEY = env.list("FIELD_ENCRYPTION_KEY", default=["demo-field-encryption-salt"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "rest_framework",
    "drf_spectacular",
    "returns",
    "connector",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
LOGIN_URL = "admin:login"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Workers, beat and the web process share one SQLite file in the demo: wait for locks.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Redis, Celery -------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

# "localhost" only names the filesystem broker: without it kombu warns in every log.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery-broker"
    (_queue_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
else:
    # A task not acknowledged within this time is redelivered. It must exceed the longest
    # countdown we schedule (retry backoff cap) plus the hard time limit, or Redis would
    # hand a delayed task to a second worker while the first still holds it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_TASK_RETRY_BACKOFF_MAX = env.int("CELERY_TASK_RETRY_BACKOFF_MAX", default=30 * 60)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=10 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=12 * 60)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Connector -----------------------------------------------------------------------------
# Template for the Brightpearl API base URL; {datacentre} and {account} are filled per connection.
BRIGHTPEARL_API_URL = env.str(
    "BRIGHTPEARL_API_URL",
    default="https://{datacentre}.brightpearlconnect.com/public-api/{account}",
)
# OAuth token endpoint; Brightpearl's docs name several, so it is configurable.
BRIGHTPEARL_OAUTH_TOKEN_URL = env.str(
    "BRIGHTPEARL_OAUTH_TOKEN_URL", default="https://oauth.brightpearl.com/token/{account}"
)
BRIGHTPEARL_TIMEOUT = env.float("BRIGHTPEARL_TIMEOUT", default=30.0)
# Public base URL of this service, used to build the webhook URIs registered in Brightpearl.
# No default in production: a system check (connector.E101) refuses a missing or loopback URL
# while webhooks are enabled; in development (DEBUG) the local web server is assumed.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000" if DEBUG else "")
# Brightpearl webhooks (subscriptions pointing at PUBLIC_BASE_URL); off = polling only.
WEBHOOKS_ENABLED = env.bool("WEBHOOKS_ENABLED", default=True)

# How long a sales-credit POST of a crashed worker may still be in flight at Brightpearl.
CREDIT_ATTEMPT_LEASE_SECONDS = env.int("CREDIT_ATTEMPT_LEASE_SECONDS", default=120)

# Inbound webhooks larger than this are refused (413) and recorded.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)

# Sync logs: successful/skipped runs are pruned after this many days, failures kept longer.
SYNC_LOG_KEEP_DAYS = env.int("SYNC_LOG_KEEP_DAYS", default=14)
SYNC_LOG_KEEP_FAILED_DAYS = env.int("SYNC_LOG_KEEP_FAILED_DAYS", default=90)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Returns ↔ Brightpearl connector: generic intake API",
    "VERSION": "1.0.0",
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
RETURNS_CONNECTION_MODEL = "connector.Connection"

# === Production path: static files, cache, health, metrics, logging ========================
# (issue #14; kept in one block so it merges cleanly)

# Static files are served by the web process itself (WhiteNoise), also behind gunicorn with
# DEBUG off. The image runs `collectstatic` at build time with STATIC_MANIFEST=true: hashed,
# compressed files cached forever. Without a collected manifest (laptop, tests) WhiteNoise
# serves straight from the apps' static folders.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "whitenoise.middleware.WhiteNoiseMiddleware",
)
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=(STATIC_ROOT / "staticfiles.json").exists())
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing one
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

INSTALLED_APPS += ["health_check"]  # its HTML status page template

# One cache shared by every process: Redis in production, files under var/ on a laptop. It
# holds beat's heartbeat and the metrics counters (see connector/metrics.py).
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    )
}
CACHES["default"]["KEY_PREFIX"] = env.str("CACHE_KEY_PREFIX", default="connector")

# Beat records a heartbeat on every tick (connector.beat.HeartbeatScheduler); the health
# endpoint calls beat dead when the heartbeat is older than this.
CELERY_BEAT_SCHEDULER = "connector.beat.HeartbeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
HEALTH_BEAT_MAX_AGE_SECONDS = env.int("HEALTH_BEAT_MAX_AGE_SECONDS", default=60)
# A connection whose last successful sync is older than this many sync intervals (and at
# least HEALTH_SYNC_MIN_AGE_SECONDS) makes /health/ report an error.
HEALTH_SYNC_MAX_INTERVALS = env.int("HEALTH_SYNC_MAX_INTERVALS", default=4)
HEALTH_SYNC_MIN_AGE_SECONDS = env.int("HEALTH_SYNC_MIN_AGE_SECONDS", default=15 * 60)
# /metrics is open to whoever reaches it unless a bearer token is set (then required).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# Some checks are deliberately silenced in tests that run against local sandboxes.
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

# Logs: JSON lines in production (one object per line with the connection, RMA, run and
# Brightpearl request ID as fields), a readable line with the same context in development.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "connector.logging.RedactWebhookSecrets"},
        "context": {"()": "connector.logging.AddLogContext"},
    },
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context_suffix)s",
        },
        "json": {
            "()": "connector.logging.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(connection)s %(rma)s "
            "%(run)s %(brightpearl_request_id)s %(task)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["redact_secrets", "context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # A failing check is in the health response; no traceback per probe in the log.
        "health_check": {"level": "ERROR"},
        # The web server's access log shows request paths: webhook paths carry a secret.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Celery installs its own handlers on these; ours (with the context) replace them.
        "celery": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
