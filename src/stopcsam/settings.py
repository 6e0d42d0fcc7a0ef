"""Settings, read from the environment (see docs/configuration.md).

The embedded default (SQLite, one process, no other server) needs nothing set in demo mode.
A production deployment sets keys, hosts and, to scale out, DATABASE_URL and REDIS_URL.
Broken combinations are refused at start-up by the checks in ``stopcsam.core.checks``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from stopcsam.core.demo_secrets import demo_secrets
from stopcsam.core.env import EnvError, env_bool, env_int, env_list, env_str

PACKAGE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(env_str("STOPCSAM_VAR_DIR", "var")).resolve()

DEMO_MODE = env_bool("STOPCSAM_DEMO")
DEBUG = env_bool("DEBUG")
_demo = demo_secrets(VAR_DIR) if DEMO_MODE else {}

# An empty value is reported by a system check, not by a crash at import time.
_UNSET = "unset-refused-by-checks"
SECRET_KEY = env_str("SECRET_KEY") or _demo.get("SECRET_KEY", "") or _UNSET
SECRET_KEY_IS_SET = SECRET_KEY != _UNSET
# Field encryption keys: "id:base64key,id:base64key"; the first encrypts, all decrypt.
STOPCSAM_ENCRYPTION_KEYS = env_str("STOPCSAM_ENCRYPTION_KEYS") or _demo.get("ENCRYPTION_KEYS", "")
# Keyed digest for finding a participant by codename. Separate from SECRET_KEY so that
# rotating the session-signing key never locks participants out.
STOPCSAM_LOOKUP_KEY = env_str("STOPCSAM_LOOKUP_KEY") or _demo.get("LOOKUP_KEY", "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEMO_MODE or DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Background work. In the embedded default (one process) `stopcsam serve` calls each of these
# dotted paths once to start in-process workers; with STOPCSAM_EXTERNAL_WORKERS the same job
# code runs in separate worker processes instead.
STOPCSAM_EMBEDDED_WORKERS: list[str] = []
STOPCSAM_EXTERNAL_WORKERS = env_bool("STOPCSAM_EXTERNAL_WORKERS")
# Jobs of other apps that the background worker runs every minute (dotted paths of functions
# without arguments, idempotent; scheduling's sweep calls them).
STOPCSAM_EVERY_MINUTE: list[str] = []

# A movable clock for end-to-end tests (see core/clock.py); refused outside demo/debug mode.
STOPCSAM_TEST_CLOCK = env_bool("STOPCSAM_TEST_CLOCK")

# The ASGI application that serves websockets (dotted path); None closes them.
STOPCSAM_WEBSOCKET_APP: str | None = None
# Garbage-collector thresholds of served processes (see asgi.py); empty keeps Python's own.
STOPCSAM_GC_THRESHOLD: tuple[int, ...] = (25_000, 40, 20)
# Hot HTTP paths served by lean ASGI apps beside Django: {exact path: dotted ASGI app}.
STOPCSAM_HTTP_FAST_PATHS: dict[str, str] = {}

# Threads per process that run Django's (synchronous) request handling; 0 uses Django's
# ASGI handler, which runs all sync code of a process on a single thread.
STOPCSAM_HTTP_THREADS = env_int("STOPCSAM_HTTP_THREADS", 8)
# The largest request body taken, before Django reads any of it (core.asgi_limits); the same
# as nginx's client_max_body_size in deploy/nginx.conf. Everything taken is text.
STOPCSAM_MAX_BODY_BYTES = env_int("STOPCSAM_MAX_BODY_BYTES", 64 * 1024)
# No upload path exists: a file part of a form is read past and dropped, never held in memory
# or written to a temporary file.
FILE_UPLOAD_HANDLERS: list[str] = []

# Processes that serve requests. More than one needs Redis for fan-out (checked).
STOPCSAM_PROCESSES = env_int("STOPCSAM_PROCESSES", 1)
REDIS_URL = env_str("REDIS_URL")
DATABASE_URL = env_str("DATABASE_URL")

INSTALLED_APPS = [
    "stopcsam.accounts.apps.CoordinatorAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "stopcsam.core.apps.CoreConfig",
    "stopcsam.accounts.apps.AccountsConfig",
    "stopcsam.outreach.apps.OutreachConfig",
    "stopcsam.study.apps.StudyConfig",
    "stopcsam.scheduling.apps.SchedulingConfig",
    "stopcsam.chat.apps.ChatConfig",
]

MIDDLEWARE = [
    "stopcsam.core.middleware.AccessLogMiddleware",
    "stopcsam.core.middleware.PrivacyHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Outside every middleware that answers by itself (the NUL refusal, redirects, the
    # database-away page): further in, those answers went out without it (a review finding).
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Django's, answering the 503 page when the session cannot be saved (database away).
    "stopcsam.core.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "stopcsam.core.middleware.LanguageCookieMiddleware",
    "stopcsam.core.middleware.RefuseNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "stopcsam.core.csrf.FetchMetadataCsrfMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "stopcsam.accounts.middleware.ParticipantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "stopcsam.core.middleware.BusyMiddleware",
]

ROOT_URLCONF = "stopcsam.urls"
ASGI_APPLICATION = "stopcsam.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "stopcsam.core.context_processors.site_context",
            ],
        },
    },
]


def _database() -> dict[str, object]:
    if DATABASE_URL:
        config: dict[str, object] = dict(dj_database_url.parse(DATABASE_URL, conn_max_age=60))
        config["CONN_HEALTH_CHECKS"] = True
        if "postgresql" in str(config.get("ENGINE", "")):
            # A connection to a server that vanished (a network cut, a failover) is noticed
            # within half a minute instead of hanging: libpq's connect timeout and TCP
            # keepalives (the chat writer holds its connection open).
            config["OPTIONS"] = {
                "connect_timeout": 5,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                **dict(config.get("OPTIONS") or {}),  # type: ignore[call-overload]
            }
        return config
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "stopcsam.sqlite3"),
        "OPTIONS": {
            # IMMEDIATE takes the write lock at BEGIN, so read-then-write services
            # (audit chain, randomization, booking) cannot interleave.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # temp_store=MEMORY: a statement that changes several rows inside a transaction
            # (the chat writer's batch) keeps its statement journal in memory rather than
            # in a temporary file opened, written and unlinked per batch: 7.4 -> 4.2 writes
            # per chat message, server CPU per message 306 -> 290 us (bench/chat.py).
            # secure_delete=ON: a deletion zeroes what it deleted, so an erased or shredded
            # transcript leaves no ciphertext in free pages (core/erasure.py).
            # synchronous=FULL: a commit is on disk before it is answered (a chat message's
            # ack), as on PostgreSQL; NORMAL could lose the last commits to a power cut. It
            # cost no measurable CPU per message at 1,000 sessions (FULL 362/393 us against
            # NORMAL 417/351, alternate runs) and about 5% at 100 (bench/chat.py).
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                " PRAGMA temp_store=MEMORY; PRAGMA secure_delete=ON;"
            ),
        },
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Deployments sharing one Redis database keep apart by their prefix (below).
            "KEY_PREFIX": env_str("CHAT_REDIS_PREFIX", "stopcsam"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.StaffUser"
PASSWORD_HASHERS = ["stopcsam.core.hashing.LimitedArgon2PasswordHasher"]
# Slow hashes (argon2: codenames and staff passwords) computed at once per process, and how
# long a request waits for its turn before it is answered "busy" (503): a flood of sign-ups
# or logins, which cannot be throttled per client behind Tor, must not take the cores that
# live chats need (core/hashing.py).
SLOW_HASHES_AT_ONCE = env_int("STOPCSAM_SLOW_HASHES_AT_ONCE", 1)
if SLOW_HASHES_AT_ONCE < 1:
    raise EnvError("STOPCSAM_SLOW_HASHES_AT_ONCE must be 1 or more")
SLOW_HASH_WAIT_SECONDS = 10.0
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        # Django's, its message translated in every language (accounts.password_validation).
        "NAME": "stopcsam.accounts.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:staff_login"
# URL name where participants land after logging in (the study sets its own page).
STOPCSAM_PARTICIPANT_HOME = "accounts:me"
# Dotted paths called by `seed_demo` after the demo staff exist (apps add their demo data).
STOPCSAM_DEMO_SEEDERS: list[str] = []
OTP_TOTP_ISSUER = "stopcsam"
# django-otp's own throttle off: it counted wrong codes on the TOTP device, which every
# browser shares, with a delay doubling up to a hundred years, so a stranger who had the
# password locked its owner out of their own browser for good (a review finding). Wrong codes
# count as failed logins instead, per account or device cookie (STAFF_LOGIN_* below).
OTP_TOTP_THROTTLE_FACTOR = 0

# Codename hashing (argon2id) at OWASP's recommended minimum (19 MiB, 2 passes): 26 ms here
# against 198 ms for 64 MiB x 3, measured. A codename carries >= 80 bits of entropy, so the
# hash guards against a leaked database, not against guessing; sign-up and login stay fast
# under load. Tests lower the cost further; the algorithm stays the same.
CODENAME_ARGON2 = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}
CODENAME_MAX_LENGTH = 200
CODENAME_MIN_ENTROPY_BITS = 80
# Per-account throttling of staff logins: free attempts, then a lock that doubles.
STAFF_LOGIN_FREE_ATTEMPTS = 5
STAFF_LOGIN_LOCK_SECONDS = 60
STAFF_LOGIN_LOCK_MAX_SECONDS = 3600
# Device cookies: a browser where a member of staff logged in before counts its own failures
# and is not stopped by the account's lock, so strangers cannot lock staff out of their own
# browser (docs/configuration.md, "Staff logins").
STAFF_DEVICE_COOKIE_NAME = "staff_device"
STAFF_DEVICE_COOKIE_DAYS = env_int("STAFF_DEVICE_COOKIE_DAYS", 180)
STAFF_INVITATION_DAYS = 7
# Database triggers that refuse UPDATE and DELETE on the audit log.
AUDIT_DB_TRIGGERS = True

# Sessions live on the server; the browser holds only an opaque id.
SESSION_ENGINE = "stopcsam.accounts.session_store"  # the database engine, and a signal on delete
SESSION_COOKIE_NAME = "sid"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_AGE = 60 * 60 * 8
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_USE_SESSIONS = True
CSRF_FAILURE_VIEW = "stopcsam.core.views.csrf_failure"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# HTTPS deployments mark every cookie Secure and send HSTS. An onion service is plain HTTP
# inside Tor's own encryption, so STOPCSAM_HTTPS=false is correct there; the privacy
# middleware still marks cookies Secure whenever a request arrives over HTTPS.
STOPCSAM_HTTPS = env_bool("STOPCSAM_HTTPS", default=not (DEMO_MODE or DEBUG))
SESSION_COOKIE_SECURE = STOPCSAM_HTTPS
CSRF_COOKIE_SECURE = STOPCSAM_HTTPS
SECURE_SSL_REDIRECT = STOPCSAM_HTTPS
SECURE_HSTS_SECONDS = 63072000 if STOPCSAM_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = STOPCSAM_HTTPS
SECURE_HSTS_PRELOAD = STOPCSAM_HTTPS
if env_bool("STOPCSAM_BEHIND_TLS_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
# Where the quick-exit control leads: a neutral, busy site.
STOPCSAM_QUICK_EXIT_URL = env_str("STOPCSAM_QUICK_EXIT_URL", "https://www.wikipedia.org/")

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("de", "Deutsch"),
    ("cs", "Čeština"),
    ("pt", "Português"),
    ("es", "Español"),
]
# Each app keeps its own catalogue in <app>/locale, found by Django at run time.
LOCALE_PATHS: list[str] = []
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
# The language choice lives for the browser session only, like every participant cookie.
LANGUAGE_COOKIE_NAME = "lang"
LANGUAGE_COOKIE_AGE = None
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Strict"
LANGUAGE_COOKIE_SECURE = STOPCSAM_HTTPS

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve from the apps' static folders directly, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = True
# WhiteNoise streams files through a sync iterator; under ASGI Django warns on each one.
# The files are small and browser-cached, so the warning is noise, not a problem.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous")

# No IP address, user agent or referrer reaches a log: the ASGI layer strips them from
# every request before Django sees it, and our access log writes method, path, status, time.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"redact": {"()": "stopcsam.core.logs.RedactSecretPaths"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        "django.server": {"handlers": [], "level": "CRITICAL", "propagate": False},
        # Without Django's own handlers (a console one when DEBUG, mail to ADMINS): they wrote
        # paths and exceptions' text unredacted. Its lines reach the console through the root.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
    },
}

SILENCED_SYSTEM_CHECKS: list[str] = [
    # W003 looks for Django's CsrfViewMiddleware by exact name; ours subclasses it and keeps
    # every check, adding only Fetch Metadata for Origin: null (see stopcsam/core/csrf.py).
    "security.W003",
]
if not STOPCSAM_HTTPS:
    # Onion services and local demos run over plain HTTP by design; Tor encrypts the
    # transport end to end. Cookies are still marked Secure on any HTTPS request.
    SILENCED_SYSTEM_CHECKS += ["security.W004", "security.W008", "security.W012", "security.W016"]

# === study settings (owned by the study app) ===
STOPCSAM_PARTICIPANT_HOME = "study:home"
STOPCSAM_DEMO_SEEDERS += ["stopcsam.study.demo.seed_study_demo"]
# Scheduling asks the study who may book and how long a course is (it never imports study).
STOPCSAM_MAY_BOOK = "stopcsam.study.selectors.participant_may_book"
STOPCSAM_COURSE_LENGTH = "stopcsam.study.selectors.course_length"
# === end study settings ===

# === scheduling settings (owned by the scheduling app) ===
# Rules of booking (docs/scheduling.md). Durations in minutes, hours or days as named.
SCHEDULING_SESSION_MINUTES = env_int("SCHEDULING_SESSION_MINUTES", 50)
SCHEDULING_MIN_NOTICE_HOURS = env_int("SCHEDULING_MIN_NOTICE_HOURS", 12)
SCHEDULING_HORIZON_DAYS = env_int("SCHEDULING_HORIZON_DAYS", 42)
SCHEDULING_CHANGE_CUTOFF_HOURS = env_int("SCHEDULING_CHANGE_CUTOFF_HOURS", 12)
SCHEDULING_STAFF_CHANGE_CUTOFF_HOURS = env_int("SCHEDULING_STAFF_CHANGE_CUTOFF_HOURS", 1)
SCHEDULING_NO_SHOW_MINUTES = env_int("SCHEDULING_NO_SHOW_MINUTES", 15)
SCHEDULING_ALTERNATIVE_DAYS = env_int("SCHEDULING_ALTERNATIVE_DAYS", 2)
SCHEDULING_REMINDER_HOURS = env_int("SCHEDULING_REMINDER_HOURS", 24)
# Background jobs (huey): a SQLite file in VAR_DIR when embedded, Redis when REDIS_URL is set.
SCHEDULING_JOBS_IMMEDIATE = env_bool("SCHEDULING_JOBS_IMMEDIATE")
STOPCSAM_EMBEDDED_WORKERS += ["stopcsam.scheduling.jobs.start_embedded_worker"]
STOPCSAM_DEMO_SEEDERS += ["stopcsam.scheduling.demo.seed_scheduling_demo"]
# === end scheduling settings ===

# === chat settings (owned by the chat app) ===
# Real-time chat (docs/chat-protocol.md): a lean ASGI websocket endpoint beside Django.
STOPCSAM_WEBSOCKET_APP = "stopcsam.chat.sockets.application"
# Sessions left live with nobody connected are ended at their forced end all the same.
STOPCSAM_EVERY_MINUTE += [
    "stopcsam.chat.services.sessions_expire_due",
    # Retention, applied as soon as it is due (`stopcsam chat_retention` does it by hand).
    "stopcsam.chat.services.sessions_shred_expired",
]
# Scheduling tells chat about appointments through these dotted paths (docs/therapists.md).
STOPCSAM_APPOINTMENT_SOURCE: str | None = "stopcsam.scheduling.selectors.chat_appointment"
STOPCSAM_APPOINTMENTS_FOR: str | None = "stopcsam.scheduling.selectors.chat_appointments"
STOPCSAM_APPOINTMENT_JOINED: str | None = "stopcsam.scheduling.services.appointment_mark_joined"
STOPCSAM_APPOINTMENT_ATTENDED: str | None = "stopcsam.scheduling.services.appointment_mark_attended"
STOPCSAM_APPOINTMENT_NOT_HELD: str | None = "stopcsam.scheduling.services.appointment_mark_not_held"
# The participant's pseudonymous study id for the therapist console (None: a keyed pseudonym).
STOPCSAM_PARTICIPANT_STUDY_ID: str | None = "stopcsam.study.selectors.participant_study_id"
# When each participant's last study time point closes; retention counts from the later of it
# and their last session (None: from the last session alone).
STOPCSAM_LAST_TIME_POINTS: str | None = "stopcsam.study.selectors.last_time_points"
# Times in seconds: a session opens before its start, lasts, warns before its end, and is
# closed by force after the end plus a grace period.
CHAT_OPEN_BEFORE_SECONDS = env_int("CHAT_OPEN_BEFORE_SECONDS", 10 * 60)
CHAT_SESSION_SECONDS = env_int("CHAT_SESSION_SECONDS", 50 * 60)
CHAT_WARNING_SECONDS = env_int("CHAT_WARNING_SECONDS", 5 * 60)
CHAT_GRACE_SECONDS = env_int("CHAT_GRACE_SECONDS", 5 * 60)
# Timer ticks correct the page's own countdown; with JS the page counts down between them.
CHAT_TICK_SECONDS = env_int("CHAT_TICK_SECONDS", 60)
# Websocket keep-alive pings (uvicorn's default is 20 s). Live sessions get a tick every
# minute anyway; a ping per connection every 20 s was 7% of all frames at 2,000 sessions.
CHAT_PING_SECONDS = env_int("CHAT_PING_SECONDS", 60)
# Under load the chat writer waits up to this long for a batch to gather (chat/writer.py).
CHAT_WRITER_GATHER_SECONDS = env_int("CHAT_WRITER_GATHER_MS", 8) / 1000
# A send the writer has not stored by then is answered ``unavailable`` (no ack; the client
# sends it again with the same client id): a database that hangs left senders unanswered.
CHAT_STORE_TIMEOUT_SECONDS = env_int("CHAT_STORE_TIMEOUT_SECONDS", 10)
CHAT_NOJS_REFRESH_SECONDS = env_int("CHAT_NOJS_REFRESH_SECONDS", 5)
# The other side's read marker rides on the next ack or message to this side, or comes on its
# own after this long (chat/sockets.py).
CHAT_READ_HOLD_SECONDS = env_int("CHAT_READ_HOLD_MS", 1000) / 1000
# Frame limits and flood throttling (messages per second, burst).
CHAT_MAX_FRAME_BYTES = 16 * 1024
CHAT_MAX_MESSAGE_CHARS = 4000
CHAT_SEND_RATE = (2.0, 10)
CHAT_FRAME_RATE = (10.0, 40)
# Site codes whose supervisors may read along live (the participant is told on screen).
CHAT_READ_ALONG_SITES = env_list("CHAT_READ_ALONG_SITES")
# The structured session guide per session number (JSON file; docs/therapists.md). Empty: none.
CHAT_SESSION_GUIDE_FILE = env_str("CHAT_SESSION_GUIDE_FILE")
# Transcripts are shredded this many days after the participant's last study time point
# (the later of their last chat session and their schedule's last window; docs/therapists.md).
CHAT_RETENTION_DAYS = env_int("CHAT_RETENTION_DAYS", 365)
# Redis channel prefix, so several deployments can share one Redis.
CHAT_REDIS_PREFIX = env_str("CHAT_REDIS_PREFIX", "stopcsam")
# Demo and end-to-end tests only: appointments come from a file in VAR_DIR (refused otherwise).
CHAT_DEMO_APPOINTMENTS = env_bool("CHAT_DEMO_APPOINTMENTS")
CHAT_TEST_MODE = env_bool("CHAT_TEST_MODE")
# uvicorn logs every websocket handshake at INFO with the client's address and port, before
# our ASGI scrubber runs: keep only its warnings and errors (they carry no address).
LOGGING["loggers"]["uvicorn.error"] = {  # type: ignore[index]
    "handlers": ["console"],
    "level": "WARNING",
    "propagate": False,
}
if CHAT_DEMO_APPOINTMENTS:
    STOPCSAM_APPOINTMENT_SOURCE = "stopcsam.chat.demo.appointment_source"
    STOPCSAM_APPOINTMENTS_FOR = "stopcsam.chat.demo.appointments_for"
# === end chat settings ===

# === outreach settings (owned by the outreach app) ===
# The partner check is the hottest HTTP path: a lean ASGI endpoint (outreach/api_fast.py).
STOPCSAM_HTTP_FAST_PATHS["/api/v1/deterrence/check"] = "stopcsam.outreach.api_fast.endpoint"
# Deterrence term-list files (CSV or JSON, docs/deterrence.md); empty: the shipped placeholders.
OUTREACH_TERM_LISTS = env_list("STOPCSAM_TERM_LISTS")
# Public base URL for links handed to partners (help_url); empty: taken from the request.
OUTREACH_PUBLIC_URL = env_str("STOPCSAM_PUBLIC_URL").rstrip("/")
# Requests per minute for a new partner key, unless given when the key is created.
OUTREACH_DEFAULT_RATE_PER_MINUTE = env_int("STOPCSAM_API_RATE_PER_MINUTE", 600)
# Database lookups a second, per process, of API keys the process does not remember (a made-up
# key, or a new one's first use); past them the API answers 503 with Retry-After. Keys it
# remembers are never held up, and a key the database did not know is refused from memory.
OUTREACH_KEY_LOOKUPS_PER_SECOND = env_int("STOPCSAM_API_KEY_LOOKUPS_PER_SECOND", 20)
if OUTREACH_KEY_LOOKUPS_PER_SECOND < 1:
    raise EnvError("STOPCSAM_API_KEY_LOOKUPS_PER_SECOND must be 1 or more")
# The intercept survey offered on the landing page (an instrument definition, JSON).
OUTREACH_SURVEY_FILE = env_str("STOPCSAM_SURVEY_FILE")
# === end outreach settings ===
