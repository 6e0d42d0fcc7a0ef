from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from stopcsam.core import clock
from stopcsam.core.checks import check_test_clock


def test_the_clock_is_real_time_when_the_test_clock_is_off(tmp_path: Path) -> None:
    with override_settings(STOPCSAM_TEST_CLOCK=False, VAR_DIR=tmp_path):
        clock.set_offset(timedelta(days=30))
        assert abs(clock.now() - timezone.now()) < timedelta(seconds=1)


@override_settings(STOPCSAM_TEST_CLOCK=True, DEMO_MODE=True)
def test_the_test_clock_moves_and_resets(tmp_path: Path) -> None:
    with override_settings(VAR_DIR=tmp_path):
        call_command("testclock", "+3d", stdout=io.StringIO())
        assert timedelta(days=3) - (clock.now() - timezone.now()) < timedelta(seconds=2)
        call_command("testclock", "+2h", stdout=io.StringIO())
        assert clock.now() - timezone.now() > timedelta(days=3, hours=1, minutes=59)
        call_command("testclock", "2030-01-01T09:00:00+00:00", stdout=io.StringIO())
        assert clock.now().year == 2030
        call_command("testclock", "reset", stdout=io.StringIO())
        assert abs(clock.now() - timezone.now()) < timedelta(seconds=1)
        for bad in ("tomorrow", "2030-01-01T09:00:00"):
            with pytest.raises(CommandError):
                call_command("testclock", bad)


@override_settings(STOPCSAM_TEST_CLOCK=True, DEMO_MODE=False, DEBUG=False)
def test_a_production_configuration_refuses_the_test_clock() -> None:
    assert [e.id for e in check_test_clock()] == ["stopcsam.E006"]


def test_the_server_refuses_to_start_with_the_test_clock_in_production(tmp_path: Path) -> None:
    from stopcsam.core.tests.test_checks import PRODUCTION_ENV, _run

    result = _run(
        ["serve", "--port", "0"], {**PRODUCTION_ENV, "STOPCSAM_TEST_CLOCK": "1"}, tmp_path
    )
    assert result.returncode != 0 and "stopcsam.E006" in result.stderr


@override_settings(STOPCSAM_TEST_CLOCK=True, DEMO_MODE=True)
def test_demo_mode_may_use_it() -> None:
    assert check_test_clock() == []
