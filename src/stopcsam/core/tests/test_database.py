"""The embedded database is opened the way production needs it."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's pragmas")
def test_sqlite_connections_use_wal_and_keep_temporary_data_in_memory() -> None:
    with connection.cursor() as cursor:
        found = {}
        for pragma in ("journal_mode", "synchronous", "foreign_keys", "temp_store"):
            cursor.execute(f"PRAGMA {pragma}")
            found[pragma] = cursor.fetchone()[0]
    # synchronous 2 = FULL (a commit is on disk before its ack), temp_store 2 = MEMORY (no
    # temporary file per chat batch)
    assert found == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "temp_store": 2}
