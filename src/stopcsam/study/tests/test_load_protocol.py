"""`study_load_protocol --seed`: a known randomization seed, for end-to-end tests only."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from stopcsam.study import randomization
from stopcsam.study.demo import DEMO_PROTOCOL
from stopcsam.study.models import ProtocolVersion
from stopcsam.study.services import randomize
from stopcsam.study.tests.conftest import enrolled

KNOWN_SEED = "ab" * randomization.SEED_BYTES


@pytest.mark.django_db
def test_it_refuses_a_known_seed_in_production_settings(settings: Any) -> None:
    settings.DEMO_MODE = settings.DEBUG = settings.STOPCSAM_TEST_CLOCK = False
    with pytest.raises(CommandError, match="--seed is for tests only"):
        call_command("study_load_protocol", str(DEMO_PROTOCOL), seed=KNOWN_SEED)
    assert not ProtocolVersion.objects.exists()


@pytest.mark.django_db
def test_a_known_seed_fixes_the_sequence_with_the_test_clock(settings: Any) -> None:
    settings.DEMO_MODE, settings.STOPCSAM_TEST_CLOCK = False, True
    call_command("study_load_protocol", str(DEMO_PROTOCOL), seed=KNOWN_SEED, stdout=io.StringIO())
    version = ProtocolVersion.objects.get(is_active=True)
    assert version.sealed_seed == KNOWN_SEED
    assert version.seed_commitment == randomization.seed_commitment(KNOWN_SEED)
    arms = [randomize(enrolment=enrolled(version, "cs")) for _ in range(6)]
    assert arms == randomization.allocations(
        KNOWN_SEED, "CZ|cs", 6, ("chat", "waitlist"), (1, 2, 3)
    )


@pytest.mark.django_db
def test_it_rejects_a_malformed_seed(settings: Any) -> None:
    settings.DEBUG = True
    with pytest.raises(CommandError, match="hex digits"):
        call_command("study_load_protocol", str(DEMO_PROTOCOL), seed="not-a-seed")
    assert not ProtocolVersion.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_version_loaded_before_with_the_reason() -> None:
    call_command("study_load_protocol", str(DEMO_PROTOCOL), stdout=io.StringIO())
    with pytest.raises(CommandError, match="exists already"):
        call_command("study_load_protocol", str(DEMO_PROTOCOL), stdout=io.StringIO())
    assert ProtocolVersion.objects.count() == 1
