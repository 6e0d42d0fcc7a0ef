"""Reads of the study: the active protocol, what is due, CONSORT counts, hooks for siblings."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Count, Sum

from stopcsam.accounts.models import Participant
from stopcsam.core import clock
from stopcsam.study.exceptions import NoActiveProtocolError
from stopcsam.study.models import ConsentRecord, Enrolment, ProtocolVersion, Response, Tally
from stopcsam.study.protocol import Arm, Protocol, TimePoint, protocol_from_dict


def active_protocol_version() -> ProtocolVersion:
    version = ProtocolVersion.objects.filter(is_active=True).first()
    if version is None:
        raise NoActiveProtocolError
    return version


def parsed_protocol(version: ProtocolVersion) -> Protocol:
    return _parse(version.pk, version.key, version.version, _frozen(version.definition))


@lru_cache(maxsize=16)
def _parse(pk: int, key: str, version: str, definition: Any) -> Protocol:
    import json

    return protocol_from_dict(json.loads(definition))


def _frozen(definition: Any) -> str:
    import json

    return json.dumps(definition, sort_keys=True)


def participant_enrolment(participant: Participant | None) -> Enrolment | None:
    if not participant:
        return None
    return Enrolment.objects.select_related("protocol").filter(participant=participant).first()


def study_id(version: ProtocolVersion, enrolment_pk: int) -> str:
    """A participant's pseudonym in one study: keyed, stable, and never their database id."""
    key = settings.STOPCSAM_LOOKUP_KEY.encode()
    message = f"study-id|{version.key}|{enrolment_pk}".encode()
    return "S" + hmac.new(key, message, hashlib.sha256).hexdigest()[:14].upper()


def participant_study_id(participant_id: int) -> str | None:
    """The pseudonymous study id staff see (the same as in the export); None if not enrolled."""
    enrolment = (
        Enrolment.objects.select_related("protocol").filter(participant_id=participant_id).first()
    )
    return study_id(enrolment.protocol, enrolment.pk) if enrolment else None


# --- time points ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    opens: datetime
    closes: datetime


def window(enrolment: Enrolment, point: TimePoint) -> Window | None:
    """When a time point can be answered; None while its anchor has not happened yet."""
    anchor = enrolment.consented_at if point.before_randomization else enrolment.randomized_at
    if anchor is None:
        return None
    opens = anchor + timedelta(days=point.day)
    return Window(opens=opens, closes=opens + timedelta(days=point.window_days))


def chat_offer_opens(enrolment: Enrolment, protocol: Protocol) -> datetime | None:
    """When a waiting-list participant can answer the questionnaire after which the chat
    sessions are offered; None for an arm that offers chat at once, or never."""
    if not enrolment.arm or enrolment.chat_offered:
        return None
    after = protocol.arm(enrolment.arm).offers_chat_after
    span = window(enrolment, protocol.time_point(after)) if after else None
    return span.opens if span else None


def instrument_is_open(
    enrolment: Enrolment, protocol: Protocol, time_point: str, instrument: str, now: datetime
) -> bool:
    if enrolment.status == Enrolment.Status.WITHDRAWN:
        return False
    try:
        point = protocol.time_point(time_point)
    except KeyError:
        return False
    span = window(enrolment, point)
    asked = protocol.instruments_at(point, _arm(enrolment, protocol))
    if instrument not in asked or span is None:
        return False
    # Baseline stays open until randomization, however long consent took.
    if point.before_randomization:
        return enrolment.status == Enrolment.Status.CONSENTED
    return span.opens <= now < span.closes


def instrument_awaits_answers(
    enrolment: Enrolment, protocol: Protocol, time_point: str, instrument: str, now: datetime
) -> bool:
    """Open and not yet completed."""
    if not instrument_is_open(enrolment, protocol, time_point, instrument, now):
        return False
    return not instrument_completed(enrolment, time_point, instrument)


def instrument_completed(enrolment: Enrolment, time_point: str, instrument: str) -> bool:
    return Response.objects.filter(
        enrolment=enrolment,
        time_point=time_point,
        instrument=instrument,
        completed_at__isnull=False,
    ).exists()


def time_point_complete(enrolment: Enrolment, protocol: Protocol, time_point: str) -> bool:
    asked = protocol.instruments_at(protocol.time_point(time_point), _arm(enrolment, protocol))
    done = Response.objects.filter(
        enrolment=enrolment,
        time_point=time_point,
        instrument__in=asked,
        completed_at__isnull=False,
    ).count()
    return done == len(asked)


def _arm(enrolment: Enrolment, protocol: Protocol) -> Arm | None:
    return protocol.arm(enrolment.arm) if enrolment.arm else None


def wait_over(enrolment: Enrolment, protocol: Protocol, now: datetime) -> bool:
    """Has a waiting-list participant's wait ended without their answers: the time point
    after which the chat is offered has closed? Its questionnaires open the chat at once;
    a participant who missed them is offered it when their window closes (a review finding:
    they never were)."""
    if enrolment.status != Enrolment.Status.RANDOMIZED or enrolment.chat_offered:
        return False
    after = _arm(enrolment, protocol)
    if after is None or not after.offers_chat_after:
        return False
    span = window(enrolment, protocol.time_point(after.offers_chat_after))
    return span is not None and span.closes <= now


@dataclass(frozen=True)
class DueItem:
    time_point: TimePoint
    instrument: str
    started: bool
    closes: datetime


def due_questionnaires(enrolment: Enrolment) -> list[DueItem]:
    """Open questionnaires not yet completed, in schedule order."""
    protocol = parsed_protocol(enrolment.protocol)
    now = clock.now()
    responses = {(r.time_point, r.instrument): r for r in enrolment.responses.all()}
    due = []
    for point in protocol.schedule:
        span = window(enrolment, point)
        for name in protocol.instruments_at(point, _arm(enrolment, protocol)):
            if not instrument_is_open(enrolment, protocol, point.key, name, now) or span is None:
                continue
            response = responses.get((point.key, name))
            if response is None or response.completed_at is None:
                due.append(DueItem(point, name, response is not None, span.closes))
    return due


def needs_consent(enrolment: Enrolment) -> bool:
    """True before the first consent, and again when a newer consent version exists."""
    if enrolment.status == Enrolment.Status.WITHDRAWN:
        return False
    protocol = parsed_protocol(enrolment.protocol)
    latest = ConsentRecord.objects.filter(enrolment=enrolment).order_by("-consented_at").first()
    return latest is None or latest.document_version != protocol.consent_version


def saved_answers(enrolment: Enrolment, time_point: str, instrument: str) -> dict[str, Any]:
    import json

    response = Response.objects.filter(
        enrolment=enrolment, time_point=time_point, instrument=instrument
    ).first()
    if response is None:
        return {}
    return {**response.answers, **json.loads(response.free_text or "{}")}


# --- hooks for scheduling (called by dotted path; scheduling never imports study) ------------


def participant_may_book(participant: Participant) -> bool:
    enrolment = participant_enrolment(participant)
    if enrolment is None or enrolment.status != Enrolment.Status.RANDOMIZED:
        return False
    if enrolment.chat_offered:
        return True
    return wait_over(enrolment, parsed_protocol(enrolment.protocol), clock.now())


def course_length(participant: Participant) -> int:
    enrolment = participant_enrolment(participant)
    if enrolment is None:
        return 4
    return parsed_protocol(enrolment.protocol).course_sessions


# --- hooks for chat (called by dotted path; chat never imports study) ----------------------


def last_time_points(*, participant_ids: Collection[int]) -> dict[int, datetime | None]:
    """When each participant's last study time point closes: chat's retention clock.

    Participants without an enrolment are left out (chat then goes by its own sessions).
    None means the schedule cannot be dated yet (randomization has not happened): the
    participant is still in the study. Someone who withdrew before that never will be
    dated, so their withdrawal ends it. One query, however many participants.
    """
    enrolments = Enrolment.objects.select_related("protocol").filter(
        participant_id__in=participant_ids
    )
    return {enrolment.participant_id: _last_window_close(enrolment) for enrolment in enrolments}


def _last_window_close(enrolment: Enrolment) -> datetime | None:
    spans = [window(enrolment, point) for point in parsed_protocol(enrolment.protocol).schedule]
    closes = [span.closes for span in spans if span is not None]
    if len(closes) == len(spans):
        return max(closes)
    return enrolment.withdrawn_at


# --- CONSORT --------------------------------------------------------------------------------


def consort_counts(version: ProtocolVersion) -> dict[str, Any]:
    """The CONSORT flow. Counts survive erasure: they come from tallies without identity,
    except the follow-up figures, which only exist for people still in the study."""
    protocol = parsed_protocol(version)
    tallies = (
        Tally.objects.filter(protocol=version)
        .values("event", "detail")
        .annotate(total=Sum("count"))
    )
    counted: dict[tuple[str, str], int] = {(t["event"], t["detail"]): t["total"] for t in tallies}
    arms = [arm.key for arm in protocol.arms]
    enrolments = Enrolment.objects.filter(protocol=version).exclude(arm="")
    received = dict(
        enrolments.filter(sessions_attended__gt=0).values_list("arm").annotate(n=Count("pk"))
    )
    followup = protocol.primary_time_point
    analysed, lost = _followup_counts(enrolments, protocol, followup)
    return {
        "assessed": counted.get(("screened", ""), 0),
        "excluded": sum(v for (event, _), v in counted.items() if event == "excluded"),
        "excluded_reasons": {
            detail: v for (event, detail), v in counted.items() if event == "excluded"
        },
        "randomized": {arm: counted.get(("randomized", arm), 0) for arm in arms},
        "received_allocated_intervention": {
            arm.key: (
                received.get(arm.key, 0)
                if arm.offers_chat
                else counted.get(("randomized", arm.key), 0)
            )
            for arm in protocol.arms
        },
        "withdrawn": {
            "stop": counted.get(("withdrawn", "stop"), 0),
            "erase": counted.get(("withdrawn", "erase"), 0),
        },
        # Randomized participants only, whether they kept their answers or erased them.
        "withdrawn_by_arm": {arm: counted.get(("withdrawn_from", arm), 0) for arm in arms},
        "lost_to_follow_up": lost,
        "analysed": analysed,
    }


def _followup_counts(
    enrolments: Any, protocol: Protocol, followup: TimePoint
) -> tuple[dict[str, int], dict[str, int]]:
    now = clock.now()
    analysed = {arm.key: 0 for arm in protocol.arms}
    lost = {arm.key: 0 for arm in protocol.arms}
    completed = set(
        Response.objects.filter(
            enrolment__in=enrolments,
            time_point=followup.key,
            # Only what every arm is asked: an answer about the sessions, which one arm
            # alone gives, made a chat participant "analysed" (a review finding).
            instrument__in=followup.instruments_for_every_arm,
            completed_at__isnull=False,
        ).values_list("enrolment_id", flat=True)
    )
    for enrolment in enrolments.only("pk", "arm", "randomized_at", "status", "consented_at"):
        if enrolment.pk in completed:
            analysed[enrolment.arm] += 1
            continue
        if enrolment.status == Enrolment.Status.WITHDRAWN:
            continue  # counted as withdrawn, not lost as well (a review finding)
        span = window(enrolment, followup)
        if span is not None and span.closes <= now:
            lost[enrolment.arm] += 1
    return analysed, lost
