"""Settings, read from the environment (django-environ).

Defaults let a bare laptop run the demo: SQLite and a Celery broker on the local filesystem.
Production (docker-compose) sets DATABASE_URL, REDIS_URL and real keys.
"""

from pathlib import Path

import environ
from kombu import Queue

from connector.queues import KINDS as QUEUE_KINDS

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("CONNECTOR_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]", "testserver"]),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The default keys are for a laptop demo only (DEBUG=true): with DEBUG off, a system check error
# (connector.E001/E002) refuses them, and the placeholders of .env.example, at start.
INSECURE_DEFAULT_SECRET_KEY = "insecure-demo-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
# An empty value (as .env.example ships it) counts as unset: the demo key, refused in production.
SECRET_KEY = env.str("SECRET_KEY", default="") or INSECURE_DEFAULT_SECRET_KEY
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

# Secrets (tokens, API keys) are encrypted at rest with Fernet keys derived from SECRET_KEY and
# this salt (django-fernet-encrypted-fields). A comma-separated list allows rotation: the first
# entry encrypts, every entry decrypts.
INSECURE_DEFAULT_FIELD_ENCRYPTION_KEY = "demo-field-encryption-salt"
SALT_KEY = [k for k in env.list("FIELD_ENCRYPTION_KEY", default=[]) if k.strip()] or [
    INSECURE_DEFAULT_FIELD_ENCRYPTION_KEY
]

INSTALLED_APPS = [
    "connector.apps.ConnectorAdminConfig",  # django.contrib.admin with the overview
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "rest_framework",
    "drf_spectacular",
    "axes",
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
    # Last, as django-axes asks: locks out repeated failed admin logins.
    "axes.middleware.AxesMiddleware",
]
LOGIN_URL = "admin:login"

# --- Security (docs/security.md) -----------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed admin logins (django-axes): after AXES_FAILURE_LIMIT failures for one username from one
# address, that pair is locked out (HTTP 429) for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)

# HTTPS=true (production) turns on every HTTPS setting below; each can be set on its own too.
HTTPS = env.bool("HTTPS", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
# Paths answered over plain HTTP even with SSL redirect (e.g. an internal health probe).
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[])
# Behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https (only if
# the proxy always sets or strips that header).
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

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
    # Workers, beat and the web process share one SQLite file on a laptop. Set on every new
    # connection: WAL, so readers never block the writer (and the writer no reader); a busy
    # timeout, so a writer waits for the lock instead of failing; and IMMEDIATE transactions,
    # so a transaction takes the write lock when it begins rather than failing at once with
    # "database is locked" when a read would have to become a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;"
            "PRAGMA busy_timeout=20000",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-gb"
# Times to the second everywhere in the admin (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]
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
        # Seconds between looks at the queue folder (kombu's default is 1).
        "polling_interval": env.float("CELERY_FILESYSTEM_POLLING_INTERVAL", default=1.0),
    }
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
if not CELERY_BROKER_URL.startswith("filesystem://"):
    # A task not acknowledged within this time is redelivered to another worker: this is how
    # a task held by a lost host comes back. It must exceed the hard time limit plus the
    # longest broker countdown (120 s; longer delays live in the database and the dispatcher
    # queues them when due, connector/services/pending.py), or Redis would hand a running or
    # waiting task to a second worker (system check connector.E105). A lost host's merchants
    # do not wait for it: their leases lapse in RUN_LEASE_SECONDS and the dispatcher queues
    # their runs (docs/reliability.md). Default 15 min (it was 2 h).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int(
            "CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 3 * 60
        )
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Queues by kind (connector/queues.py): inbound events, syncs, bulk backlogs, housekeeping,
# each named "<default queue>.<kind>". A worker started without -Q consumes all of them (the
# demo, a laptop); production runs one worker service per kind (docs/deployment.md).
CELERY_TASK_ROUTES = ("connector.queues.route_task",)
CELERY_TASK_QUEUES = [
    Queue(name)
    for name in [
        CELERY_TASK_DEFAULT_QUEUE,
        *(f"{CELERY_TASK_DEFAULT_QUEUE}.{kind}" for kind in QUEUE_KINDS),
    ]
]
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
# Returns-platform API URLs other than each platform's public one (sandboxes), as origins
# ("http://127.0.0.1:8901"; a port of "*" allows any port of that host). Empty in production.
PLATFORM_URL_ALLOWLIST = env.list("PLATFORM_URL_ALLOWLIST", default=[])
# Requests per rolling minute per account, as the client budgets them: Brightpearl's documented
# 200; OAuth apps can be approved for more ("flexible rate limits"), and the chaos bench raises it
# to run 1,000 returns in minutes (the sandbox's own throttle still answers 503 past its budget).
BRIGHTPEARL_REQUESTS_PER_MINUTE = env.int("BRIGHTPEARL_REQUESTS_PER_MINUTE", default=200)
# Fair budget (issue #11): requests of each rolling minute that syncs and backlogs leave to
# webhook-driven work and staff actions (which may use the whole budget), and how many requests
# of the minute a sync may send at once before the rest of its share is spread over the minute
# (brightpearl/throttle.py). Bulk work uses at most (budget − reserve) / budget of the minute:
# 6 of 200 keeps 97 % (docs/benchmarks.md). A small sync (under the burst) is never slowed.
BRIGHTPEARL_RESERVED_FOR_INBOUND = env.int("BRIGHTPEARL_RESERVED_FOR_INBOUND", default=6)
BRIGHTPEARL_BULK_BURST = env.int("BRIGHTPEARL_BULK_BURST", default=100)
# Never sleep in a slot (issue #12): inside a Celery task (`never_sleep_for_budget`: syncs,
# inbound events, backfills) a client waits at most this long (seconds) for its account's
# request budget; a longer wait raises BudgetSpent before anything is sent, the work in hand is
# put back as it was (connector/services/exactly_once.py), and the task re-queues itself for
# when the throttle says the budget is back. 2 s: the throttle's own short waits (pacing when
# few requests remain, the tail of a rolling window) are slept — cheaper than a re-queue, a new
# task and a new run; a spent minute or a 503's pause (tens of seconds) frees the slot for
# another merchant. Web requests and management commands are not tasks: they wait as before.
# "off" (or empty): tasks wait in their slot too, as before issue #12.
_max_block = env.str("BRIGHTPEARL_MAX_BLOCK_SECONDS", default="2").strip().lower()
BRIGHTPEARL_MAX_BLOCK_SECONDS = None if _max_block in ("", "off", "none") else float(_max_block)
# Public base URL of this service, used to build the webhook URIs registered in Brightpearl.
# No default in production: a system check (connector.E101) refuses a missing or loopback URL
# while webhooks are enabled; in development (DEBUG) the local web server is assumed.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000" if DEBUG else "")
# Brightpearl's own page for an order or a sales credit (both open on the same page), linked from
# the RMA timeline. Not in Brightpearl's API docs: the pattern its web app shows in the address
# bar; set it empty to show no links, or to another pattern ({datacentre}, {account}, {id}).
BRIGHTPEARL_UI_ORDER_URL = env.str(
    "BRIGHTPEARL_UI_ORDER_URL",
    default="https://{datacentre}.brightpearlapp.com/patt-op.php?scode=invoice&oID={id}",
)
# Alert webhooks (Slack incoming webhooks and the like) must be https on a public host; other
# origins only when listed here (as PLATFORM_URL_ALLOWLIST: "http://127.0.0.1:8902", port "*").
ALERT_WEBHOOK_URL_ALLOWLIST = env.list("ALERT_WEBHOOK_URL_ALLOWLIST", default=[])
# Alert e-mails: Django's mail settings from one URL (smtp://user:pass@host:587, consolemail://).
vars().update(
    env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="returns-connector@localhost")
# Brightpearl webhooks (subscriptions pointing at PUBLIC_BASE_URL); off = polling only.
WEBHOOKS_ENABLED = env.bool("WEBHOOKS_ENABLED", default=True)

# How long a write to Brightpearl (credit or payment POST) whose answer we did not get may still
# be executing there: no second write of that record is sent before this has passed since the
# first was sent, whoever sent it. Must exceed BRIGHTPEARL_TIMEOUT plus Brightpearl's slowest
# answer (a system check refuses less than the timeout + 60 s). 120 s: four times the client's
# 30 s timeout, twice the 60 s after which common gateways cut a request; a lost host's
# in-flight credit is then retried within ~2 minutes of the kill (docs/reliability.md F6).
CREDIT_ATTEMPT_LEASE_SECONDS = env.int("CREDIT_ATTEMPT_LEASE_SECONDS", default=120)

# Brightpearl reference data (locations, payment methods) is cached per account this long.
REFERENCE_DATA_TTL_SECONDS = env.int("REFERENCE_DATA_TTL_SECONDS", default=3600)
# Per platform kind: (calls, seconds) instead of the registry's documented limit (a key with a
# raised limit; tests use short windows). The client paces below it and waits 429s out.
PLATFORM_RATE_LIMITS: dict[str, tuple[int, float]] = {}
# Per platform kind: minutes between safety-net list polls while the platform's webhooks are
# arriving, instead of the registry's `webhook_poll_minutes` (connector/services/poll_cadence.py).
PLATFORM_WEBHOOK_POLL_MINUTES: dict[str, int] = env.dict(
    "PLATFORM_WEBHOOK_POLL_MINUTES", cast={"value": int}, default={}
)

# A sync run's lease on its connection: renewed every third of this while the run is alive, so
# a run whose worker (or host) died frees the connection within this time (issue #12: "within
# ~1 minute"; bench/multi_merchant.py --kill-after measures the whole recovery).
RUN_LEASE_SECONDS = env.int("RUN_LEASE_SECONDS", default=60)
# An intake/webhook sync task queued but not started after this long (its message was lost,
# e.g. with a dead host's prefetch) is replaced by the dispatcher (connector/services/pending.py).
# A task merely waiting in a busy queue that long gets a twin: harmless (the run lease lets one
# run at a time; the other ends at once, counted "skipped", unrecorded).
SYNC_PENDING_STALE_SECONDS = env.int("SYNC_PENDING_STALE_SECONDS", default=90)
# A sync on the inbound queue (asked for by an intake POST) begins no new unit of work (a credit,
# a payment; one begun runs to its end) after this long: the rest goes on in a follow-up on the
# bulk queue, so one merchant's backlog never holds the inbound slots kept for webhooks and new
# returns (0 or less: no limit).
INBOUND_SYNC_TURN_SECONDS = env.float("INBOUND_SYNC_TURN_SECONDS", default=30.0)

# Inbound webhooks larger than this are refused (413) and recorded.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)
# Seconds a web process keeps the connection a webhook URL names (connector/webhooks/routes.py):
# disabling a connection or rotating its webhook secret reaches every process within this.
WEBHOOK_ROUTE_CACHE_SECONDS = env.float("WEBHOOK_ROUTE_CACHE_SECONDS", default=5.0)
# Seconds a web process trusts that its connection's drain is pending once it saw the wake-up
# marker raised, without asking Redis (connector/services/inbound_wakeup.py); every drain ends
# with a read this long after it started. 0: ask on every delivery (and with tasks run
# eagerly, where the drain runs inside the delivery).
INBOUND_WAKEUP_MEMO_SECONDS = env.float(
    "INBOUND_WAKEUP_MEMO_SECONDS", default=0.0 if CELERY_TASK_ALWAYS_EAGER else 0.1
)
# Inbound events (connector/models/webhooks.py): claims per event before it ends failed; how
# long a claim lasts unrenewed (a heartbeat renews it every third of that while the event is
# processed, so a lost host's events go again within it); how long a due event may wait for its
# task before housekeeping dispatches it again.
INBOUND_EVENT_MAX_ATTEMPTS = env.int("INBOUND_EVENT_MAX_ATTEMPTS", default=6)
INBOUND_EVENT_LEASE_SECONDS = env.int("INBOUND_EVENT_LEASE_SECONDS", default=90)
INBOUND_EVENT_STUCK_AFTER_SECONDS = env.int("INBOUND_EVENT_STUCK_AFTER_SECONDS", default=60)

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

RETURNS_CONNECTION_MODEL = "connector.Connection"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
