from __future__ import annotations

import copy
from typing import Any

import pytest

from stopcsam.accounts.models import Participant
from stopcsam.accounts.services import participant_create
from stopcsam.study.demo import demo_definition
from stopcsam.study.models import Enrolment, ProtocolVersion
from stopcsam.study.selectors import parsed_protocol
from stopcsam.study.services import (
    consent_record,
    enrolment_create,
    protocol_load,
    response_save,
)

SCREEN_OK = {"age": 30, "recent_use": "yes", "language": "en", "in_treatment": "no"}


def four_arm_definition() -> dict[str, Any]:
    """The follow-up trial: self-help, chat, both, waiting list (1:1:1:1)."""
    definition = copy.deepcopy(demo_definition())
    definition["key"] = "stop-csam-factorial"
    definition["arms"] = [
        {"key": "selfhelp", "label": {"en": "Self-help"}, "ratio": 1},
        {"key": "chat", "label": {"en": "Chat"}, "ratio": 1, "offers_chat": True},
        {"key": "both", "label": {"en": "Self-help and chat"}, "ratio": 1, "offers_chat": True},
        {
            "key": "waitlist",
            "label": {"en": "Waiting list"},
            "ratio": 1,
            "offers_chat_after": "followup",
        },
    ]
    return definition


@pytest.fixture
def version(db: None) -> ProtocolVersion:
    return protocol_load(definition=demo_definition())


def enrolled(
    version: ProtocolVersion, language: str = "en", *, consented: bool = True
) -> Enrolment:
    participant, _codename = participant_create(language=language)
    enrolment = enrolment_create(
        participant=participant,
        version=version,
        screening_answers={**SCREEN_OK, "language": language},
    )
    if consented:
        document = version_protocol(version).consent_document(language)
        consent_record(enrolment=enrolment, ticked=[key for key, _ in document.items])
        enrolment.refresh_from_db()
    return enrolment


def version_protocol(version: ProtocolVersion) -> Any:
    from stopcsam.study.selectors import parsed_protocol

    return parsed_protocol(version)


@pytest.fixture
def enrolment(version: ProtocolVersion) -> Enrolment:
    return enrolled(version)


def participant_of(enrolment: Enrolment) -> Participant:
    return enrolment.participant


def answer_baseline(
    enrolment: Enrolment, instrument: Any, n: int = 0, text: str = "I am worried about my urges"
) -> None:
    """Complete one baseline instrument: the ``n``-th option of each choice, ``n`` for each
    number, ``text`` for each free-text item."""
    answers = {
        item.key: (
            item.option_values()[n % len(item.options)]
            if item.options
            else (text if item.type == "text" else n)
        )
        for item in instrument.items
    }
    response_save(
        enrolment=enrolment,
        time_point="baseline",
        instrument=instrument,
        answers=answers,
        complete=True,
    )


def answered_baseline(
    version: ProtocolVersion, participants: int = 3, text: str = "I am worried about my urges"
) -> list[Enrolment]:
    """Participants who answered every baseline instrument (which randomizes them), with
    ``text`` for each free-text item."""
    protocol = parsed_protocol(version)
    enrolments = []
    for n in range(participants):
        enrolment = enrolled(version, ["en", "de", "cs"][n % 3])
        for name in protocol.baseline.instruments:
            instrument = protocol.instruments[name]
            answer_baseline(enrolment, instrument, n, text)
        enrolment.refresh_from_db()
        enrolments.append(enrolment)
    return enrolments


def randomized_to(version: ProtocolVersion, arm: str) -> Enrolment:
    """An enrolled participant randomized to ``arm``."""
    from unittest import mock

    from stopcsam.study.services import randomize

    enrolment = enrolled(version)
    with mock.patch("stopcsam.study.randomization.arm_at", return_value=arm):
        randomize(enrolment=enrolment)
    enrolment.refresh_from_db()
    return enrolment


def signed_in(enrolment: Enrolment) -> Any:
    """A browser signed in as the enrolment's participant."""
    from django.test import Client

    client = Client()
    session = client.session
    session["participant_id"] = enrolment.participant_id
    session.save()
    return client
