"""Review findings (2026-12-01), each a failing test first: the waiting list, chat_arms_only,
the primary time point."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from stopcsam.core import clock
from stopcsam.study.demo import demo_definition
from stopcsam.study.exceptions import ProtocolError
from stopcsam.study.models import Enrolment, ProtocolVersion
from stopcsam.study.protocol import protocol_from_dict
from stopcsam.study.selectors import consort_counts, parsed_protocol
from stopcsam.study.services import (
    chat_offer_if_wait_over,
    protocol_load,
    response_save,
    withdraw,
)
from stopcsam.study.tests.conftest import randomized_to

pytestmark = pytest.mark.django_db


def test_a_participant_who_withdraws_meanwhile_is_not_offered_the_chat(
    version: ProtocolVersion,
) -> None:
    """The study page reads the enrolment, then offers the chat if the wait is over; a
    "stop" sent from another tab in between leaves a withdrawn enrolment with the chat
    offered (and a study.chat_offered audit row after study.withdrawn): chat_offer's UPDATE
    checks only chat_offered=False, not the status."""
    enrolment = randomized_to(version, "waitlist")
    Enrolment.objects.filter(pk=enrolment.pk).update(
        randomized_at=clock.now() - timedelta(days=43)  # week 4's window closed on day 42
    )
    read_by_the_page = Enrolment.objects.get(pk=enrolment.pk)
    withdraw(enrolment=Enrolment.objects.get(pk=enrolment.pk), erase=False)  # other tab
    chat_offer_if_wait_over(enrolment=read_by_the_page)
    stored = Enrolment.objects.get(pk=enrolment.pk)
    assert stored.status == Enrolment.Status.WITHDRAWN
    assert not stored.chat_offered, "a withdrawn participant is recorded as offered the chat"


def test_consort_does_not_count_an_answer_about_the_sessions_as_analysed(
    version: ProtocolVersion,
) -> None:
    """Week 4 (the demo's primary time point) asks 'feedback' of the chat arm only. A chat
    participant who answered that alone, and none of the outcome questionnaires, is counted
    'analysed' instead of 'lost to follow-up': a count only one arm can get."""
    enrolment = randomized_to(version, "chat")
    protocol = parsed_protocol(version)
    assert protocol.primary_time_point.key == "post"
    post = protocol.time_point("post")
    Enrolment.objects.filter(pk=enrolment.pk).update(
        randomized_at=clock.now() - timedelta(days=post.day + 1)
    )
    enrolment.refresh_from_db()
    feedback = protocol.instruments["feedback"]
    answers: dict[str, Any] = {
        item.key: (
            item.option_values()[0]
            if item.options
            else ("I am worried about my urges" if item.type == "text" else 1)
        )
        for item in feedback.items
    }
    response_save(
        enrolment=enrolment, time_point="post", instrument=feedback, answers=answers, complete=True
    )
    Enrolment.objects.filter(pk=enrolment.pk).update(
        randomized_at=clock.now() - timedelta(days=post.day + post.window_days + 1)
    )
    counts = consort_counts(version)
    assert counts["analysed"]["chat"] == 0 and counts["lost_to_follow_up"]["chat"] == 1, counts


def test_a_waitlisted_participant_who_has_had_the_chat_is_asked_about_the_sessions_later(
    db: None,
) -> None:
    """chat_arms_only went by the arm (offers the chat at once) alone: a protocol that asks
    'feedback' at the twelve-week follow-up never asked the waiting list, who had their
    sessions after week 4."""
    definition = demo_definition()
    followup = definition["schedule"][3]
    followup["instruments"] = [*followup["instruments"], "feedback"]
    followup["chat_arms_only"] = ["feedback"]  # e.g. to spare an arm that never has chat
    version = protocol_load(definition=definition)
    enrolment = randomized_to(version, "waitlist")
    Enrolment.objects.filter(pk=enrolment.pk).update(chat_offered=True)  # after week 4
    enrolment.refresh_from_db()
    protocol = parsed_protocol(version)
    arm = protocol.arm(enrolment.arm)
    assert "feedback" in protocol.instruments_at(protocol.time_point("followup"), arm)
    assert "feedback" not in protocol.instruments_at(protocol.time_point("post"), arm)


@pytest.mark.parametrize(
    ("where", "value"),
    [("primary_time_point", ["post"]), ("chat_arms_only", [["feedback"]])],
)
def test_a_malformed_protocol_is_a_protocol_error_not_a_crash(where: str, value: Any) -> None:
    """The admin's protocol form turns ProtocolError into a form error; a TypeError is a 500."""
    definition = demo_definition()
    if where == "chat_arms_only":
        definition["schedule"][2]["chat_arms_only"] = value
    else:
        definition[where] = value
    with pytest.raises(ProtocolError):
        protocol_from_dict(definition)


def test_chat_arms_only_on_the_baseline_is_refused() -> None:
    """Before randomization no arm is known: instruments_for(None) drops chat_arms_only, so
    a baseline instrument named there is silently never asked of anyone, in any arm."""
    definition = demo_definition()
    definition["schedule"][0]["chat_arms_only"] = ["wellbeing"]
    with pytest.raises(ProtocolError):
        protocol_from_dict(definition)


def test_a_stopped_participant_is_not_both_withdrawn_and_lost(version: ProtocolVersion) -> None:
    """One randomized person who stopped before the primary time point is withdrawn, not
    lost to follow-up as well (a review finding: the arm's row added up to more people than
    were randomized, and an erased one counted once)."""
    enrolment = randomized_to(version, "chat")
    withdraw(enrolment=enrolment, erase=False)
    Enrolment.objects.filter(pk=enrolment.pk).update(
        randomized_at=clock.now() - timedelta(days=365)  # the follow-up window has closed
    )
    counts = consort_counts(version)
    assert counts["randomized"]["chat"] == 1
    assert counts["withdrawn_by_arm"]["chat"] == 1
    assert (
        counts["withdrawn_by_arm"]["chat"]
        + counts["lost_to_follow_up"]["chat"]
        + counts["analysed"]["chat"]
        <= counts["randomized"]["chat"]
    ), counts
