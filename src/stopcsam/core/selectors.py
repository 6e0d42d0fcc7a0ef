from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.utils import Error as DatabaseError


def health_report() -> dict[str, bool]:
    """Whether the database and (when configured) Redis answer right now."""
    report = {"database": _database_answers()}
    if settings.REDIS_URL:
        report["redis"] = _cache_answers()
    return report


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False


def _cache_answers() -> bool:
    try:
        cache.set("healthz", "1", timeout=5)
        return bool(cache.get("healthz") == "1")
    except Exception:  # redis-py raises its own connection errors; any failure is "down"
        return False
