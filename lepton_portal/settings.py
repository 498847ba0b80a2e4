"""Settings, read from environment variables (see README "Configuration").

Two ways to run, one code base: with no DATABASE_URL / REDIS_URL the portal runs embedded
(SQLite file + Celery filesystem broker under LEPTON_DATA_DIR); with them it runs on
PostgreSQL + Redis.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

from lepton_portal.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("LEPTON_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("LEPTON_DEBUG", False)


def _secret_key() -> str:
    """LEPTON_SECRET_KEY in production; a key generated once and kept in DATA_DIR otherwise."""
    configured = env_str("LEPTON_SECRET_KEY")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
# Earlier secrets still accepted for signatures (sessions, password-reset links, API keys made
# before keys were salted hashes) while a rotation settles.
SECRET_KEY_FALLBACKS = env_list("LEPTON_SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("LEPTON_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("LEPTON_CSRF_TRUSTED_ORIGINS")
SECURE = env_bool("LEPTON_SECURE", False)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE
# HSTS on HTTPS: browsers then refuse plain HTTP to this host and its subdomains for a year.
SECURE_HSTS_SECONDS = env_int("LEPTON_HSTS_SECONDS", 31536000) if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
# "preload" invites anyone to submit the domain to the browsers' built-in HTTPS-only list,
# which takes months to leave: the operator's decision, off unless LEPTON_HSTS_PRELOAD is set.
SECURE_HSTS_PRELOAD = SECURE and env_bool("LEPTON_HSTS_PRELOAD", False)
# The deploy check's "preload not set" (W021) asks for exactly that decision, so it is left
# to the operator rather than reported on every check.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy: how many proxies append to X-Forwarded-For before the portal
# (0: the header is ignored, the peer's address is the client's; apps.core.client_ip), and
# the header the proxy sets to say the request came over HTTPS (e.g. X-Forwarded-Proto).
LEPTON_TRUSTED_PROXIES = env_int("LEPTON_TRUSTED_PROXIES", 0)
_proxy_ssl_header = env_str("LEPTON_PROXY_SSL_HEADER")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "apps.core",
    "apps.tenants",
    "apps.accounts",
    "apps.datasets",
    "apps.training",
    "apps.deployments",
    "apps.analytics",
    "apps.audit",
    "apps.quotas",
]

MIDDLEWARE = [
    # First in, last out: no request inherits or leaves a tenant scope, errors included.
    "apps.core.middleware.TenantScopeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Above whitenoise, so static files carry the CSP and Permissions-Policy too.
    "apps.core.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.SessionActivityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: its process_view runs after the CSRF check, and refuses NUL characters (400).
    "apps.core.inputs.InputGuardMiddleware",
]

ROOT_URLCONF = "lepton_portal.urls"
WSGI_APPLICATION = "lepton_portal.wsgi.application"
ASGI_APPLICATION = "lepton_portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.portal",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write to one file: WAL lets readers run beside the
    # writer, IMMEDIATE transactions queue writers instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# --- i18n -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("LEPTON_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- files ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Third-party browser code comes from npm (package-lock.json; `make install` runs npm ci).
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
]
MEDIA_ROOT = Path(env_str("LEPTON_MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
# Uploads larger than this stream to a temporary file instead of memory, in a folder of the
# portal's own: a web process killed mid-upload leaves its partial file there, where the
# upkeep finds it (apps.core.uploads), not in the system's /tmp.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp" / "uploads")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
# Files in it last written longer ago than this are leftovers of killed processes.
LEPTON_UPLOAD_TMP_MAX_AGE_HOURS = env_float("LEPTON_UPLOAD_TMP_MAX_AGE_HOURS", 24.0)
LEPTON_MAX_UPLOAD_BYTES = env_int("LEPTON_MAX_UPLOAD_MB", 2048) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
LEPTON_MAX_ARCHIVE_ENTRIES = env_int("LEPTON_MAX_ARCHIVE_ENTRIES", 50_000)
LEPTON_MAX_ARCHIVE_BYTES = env_int("LEPTON_MAX_ARCHIVE_MB", 4096) * 1024 * 1024
LEPTON_MAX_IMAGE_BYTES = env_int("LEPTON_MAX_IMAGE_MB", 50) * 1024 * 1024
# Most pixels (width x height, read from the header before decoding) of an image in a dataset
# or sent to predict: far more than any template uses, and a pixel bomb is refused unread.
LEPTON_MAX_DATASET_IMAGE_PIXELS = env_int("LEPTON_MAX_DATASET_IMAGE_PIXELS", 40_000_000)
LEPTON_MAX_PREDICT_IMAGE_PIXELS = env_int("LEPTON_MAX_PREDICT_IMAGE_PIXELS", 16_000_000)
LEPTON_MAX_PREDICT_BYTES = env_int("LEPTON_MAX_PREDICT_MB", 10) * 1024 * 1024
# Most rows one call to a tabular-regression endpoint may send (400 above).
LEPTON_MAX_PREDICT_ROWS = env_int("LEPTON_MAX_PREDICT_ROWS", 1000)
LEPTON_MAX_WEIGHTS_BYTES = env_int("LEPTON_MAX_WEIGHTS_MB", 500) * 1024 * 1024
# Tabular (market data) uploads: a CSV larger than these is refused at upload.
LEPTON_MAX_TABLE_ROWS = env_int("LEPTON_MAX_TABLE_ROWS", 1_000_000)
LEPTON_MAX_TABLE_COLUMNS = env_int("LEPTON_MAX_TABLE_COLUMNS", 500)
LEPTON_MAX_TABLE_BYTES = env_int("LEPTON_MAX_TABLE_MB", 1024) * 1024 * 1024
# An archive may unpack to at most this many times its own size (counted while reading).
LEPTON_MAX_COMPRESSION_RATIO = env_float("LEPTON_MAX_COMPRESSION_RATIO", 100.0)
# Most files (loose images plus an archive) in one request that adds to a dataset.
LEPTON_MAX_FILES_PER_REQUEST = env_int("LEPTON_MAX_FILES_PER_REQUEST", 1000)
# Processes that decode images during one ingestion (1: decode in the worker itself).
LEPTON_INGEST_PROCESSES = env_int("LEPTON_INGEST_PROCESSES", os.cpu_count() or 1)
# The health report warns about classes with fewer images than this.
LEPTON_MIN_IMAGES_PER_CLASS = env_int("LEPTON_MIN_IMAGES_PER_CLASS", 10)

# --- email -----------------------------------------------------------------------------------
# SMTP when LEPTON_EMAIL_HOST is set; otherwise each message is written as a file into
# $LEPTON_DATA_DIR/mail, so a portal without a mail server still shows what it would send.
EMAIL_HOST = env_str("LEPTON_EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("LEPTON_EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("LEPTON_EMAIL_USER")
    EMAIL_HOST_PASSWORD = env_str("LEPTON_EMAIL_PASSWORD")
    EMAIL_USE_TLS = env_bool("LEPTON_EMAIL_USE_TLS", True)
    EMAIL_TIMEOUT = 30
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(DATA_DIR / "mail")
DEFAULT_FROM_EMAIL = env_str("LEPTON_EMAIL_FROM", "Lepton Portal <noreply@localhost>")
# Password-reset links stop working after this long.
PASSWORD_RESET_TIMEOUT = env_int("LEPTON_PASSWORD_RESET_TIMEOUT_SECONDS", 3 * 3600)
# Invitation links to join an organization stop working after this many days (resend renews).
LEPTON_INVITATION_DAYS = env_int("LEPTON_INVITATION_DAYS", 7)
# Email-change confirmation links (sent to the new address) stop working after this long.
LEPTON_EMAIL_CHANGE_TIMEOUT = env_int("LEPTON_EMAIL_CHANGE_TIMEOUT_SECONDS", 24 * 3600)
# Email-change requests (each sends two messages) per account and per client address.
LEPTON_EMAIL_CHANGE_RATE_PER_ACCOUNT = env_str("LEPTON_EMAIL_CHANGE_RATE_PER_ACCOUNT", "5/hour")
LEPTON_EMAIL_CHANGE_RATE_PER_ADDRESS = env_str("LEPTON_EMAIL_CHANGE_RATE_PER_ADDRESS", "20/hour")

# --- cache, broker, workers -----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Attempt counters (apps.accounts.throttling) must be shared by every web process: Redis when
# there is one, else files under LEPTON_DATA_DIR (no table to create; counts made exact there
# by a file lock). Enough entries that culling does not forget live counters under attack.
CACHES["throttle"] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "cache" / "throttle"),
        "OPTIONS": {"MAX_ENTRIES": 20_000},
    }
)
CACHES["throttle"]["KEY_PREFIX"] = "throttle"
# Budgets of attempts, as <count>/<second|minute|hour|day>. Failed log-ins (page and HTTP
# Basic together) per account (email) and per client address; every sign-up attempt likewise.
LEPTON_LOGIN_RATE_PER_ACCOUNT = env_str("LEPTON_LOGIN_RATE_PER_ACCOUNT", "10/minute")
LEPTON_LOGIN_RATE_PER_ADDRESS = env_str("LEPTON_LOGIN_RATE_PER_ADDRESS", "50/minute")
LEPTON_SIGNUP_RATE_PER_ACCOUNT = env_str("LEPTON_SIGNUP_RATE_PER_ACCOUNT", "10/hour")
LEPTON_SIGNUP_RATE_PER_ADDRESS = env_str("LEPTON_SIGNUP_RATE_PER_ADDRESS", "30/hour")
# Every password-reset request, whether or not the email belongs to an account.
LEPTON_PASSWORD_RESET_RATE_PER_ACCOUNT = env_str("LEPTON_PASSWORD_RESET_RATE_PER_ACCOUNT", "5/hour")
LEPTON_PASSWORD_RESET_RATE_PER_ADDRESS = env_str(
    "LEPTON_PASSWORD_RESET_RATE_PER_ADDRESS", "20/hour"
)

# Celery (lepton_portal/celery.py reads every CELERY_* name here).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Jobs are sent to the queue their kind declares (apps.core.job_registry); upkeep runs on cpu.
CELERY_TASK_ROUTES = {"workers.tasks.maintenance.*": {"queue": "cpu"}}
# workers.tasks.jobs makes one task per registered job kind.
CELERY_IMPORTS = ["workers.tasks.jobs", "workers.tasks.maintenance"]
# The reaper: a job whose broker message was lost (a broker restart, a worker killed before
# its message was re-queued) is sent again. `manage.py serve` runs beat inside its worker;
# production runs one `celery beat`.
CELERY_BEAT_SCHEDULE = {
    "jobs-reap": {
        "task": "workers.tasks.maintenance.jobs_reap_task",
        "schedule": env_float("LEPTON_REAP_INTERVAL_SECONDS", 60.0),
    },
    # Uploads left behind by killed web processes (on the host of the worker that runs it).
    "uploads-clean": {
        "task": "workers.tasks.maintenance.upload_leftovers_remove_task",
        "schedule": 3600.0,
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # A training run can outlast the default hour; the job row's lease, not the broker,
    # decides whether a job was abandoned.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 12 * 3600}
else:
    CELERY_BROKER_DIR = DATA_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }

# Seconds between progress writes to a job's row; the worker throttles to this.
LEPTON_PROGRESS_INTERVAL = env_float("LEPTON_PROGRESS_INTERVAL", 1.0)
# A training worker reads its run's status this often (between steps) to notice a cancel.
LEPTON_CANCEL_POLL_SECONDS = env_float("LEPTON_CANCEL_POLL_SECONDS", 0.25)
# A running job whose lease is older than this is taken to be abandoned by a dead worker.
LEPTON_JOB_LEASE_SECONDS = env_int("LEPTON_JOB_LEASE_SECONDS", 120)
# A job still queued after this long is sent to the broker again by the reaper.
LEPTON_JOB_REQUEUE_SECONDS = env_int("LEPTON_JOB_REQUEUE_SECONDS", 600)
LEPTON_TRAIN_DEVICE = env_str("LEPTON_TRAIN_DEVICE", "")  # "" = CUDA when present, else CPU
# CPU threads per training process. The default worker runs 2 processes, so each takes half
# the cores: two processes both using every core run several times slower than one each.
LEPTON_TORCH_THREADS = env_int("LEPTON_TORCH_THREADS", max(1, (os.cpu_count() or 2) // 2))
LEPTON_PREDICTOR_CACHE_SIZE = env_int("LEPTON_PREDICTOR_CACHE_SIZE", 8)

# --- limits and quotas (apps.quotas) ---------------------------------------------------------
# The plan of organizations that platform staff have not put on one (free, team, enterprise).
LEPTON_DEFAULT_PLAN = env_str("LEPTON_DEFAULT_PLAN", "team")

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    # Requests per minute per API key and per organization, from the organization's plan.
    "DEFAULT_THROTTLE_CLASSES": ["apps.quotas.throttling.OrganizationRateThrottle"],
    # DRF's own client address (throttles' get_ident) follows the same proxies as ours.
    "NUM_PROXIES": LEPTON_TRUSTED_PROXIES,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lepton Portal API",
    "DESCRIPTION": "Upload datasets, train models, deploy them and call them. "
    "Authenticate with `Authorization: Bearer <api key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "DatasetKindEnum": "apps.datasets.models.DatasetKind",
        "UsageKindEnum": "apps.analytics.models.UsageEvent.Kind",
        "RoleEnum": "apps.tenants.models.Role",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LEPTON_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
