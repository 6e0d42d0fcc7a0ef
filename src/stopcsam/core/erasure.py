"""What a deletion leaves behind in the database files.

A deleted row's bytes stay in the file until the page is reused, and its older page images
stay in SQLite's write-ahead log. The field key is not destroyed with the row, so that
residue would still decrypt. On SQLite, ``secure_delete`` (settings) zeroes deleted content
in the pages a deletion writes, and ``forget_deleted`` then copies the log into the database
file and truncates the log, so no earlier page image survives in either file.

PostgreSQL keeps deleted row versions until VACUUM reclaims them (autovacuum, soon after a
large deletion), and backups keep what they copied for as long as they are kept
(docs/operators.md).
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger("stopcsam.core.erasure")


def forget_deleted() -> None:
    """After the current transaction commits (at once outside one), leave no image of the
    rows it deleted in SQLite's write-ahead log. Erasure and retention call it."""
    if connection.vendor == "sqlite":
        transaction.on_commit(_truncate_log)


# How long the truncating checkpoint may wait for readers of an older snapshot. While it
# waits, new writers wait too (the chat's writer among them): it gives up soon instead.
TRUNCATE_WAIT_MS = 250


def _truncate_log() -> None:
    usual = int(float(connection.settings_dict["OPTIONS"].get("timeout", 5)) * 1000)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {TRUNCATE_WAIT_MS}")
            try:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy, _, _ = cursor.fetchone()
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {usual}")
    except DatabaseError:
        busy = 1
    if busy:  # a reader held an older snapshot; the background checkpoints copy it later
        logger.warning("erasure: the write-ahead log could not be truncated now")
