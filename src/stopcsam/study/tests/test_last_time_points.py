"""The close of a participant's last study time point: where chat's retention clock starts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from stopcsam.accounts.services import participant_create
from stopcsam.study.models import Enrolment, ProtocolVersion
from stopcsam.study.selectors import last_time_points, parsed_protocol
from stopcsam.study.services import randomize, withdraw
from stopcsam.study.tests.conftest import enrolled

pytestmark = pytest.mark.django_db


def _randomized(version: ProtocolVersion) -> Enrolment:
    enrolment = enrolled(version)
    randomize(enrolment=enrolment)
    enrolment.refresh_from_db()
    return enrolment


def test_it_dates_the_end_of_the_last_answer_window(version: ProtocolVersion) -> None:
    enrolment = _randomized(version)
    followup = parsed_protocol(version).schedule[-1]
    assert enrolment.randomized_at is not None
    closes = enrolment.randomized_at + timedelta(days=followup.day + followup.window_days)
    assert last_time_points(participant_ids=[enrolment.participant_id]) == {
        enrolment.participant_id: closes
    }
    assert closes == enrolment.randomized_at + timedelta(days=84 + 21)  # the demo schedule


def test_it_cannot_date_it_before_randomization(version: ProtocolVersion) -> None:
    consented = enrolled(version)
    only_eligible = enrolled(version, consented=False)
    ids = [consented.participant_id, only_eligible.participant_id]
    assert last_time_points(participant_ids=ids) == dict.fromkeys(ids)


def test_it_leaves_out_participants_without_enrolment(version: ProtocolVersion) -> None:
    outside, _codename = participant_create(language="en")
    assert last_time_points(participant_ids=[outside.pk]) == {}


def test_a_withdrawal_before_randomization_ends_the_schedule(version: ProtocolVersion) -> None:
    enrolment = enrolled(version)
    withdraw(enrolment=enrolment, erase=False)
    enrolment.refresh_from_db()
    assert enrolment.withdrawn_at is not None
    assert last_time_points(participant_ids=[enrolment.participant_id]) == {
        enrolment.participant_id: enrolment.withdrawn_at
    }


def test_a_withdrawal_after_randomization_keeps_the_schedule(version: ProtocolVersion) -> None:
    enrolment = _randomized(version)
    withdraw(enrolment=enrolment, erase=False)
    [closes] = last_time_points(participant_ids=[enrolment.participant_id]).values()
    assert enrolment.randomized_at is not None
    assert closes == enrolment.randomized_at + timedelta(days=84 + 21)


def test_it_dates_many_participants_in_one_query(
    version: ProtocolVersion, django_assert_num_queries
) -> None:
    ids = [_randomized(version).participant_id for _ in range(5)]
    ids.append(enrolled(version).participant_id)
    parsed_protocol(version)  # warm the parse cache, as the running service has it
    with django_assert_num_queries(1):
        found = last_time_points(participant_ids=ids)
    assert sorted(found) == sorted(ids)
    assert [found[pid] is None for pid in ids] == [False] * 5 + [True]


def test_chat_is_wired_to_it() -> None:
    assert import_string(settings.STOPCSAM_LAST_TIME_POINTS) is last_time_points
