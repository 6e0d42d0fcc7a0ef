"""No double booking under contention, on SQLite and on PostgreSQL.

200 participants try the same first slot at once: exactly one course is booked. Courses that
start in different weeks but overlap in later weeks never both get the shared week.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from stopcsam.scheduling.tests import contention

CHILD = (
    "import django; django.setup(); from stopcsam.scheduling.tests.contention import main; main()"
)


def _run_sqlite_child(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="stopcsam.settings_test", STOPCSAM_VAR_DIR=str(tmp_path / "var")
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "200"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_hundred_clients_on_one_slot_get_one_booking_on_sqlite(tmp_path: Path) -> None:
    result = _run_sqlite_child(tmp_path)
    assert result["vendor"] == "sqlite"
    one = result["one_slot"]
    assert one["attempts"] == 200
    assert one["unexpected"] == []
    assert (one["booked"], one["refused"], one["live_at_slot"]) == (1, 199, 1)
    assert one["overlapping_pairs"] == 0
    overlapping = result["overlapping"]
    assert overlapping["unexpected"] == [] and overlapping["overlapping_pairs"] == 0
    assert 1 <= overlapping["booked"] <= 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="runs when DATABASE_URL is set")
def test_two_hundred_clients_on_one_slot_get_one_booking_on_postgresql(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STOPCSAM_MAY_BOOK = None
    settings.STOPCSAM_COURSE_LENGTH = None
    one = contention.one_slot_race(200)
    assert one.unexpected == []
    assert (one.booked, one.refused, one.live_at_slot) == (1, 199, 1)
    overlapping = contention.overlapping_courses_race()
    assert overlapping.unexpected == [] and overlapping.overlapping_pairs == 0
    assert 1 <= overlapping.booked <= 4
