"""Settings for the painting migration console.

Everything comes from the environment (see the README's configuration
section). The defaults run on a fresh machine against the embedded services
started by ``bin/local-mongo``, ``bin/local-images`` and ``bin/local-pds``.
"""

import os
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet

from config.env import (
    PROBLEMS,
    _report,
    env_addresses,
    env_bool,
    env_choice,
    env_fernet_keys,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
    generated_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
SECRET_KEY_FROM_ENVIRONMENT = bool(SECRET_KEY)  # `check --deploy` insists on it
if not SECRET_KEY:
    if not DEBUG and env_bool("REQUIRE_SECRET_KEY", False):
        _report("SECRET_KEY", "SECRET_KEY is not set.", "Set SECRET_KEY to a long random string.")
    # A development key, derived per checkout so that none is committed.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

# The keys that encrypt what the console stores that opens an account (its
# passwords and sessions: migrator.crypto). Not SECRET_KEY, so that rotating
# Django's key loses no session. Comma-separated Fernet keys: the first
# encrypts, all decrypt. Unset: one generated into VAR_DIR, as SECRET_KEY is
# (`check --deploy` insists on the environment in production, where every
# machine must share the key and it is backed up apart from the database).
SECRETS_ENCRYPTION_KEYS = env_fernet_keys("SECRETS_ENCRYPTION_KEYS")
SECRETS_ENCRYPTION_KEYS_FROM_ENVIRONMENT = bool(SECRETS_ENCRYPTION_KEYS)
if not SECRETS_ENCRYPTION_KEYS:
    SECRETS_ENCRYPTION_KEYS = [generated_key(VAR_DIR / "secrets_key", lambda: Fernet.generate_key().decode())]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ("127.0.0.1", "localhost", "testserver"))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Behind a TLS-terminating proxy in production: secure cookies, HSTS and a
# redirect to https (the proxy says X-Forwarded-Proto: https).
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 3600, minimum=0)
    # An uptime monitor inside the network may poll plain http; /health shows no secret.
    SECURE_REDIRECT_EXEMPT = [r"^health$"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "migrator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The admin's static files, served by the application itself (bin/serve
    # runs collectstatic first): hashed names cached for a year, gzip and
    # Brotli copies made once at collectstatic, not per request.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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

# --- Databases -------------------------------------------------------------
# The migration state table lives in the project's own database: SQLite by
# default, PostgreSQL when DATABASE_URL points at one.
DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'console.sqlite3'}"
DATABASE_URL = env_url("DATABASE_URL", DEFAULT_DATABASE_URL, schemes=("sqlite", "postgres", "postgresql"))
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the console, the command and the workers
    # share one SQLite file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The source of truth: aesthetic.computer's MongoDB, reached only through
# migrator.source.
MONGODB_URI = env_url("MONGODB_URI", "mongodb://127.0.0.1:27017/", schemes=("mongodb", "mongodb+srv"))
MONGODB_DB = env_str("MONGODB_DB", "aesthetic")

# --- Images ------------------------------------------------------------------
# Full paintings: user paintings at {USER_MEDIA_URL}/@{handle}/painting/{slug}.png,
# guest paintings at {GUEST_MEDIA_URL}/{slug}.png. The defaults point at
# bin/local-images.
USER_MEDIA_URL = env_url("USER_MEDIA_URL", "http://127.0.0.1:8765/media")
GUEST_MEDIA_URL = env_url("GUEST_MEDIA_URL", "http://127.0.0.1:8765/guest")
# Tapes' MP4s, as the oven stores them: {TAPE_MEDIA_URL}/{code}.mp4. Production:
# https://at-blobs-aesthetic-computer.sfo3.digitaloceanspaces.com/tapes.
TAPE_MEDIA_URL = env_url("TAPE_MEDIA_URL", "http://127.0.0.1:8765/tapes")
# The largest MP4 a tape's record takes (the lexicon's maxSize, 50 MB); tests lower it.
TAPE_MAX_BYTES = env_int("TAPE_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
IMAGE_FETCH_MAX_BYTES = env_int("IMAGE_FETCH_MAX_BYTES", 50 * 1024 * 1024, minimum=1024)
IMAGE_FETCH_CONNECT_TIMEOUT = env_float("IMAGE_FETCH_CONNECT_TIMEOUT", 5.0, minimum=0.1)
IMAGE_FETCH_READ_TIMEOUT = env_float("IMAGE_FETCH_READ_TIMEOUT", 20.0, minimum=0.1)
IMAGE_FETCH_TOTAL_TIMEOUT = env_float("IMAGE_FETCH_TOTAL_TIMEOUT", 60.0, minimum=0.1)
# Where make_sample_data draws the sample corpus's images and bin/local-images
# serves them from. Outside VAR_DIR on purpose: the demo keeps them between runs.
SAMPLE_IMAGES_DIR = Path(env_str("SAMPLE_IMAGES_DIR", str(BASE_DIR / "var" / "sample" / "images")))
THUMBNAIL_MAX_PIXELS = env_int("THUMBNAIL_MAX_PIXELS", 8192 * 8192, minimum=1)
# Origins (scheme://host[:port]) besides the two above that image redirects may
# lead to, e.g. the storage bucket behind a media URL. Empty: none.
IMAGE_REDIRECT_ORIGINS = env_list("IMAGE_REDIRECT_ORIGINS")

# --- ATProto -----------------------------------------------------------------
PDS_URL = env_url("PDS_URL", "http://127.0.0.1:2583")
PDS_ADMIN_PASSWORD = env_str("PDS_ADMIN_PASSWORD", "")
# Accounts whose sessions (and HTTP clients) a process keeps open at once.
PDS_OPEN_SESSIONS = env_int("PDS_OPEN_SESSIONS", 16, minimum=1)
PDS_RATE_LIMIT_BYPASS_KEY = env_str("PDS_RATE_LIMIT_BYPASS_KEY", "")
PDS_HANDLE_DOMAIN = env_str("PDS_HANDLE_DOMAIN", ".test")
ANON_HANDLE = env_str("ANON_HANDLE", "anon" + (PDS_HANDLE_DOMAIN if PDS_HANDLE_DOMAIN.startswith(".") else "." + PDS_HANDLE_DOMAIN))
LEXICON_DIR = BASE_DIR / "lexicons"
PAINTING_COLLECTION = "computer.aesthetic.painting"
# The account whose repository publishes lexicons (deploy_lexicon). With no
# password set, the command creates or reuses a local account for the demo.
LEXICON_ACCOUNT_HANDLE = env_str("LEXICON_ACCOUNT_HANDLE", "lexicons" + (PDS_HANDLE_DOMAIN if PDS_HANDLE_DOMAIN.startswith(".") else "." + PDS_HANDLE_DOMAIN))
LEXICON_ACCOUNT_PASSWORD = env_str("LEXICON_ACCOUNT_PASSWORD", "")
# How migrator.pds waits: per-request timeout; transient failures retried with
# capped exponential backoff and jitter; a 429 waited out up to
# PDS_RATE_LIMIT_MAX_WAIT seconds (longer: the call fails as rate limited);
# calls spread out once ratelimit-remaining drops to PDS_RATE_LIMIT_LOW_WATER.
PDS_TIMEOUT = env_float("PDS_TIMEOUT", 30.0, minimum=0.1)
PDS_RETRY_ATTEMPTS = env_int("PDS_RETRY_ATTEMPTS", 5, minimum=1)
PDS_RETRY_BASE_DELAY = env_float("PDS_RETRY_BASE_DELAY", 0.5, minimum=0.0)
PDS_RETRY_MAX_DELAY = env_float("PDS_RETRY_MAX_DELAY", 30.0, minimum=0.0)
PDS_RATE_LIMIT_MAX_WAIT = env_float("PDS_RATE_LIMIT_MAX_WAIT", 300.0, minimum=0.0)
PDS_RATE_LIMIT_LOW_WATER = env_int("PDS_RATE_LIMIT_LOW_WATER", 10, minimum=0)

# What to do with paintings marked nuked in MongoDB: "flag" migrates them with
# nuked: true (the plan's default), "skip" leaves them out.
NUKED_PAINTINGS = env_choice("NUKED_PAINTINGS", "flag", ("flag", "skip"))

# --- The migration run -------------------------------------------------------
# Paintings per job (one account each). A batch's records go in one applyWrites.
MIGRATION_BATCH_SIZE = env_int("MIGRATION_BATCH_SIZE", 50, minimum=1)
# Threads fetching images and making thumbnails within a batch: a fetch is
# mostly waiting on the storage, so more of them than cores.
THUMBNAIL_THREADS = env_int("THUMBNAIL_THREADS", 8, minimum=1)
# The CPU priority (nice) of the processes that run batches: background
# work, it yields the cores to what serves (the admin; a PDS or MongoDB on
# the same machine). 0 leaves it as started; the kernel caps it at 19.
WORKER_NICENESS = env_int("WORKER_NICENESS", 10, minimum=0)
# A painting claimed longer than this by a worker that went silent is
# released for another to take (its next run reconciles with the PDS).
MIGRATION_LEASE_SECONDS = env_int("MIGRATION_LEASE_SECONDS", 900, minimum=60)
# Live sync: the upload function signs its calls to /hooks/painting with
# this shared secret (HMAC-SHA256 over timestamp and body). Unset: the hook is off.
SYNC_WEBHOOK_SECRET = env_str("SYNC_WEBHOOK_SECRET", "")
SYNC_WEBHOOK_MAX_AGE = env_int("SYNC_WEBHOOK_MAX_AGE", 300, minimum=1)
# Live sync schedule: minutes between incremental syncs, and between full
# re-reads of MongoDB (which catch edits such as nuking).
SYNC_FULL_EVERY_MINUTES = env_int("SYNC_FULL_EVERY_MINUTES", 60, minimum=1)
# The tripwire: one seed or sync removes the records of at most the larger
# of these (a count, and a percentage of the paintings the console knows)
# without a person confirming. A typo in MONGODB_DB or a bad restore looks
# like mass deletion: it must wait for someone to look.
REMOVAL_TRIPWIRE_MIN = env_int("REMOVAL_TRIPWIRE_MIN", 50, minimum=0)
REMOVAL_TRIPWIRE_PERCENT = env_float("REMOVAL_TRIPWIRE_PERCENT", 5.0, minimum=0.0)

# --- Jobs (django-q2) --------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss"))
# Migrating processes, for backfill and a cluster: two per core and one more.
# A worker spends much of each batch waiting (on the PDS's one thread, on
# MongoDB's write-back, on the state table), and the cores are busy only while
# some other worker has work. On the 2-core benchmark machine, against
# cores + 1 (3 runs each): moods and KidLisp together used 84% of the cores'
# ceiling instead of 80% at the same CPU per record; paintings 94% instead of
# 91%, but their console CPU rose by about as much (more threads share the
# cores), so their rate stayed the same. Across a network, as in production,
# a worker waits longer still (README, Workers).
DEFAULT_WORKERS = 2 * (os.cpu_count() or 1) + 1
Q_CLUSTER = {
    # Clusters with one name share one queue: that is how several machines
    # split the work.
    "name": env_str("Q_CLUSTER_NAME", "migrator"),
    "workers": env_int("Q_WORKERS", DEFAULT_WORKERS, minimum=1),
    # A running job is never re-delivered: a job may run for at most
    # `timeout` seconds and is retried only after `retry`, which is longer.
    "timeout": 600,
    "retry": 720,
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "label": "Jobs",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# A cache every process shares: django-q2 keeps its cluster's heartbeat there,
# and the console reads it to show whether workers are alive.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}
    )
}

# --- Watching: alerts, the scheduled verification, health -------------------
# Drift, a stuck migration and a tripwire hold are told to the admins by mail
# (Django's mail_admins) and to a chat webhook (Slack-style {"text": ...}).
# ADMINS="Ann <ann@example.com>,bo@example.com"; mail goes out through EMAIL_HOST.
ADMINS = env_addresses("ADMINS")
SERVER_EMAIL = env_str("SERVER_EMAIL", "painting-console@localhost")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10  # seconds: a mail server that hangs must not hold a job
EMAIL_SUBJECT_PREFIX = "[painting console] "
ALERT_WEBHOOK_URL = env_url("ALERT_WEBHOOK_URL", "")
# A condition that persists is told once per this many hours.
ALERT_REPEAT_HOURS = env_int("ALERT_REPEAT_HOURS", 24, minimum=1)
# The verification schedule compares everything this often (kept in step
# with the setting by every `manage.py migrate`).
VERIFY_EVERY_HOURS = env_int("VERIFY_EVERY_HOURS", 24, minimum=1)
# Work due (pending, queued, running, or past its rate-limit reset) with no
# painting changing and no lease renewed for this long is stuck.
STUCK_AFTER_MINUTES = env_int("STUCK_AFTER_MINUTES", 30, minimum=5)
# GET /health: 503 when live sync last ran longer ago than this, or when no
# job cluster is alive (unless HEALTH_REQUIRE_CLUSTER=false); each outside
# service gets HEALTH_TIMEOUT seconds to answer.
HEALTH_SYNC_MAX_AGE_MINUTES = env_int("HEALTH_SYNC_MAX_AGE_MINUTES", 10, minimum=2)
HEALTH_REQUIRE_CLUSTER = env_bool("HEALTH_REQUIRE_CLUSTER", True)
HEALTH_TIMEOUT = env_float("HEALTH_TIMEOUT", 3.0, minimum=0.5)

# --- The rest ---------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Content-hashed names from the manifest that collectstatic writes: a
    # page names the exact files it was rendered with, so they can be cached
    # for a year and a new release is never half old CSS.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
LOGIN_URL = "admin:login"

# `manage.py serve`: gunicorn with WEB_CONCURRENCY worker processes of
# WEB_THREADS threads each, on WEB_HOST:PORT (behind the TLS proxy); a request
# running past WEB_TIMEOUT seconds has its worker restarted.
WEB_HOST = env_str("WEB_HOST", "127.0.0.1")
PORT = env_int("PORT", 8000, minimum=1)
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 2, minimum=1)
WEB_THREADS = env_int("WEB_THREADS", 4, minimum=1)
WEB_TIMEOUT = env_int("WEB_TIMEOUT", 60, minimum=5)

# GET /metrics (Prometheus' text format) answers a request that carries
# "Authorization: Bearer <METRICS_TOKEN>", and signed-in staff. Unset: staff only.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# Log lines on stderr: "plain" for a person, or "json" (one object a line,
# with each document's kind and ref as fields) for a log shipper. Every line
# passes migrator.logs.HideSecrets on its way out.
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"hide_secrets": {"()": "migrator.logs.HideSecrets"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "migrator.logs.json_formatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["hide_secrets"]}},
    # Django's own errors (a 500 and its traceback) reach the root's handler.
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "migrator": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO"), "propagate": False},
        # The web server's access log and its workers' errors (manage.py serve).
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # django-q2 adds a handler of its own unless its logger has one.
        "django-q": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # The SDK's HTTP client logs full request lines; keep it quiet.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # pymongo's debug log quotes replies, and users.atproto holds passwords:
        # never below WARNING, whatever LOG_LEVEL says.
        "pymongo": {"level": "WARNING"},
        # libvips' warnings about an image it decoded anyway ("assuming 8-bit
        # palette"); a painting it cannot read is skipped with its reason.
        "pyvips": {"level": "ERROR"},
    },
}

CONFIG_PROBLEMS = PROBLEMS
