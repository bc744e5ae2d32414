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

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
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
# Requests per rolling minute per account, as the client budgets them: Brightpearl's documented
# 200; OAuth apps can be approved for more ("flexible rate limits"), and the chaos bench raises it
# to run 1,000 returns in minutes (the sandbox's own throttle still answers 503 past its budget).
BRIGHTPEARL_REQUESTS_PER_MINUTE = env.int("BRIGHTPEARL_REQUESTS_PER_MINUTE", default=200)
# Public base URL of this service, used to build the webhook URIs registered in Brightpearl.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "connector.logging.RedactWebhookSecrets"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The web server's access log shows request paths: webhook paths carry a secret.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
RETURNS_CONNECTION_MODEL = "connector.Connection"
