"""Settings for the test suite: the production settings with cheaper hashing and fixed keys.

Everything else (middleware, headers, cookies, checks) is exactly what production runs.
DATABASE_URL and REDIS_URL, when set, switch the suite to PostgreSQL and Redis.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 40)
os.environ.setdefault(
    "STOPCSAM_ENCRYPTION_KEYS", "test1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)
os.environ.setdefault("STOPCSAM_LOOKUP_KEY", "test-lookup-key")
os.environ.setdefault("STOPCSAM_HTTPS", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("STOPCSAM_VAR_DIR", str(Path.cwd() / "var" / "test"))

from stopcsam.settings import *  # noqa: F403

PASSWORD_HASHERS = ["stopcsam.core.hashers.TestArgon2PasswordHasher"]
CODENAME_ARGON2 = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
# Transactional tests empty every table between tests, which the append-only triggers
# would refuse; test_audit installs the same triggers inside a test and checks them.
AUDIT_DB_TRIGGERS = False
INSTALLED_APPS = [*INSTALLED_APPS, "stopcsam.core.tests.testapp.apps.TestAppConfig"]  # noqa: F405

# A file-based SQLite test database (not in-memory shared cache, whose table locks would
# fail concurrency tests instead of waiting), unique per run so parallel runs never collide.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")  # noqa: F405
    }
