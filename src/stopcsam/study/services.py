"""Writes of the study: protocol, screening, enrolment, consent, answers, randomization,
withdrawal. Each function does the whole job (write, tally, audit) in one transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from stopcsam.accounts.models import Participant
from stopcsam.core import clock
from stopcsam.core.audit import audit_record
from stopcsam.core.erasure import forget_deleted
from stopcsam.core.instruments import LANGUAGES, Answer, Instrument, score
from stopcsam.core.signals import participant_withdrawn
from stopcsam.study import randomization
from stopcsam.study.exceptions import (
    AlreadyRandomizedError,
    ConsentChangedError,
    ConsentIncompleteError,
    ProtocolError,
    QuestionnaireNotDueError,
    StepOutOfOrderError,
)
from stopcsam.study.models import (
    ConsentRecord,
    Enrolment,
    ProtocolVersion,
    Response,
    StratumCounter,
    Tally,
)
from stopcsam.study.protocol import Protocol, protocol_from_dict
from stopcsam.study.selectors import (
    instrument_is_open,
    parsed_protocol,
    time_point_complete,
    wait_over,
)

# --- protocol -------------------------------------------------------------------------------


def protocol_load(
    *,
    definition: Mapping[str, Any],
    activate: bool = True,
    actor: str = "system",
    seed: str | None = None,
) -> ProtocolVersion:
    """Validate and store a protocol version with a freshly sealed randomization seed.

    ``seed`` fixes the seed instead, so end-to-end tests can know the allocation sequence;
    only the test-only ``study_load_protocol --seed`` passes it (refused in production).
    """
    protocol = protocol_new(definition)
    if seed is not None and not randomization.is_seed(seed):
        raise ProtocolError(f"seed: {randomization.SEED_BYTES * 2} lowercase hex digits.")
    seed = seed or randomization.new_seed()
    try:
        return _protocol_store(protocol, definition, activate=activate, actor=actor, seed=seed)
    except IntegrityError:
        protocol_new(definition)  # saved by someone else meanwhile: says so
        raise


def protocol_new(definition: Mapping[str, Any]) -> Protocol:
    """The protocol of a definition that can be saved as a new version; ProtocolError if it
    cannot: broken, or its key and version exist already (versions never change)."""
    protocol = protocol_from_dict(definition)
    if ProtocolVersion.objects.filter(key=protocol.key, version=protocol.version).exists():
        raise ProtocolError(
            f"{protocol.key} {protocol.version} exists already: save the changed protocol "
            "under a new version."
        )
    return protocol


def _protocol_store(
    protocol: Protocol, definition: Mapping[str, Any], *, activate: bool, actor: str, seed: str
) -> ProtocolVersion:
    with transaction.atomic():
        if activate:
            ProtocolVersion.objects.filter(is_active=True).update(is_active=False)
        version = ProtocolVersion.objects.create(
            key=protocol.key,
            version=protocol.version,
            definition=dict(definition),
            is_active=activate,
            sealed_seed=seed,
            seed_commitment=randomization.seed_commitment(seed),
        )
        audit_record(
            actor=actor,
            action="study.protocol_loaded",
            subject=str(version),
            detail={"seed_commitment": version.seed_commitment, "active": activate},
        )
    return version


def protocol_activate(*, version: ProtocolVersion, actor: str) -> None:
    with transaction.atomic():
        ProtocolVersion.objects.filter(is_active=True).update(is_active=False)
        ProtocolVersion.objects.filter(pk=version.pk).update(is_active=True)
        audit_record(actor=actor, action="study.protocol_activated", subject=str(version))


# --- screening ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreeningOutcome:
    eligible: bool
    reasons: tuple[str, ...]
    # What the tallies hold for this screening, for the caller to keep (in the session) and
    # hand back when the same screening is sent again: version, day, language and reason.
    counted: dict[str, Any]


def screening_evaluate(
    *,
    version: ProtocolVersion,
    answers: Mapping[str, Answer],
    language: str,
    counted: Mapping[str, Any] | None = None,
) -> ScreeningOutcome:
    """Apply the inclusion rules and count the outcome, once per screening. ``counted`` is
    what an earlier sending of the same screening counted: sent again (a double click, the
    browser's resend, back and send again) it is not counted again, and new answers move its
    exclusion to the latest reason, as the latest answers decide. The answers are never
    stored here: an ineligible person leaves nothing but a count behind."""
    protocol = parsed_protocol(version)
    reasons = tuple(
        rule.reason for rule in protocol.rules if not rule.admits(answers.get(rule.item))
    )
    reason = reasons[0] if reasons else ""
    earlier = counted if counted and counted.get("version") == version.pk else None
    day = date.fromisoformat(earlier["day"]) if earlier else clock.now().date()
    language = earlier["language"] if earlier else language
    with transaction.atomic():
        if earlier is None:
            _tally(version, "screened", "", language, day=day)
        previous = earlier["reason"] if earlier else ""
        if previous != reason:
            if previous:
                _untally(version, "excluded", previous, language, day=day)
            if reason:
                _tally(version, "excluded", reason, language, day=day)
    record = {"version": version.pk, "day": day.isoformat(), "language": language}
    return ScreeningOutcome(
        eligible=not reasons, reasons=reasons, counted={**record, "reason": reason}
    )


def _tally(
    version: ProtocolVersion, event: str, detail: str, language: str, *, day: date | None = None
) -> None:
    key = {
        "protocol": version,
        "day": day or clock.now().date(),
        "event": event,
        "detail": detail,
        "language": language,
    }
    updated = Tally.objects.filter(**key).update(count=F("count") + 1)
    if updated:
        return
    try:
        with transaction.atomic():
            Tally.objects.create(**key, count=1)
    except IntegrityError:  # created by a concurrent request in the meantime
        Tally.objects.filter(**key).update(count=F("count") + 1)


def _untally(
    version: ProtocolVersion, event: str, detail: str, language: str, *, day: date
) -> None:
    """Take back one count of ``_tally`` (a screening's exclusion, when new answers changed it);
    a count back at nought goes, as if it had never been."""
    rows = Tally.objects.filter(
        protocol=version, day=day, event=event, detail=detail, language=language
    )
    rows.filter(count__gt=0).update(count=F("count") - 1)
    rows.filter(count=0).delete()


# --- enrolment and consent ------------------------------------------------------------------


def enrolment_create(
    *, participant: Participant, version: ProtocolVersion, screening_answers: Mapping[str, Answer]
) -> Enrolment:
    protocol = parsed_protocol(version)
    language = _chat_language(participant, screening_answers)
    site = protocol.site_by_language.get(language, "")
    stratum = "|".join(site if factor == "site" else language for factor in protocol.strata)
    with transaction.atomic():
        enrolment, created = Enrolment.objects.get_or_create(
            participant=participant,
            defaults={
                "protocol": version,
                "language": language,
                "site": site,
                "stratum": stratum or "all",
                "screening_answers": json.dumps(dict(screening_answers)),
                "enrolled_at": clock.now(),
            },
        )
        if created and participant.language != language:
            participant.language = language
            participant.save(update_fields=["language"])
        if created:
            audit_record(
                actor="participant",
                action="study.enrolled",
                subject=enrolment.audit_ref,
                detail={"stratum": enrolment.stratum},
            )
    return enrolment


def _chat_language(participant: Participant, answers: Mapping[str, Answer]) -> str:
    """The language chosen at screening to chat in (its item ``language``), where the protocol
    asks and the answer is one the service offers; otherwise the account's. The account's is
    the codename's, chosen at sign-up and defaulting to the page's: someone who screened in
    English and chose to chat in German was booked with English-speaking therapists, their
    site and stratum with them (a review finding). From enrolment on it is the account's too,
    so that booking finds the therapists of that language."""
    chosen = answers.get("language")
    return chosen if isinstance(chosen, str) and chosen in LANGUAGES else participant.language


def consent_record(
    *, enrolment: Enrolment, ticked: Iterable[str], shown: str | None = None
) -> ConsentRecord:
    """Record the consent to the current text. ``shown``, the SHA-256 of the text the page
    showed, must be that text's: ConsentChangedError otherwise. A consent to the same text
    already recorded (the form sent twice) is returned, not recorded again. ``enrolment`` is
    read again when this consent moves it on from eligible (and only then)."""
    protocol = parsed_protocol(enrolment.protocol)
    document = protocol.consent_document(enrolment.language)
    required = {key for key, _text in document.items}
    if set(ticked) != required:
        raise ConsentIncompleteError
    if enrolment.status == Enrolment.Status.WITHDRAWN:
        raise StepOutOfOrderError
    sha256 = document.sha256(protocol.consent_version)
    if shown is not None and shown != sha256:
        raise ConsentChangedError
    now = clock.now()
    with transaction.atomic():
        # Locked, so that a second sending at the same moment sees the first one's record.
        Enrolment.objects.select_for_update().filter(pk=enrolment.pk).first()
        latest = enrolment.consents.order_by("-consented_at", "-pk").first()
        if latest is not None and (latest.document_version, latest.text_sha256) == (
            protocol.consent_version,
            sha256,
        ):
            return latest
        record = ConsentRecord.objects.create(
            enrolment=enrolment,
            document_version=protocol.consent_version,
            language=document.language,
            text_sha256=sha256,
            items=sorted(required),
            consented_at=now,
        )
        if enrolment.status == Enrolment.Status.ELIGIBLE:
            Enrolment.objects.filter(pk=enrolment.pk).update(
                status=Enrolment.Status.CONSENTED, consented_at=now
            )
            enrolment.refresh_from_db()
        audit_record(
            actor="participant",
            action="study.consented",
            subject=enrolment.audit_ref,
            detail={
                "version": protocol.consent_version,
                "language": document.language,
                "sha256": record.text_sha256,
            },
        )
    return record


# --- questionnaires -------------------------------------------------------------------------


def response_save(
    *,
    enrolment: Enrolment,
    time_point: str,
    instrument: Instrument,
    answers: Mapping[str, Answer],
    complete: bool,
) -> Response:
    """Save answers (partially or complete). Completing the baseline randomizes; completing
    a waiting-list arm's offer time point offers the chat. ``enrolment`` is left as this save
    found it (under its lock) and changed it."""
    protocol = parsed_protocol(enrolment.protocol)
    now = clock.now()
    closed, free = _split_answers(instrument, answers)
    with transaction.atomic():
        # The enrolment is locked first (then the response, then randomization's counter),
        # and read again under the lock: two tabs completing the baseline's last two
        # questionnaires at once each counted the other's as unanswered (PostgreSQL), and
        # neither randomized; a withdrawal from another tab meanwhile was not seen.
        try:
            enrolment.refresh_from_db(from_queryset=Enrolment.objects.select_for_update())
        except Enrolment.DoesNotExist:
            raise QuestionnaireNotDueError from None  # erased from another tab meanwhile
        if not instrument_is_open(enrolment, protocol, time_point, instrument.key, now):
            raise QuestionnaireNotDueError
        response, _created = Response.objects.select_for_update().get_or_create(
            enrolment=enrolment,
            time_point=time_point,
            instrument=instrument.key,
            defaults={"instrument_version": instrument.version, "started_at": now},
        )
        if response.completed_at is not None:
            raise QuestionnaireNotDueError
        response.answers, response.free_text = closed, json.dumps(free)
        response.scores = score(instrument, closed) if complete else {}
        response.completed_at = now if complete else None
        response.save(update_fields=["answers", "free_text", "scores", "completed_at"])
        if complete:
            _after_completion(enrolment, protocol, time_point)
    return response


def _split_answers(
    instrument: Instrument, answers: Mapping[str, Answer]
) -> tuple[dict[str, Any], dict[str, Any]]:
    closed, free = {}, {}
    for item in instrument.items:
        value = answers.get(item.key)
        if value is None:
            continue
        if item.type == "text":
            free[item.key] = value
        else:
            closed[item.key] = value
    return closed, free


def _after_completion(enrolment: Enrolment, protocol: Protocol, time_point: str) -> None:
    if not time_point_complete(enrolment, protocol, time_point):
        return
    if time_point == protocol.baseline.key and enrolment.status == Enrolment.Status.CONSENTED:
        randomize(enrolment=enrolment)
        return
    enrolment.refresh_from_db()
    if enrolment.arm and protocol.arm(enrolment.arm).offers_chat_after == time_point:
        chat_offer(enrolment=enrolment)


# --- randomization --------------------------------------------------------------------------


def randomize(*, enrolment: Enrolment) -> str:
    """Assign the next allocation of the enrolment's stratum, exactly once.

    The enrolment row is locked first, then the stratum counter, always in that order.
    On SQLite the IMMEDIATE transaction already holds the database's write lock.
    """
    with transaction.atomic():
        locked = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
        if locked.arm:
            raise AlreadyRandomizedError
        if locked.status != Enrolment.Status.CONSENTED:
            raise StepOutOfOrderError
        version = locked.protocol
        protocol = parsed_protocol(version)
        counter = _locked_counter(version, locked.stratum)
        position = counter.next_position
        arm = randomization.arm_at(
            version.sealed_seed,
            locked.stratum,
            position,
            tuple(protocol.block_base()),
            protocol.block_multipliers,
        )
        StratumCounter.objects.filter(pk=counter.pk).update(next_position=position + 1)
        now = clock.now()
        Enrolment.objects.filter(pk=locked.pk).update(
            arm=arm,
            allocation_position=position,
            randomized_at=now,
            status=Enrolment.Status.RANDOMIZED,
            chat_offered=protocol.arm(arm).offers_chat,
        )
        _tally(version, "randomized", arm, locked.language)
        audit_record(
            actor="system",
            action="study.randomized",
            subject=locked.audit_ref,
            detail={"stratum": locked.stratum, "position": position, "arm": arm},
        )
    enrolment.refresh_from_db()
    return arm


def _locked_counter(version: ProtocolVersion, stratum: str) -> StratumCounter:
    if connection.vendor == "postgresql":
        # Creating the counter row must not race: serialise per stratum with an advisory lock.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"study:{version.pk}:{stratum}"]
            )
    counter, _created = StratumCounter.objects.select_for_update().get_or_create(
        protocol=version, stratum=stratum
    )
    return counter


def chat_offer_if_wait_over(*, enrolment: Enrolment) -> None:
    """Offer the chat to a waiting-list participant whose wait ended without their answers
    (``selectors.wait_over``); on their next visit, which is when it matters to them."""
    protocol = parsed_protocol(enrolment.protocol)
    if wait_over(enrolment, protocol, clock.now()):
        chat_offer(enrolment=enrolment)


def chat_offer(*, enrolment: Enrolment) -> None:
    with transaction.atomic():
        # Only while randomized: a withdrawal from another tab since the enrolment was read
        # is not undone (a review finding).
        updated = Enrolment.objects.filter(
            pk=enrolment.pk, chat_offered=False, status=Enrolment.Status.RANDOMIZED
        ).update(chat_offered=True)
        if updated:
            audit_record(actor="system", action="study.chat_offered", subject=enrolment.audit_ref)
    enrolment.refresh_from_db()


# --- withdrawal -----------------------------------------------------------------------------


def withdraw(*, enrolment: Enrolment, erase: bool) -> None:
    """Stop taking part. With ``erase`` every row of the participant is deleted for real:
    the enrolment, consent records, answers, and the account itself."""
    now = clock.now()
    with transaction.atomic():
        version, language, ref = enrolment.protocol, enrolment.language, enrolment.audit_ref
        if erase:
            _count_erasure(enrolment)
            participant = Participant.objects.filter(pk=enrolment.participant_id).first()
            if participant is None:  # erased by a request sent just before (a double click)
                return
            participant.delete()  # cascades to enrolment, consents, responses
            audit_record(actor="participant", action="study.withdrawn_and_erased", subject=ref)
            forget_deleted()
            return
        updated = (
            Enrolment.objects.filter(pk=enrolment.pk)
            .exclude(status=Enrolment.Status.WITHDRAWN)
            .update(status=Enrolment.Status.WITHDRAWN, withdrawn_at=now, chat_offered=False)
        )
        if updated:  # "stop" pressed again changes and counts nothing
            _tally(version, "withdrawn", "stop", language)
            _tally_arm_withdrawal(enrolment)
            audit_record(actor="participant", action="study.withdrawn", subject=ref)
            participant_withdrawn.send(sender=Enrolment, participant_id=enrolment.participant_id)


def withdrawal_on_account_deletion(*, participant_id: int) -> None:
    """A participant deleted their whole account (accounts' "Delete my account") rather than
    withdrawing: for the study that is a withdrawal with erasure, counted like one (the flow
    diagram would lose them otherwise). Called before the rows go."""
    enrolment = Enrolment.objects.filter(participant_id=participant_id).first()
    if enrolment is not None and _count_erasure(enrolment):
        audit_record(
            actor="participant", action="study.withdrawn_and_erased", subject=enrolment.audit_ref
        )


def _count_erasure(enrolment: Enrolment) -> bool:
    """Count a withdrawal with erasure, once per person: one who stopped before was counted
    then. Whether it was counted now. The row is locked first: a "stop" from another tab,
    not yet committed, was not seen, and the person was counted twice (PostgreSQL)."""
    status = (
        Enrolment.objects.select_for_update()
        .filter(pk=enrolment.pk)
        .values_list("status", flat=True)
        .first()
    )
    if status is None or status == Enrolment.Status.WITHDRAWN:  # gone: erased meanwhile
        return False
    _tally(enrolment.protocol, "withdrawn", "erase", enrolment.language)
    _tally_arm_withdrawal(enrolment)
    return True


def _tally_arm_withdrawal(enrolment: Enrolment) -> None:
    """Count a randomized participant's withdrawal under their arm too, for the CONSORT
    flow's withdrawals by arm (an erased person's arm survives only in this count)."""
    arm = Enrolment.objects.filter(pk=enrolment.pk).values_list("arm", flat=True).first()
    if arm:
        _tally(enrolment.protocol, "withdrawn_from", arm, enrolment.language)


# --- scheduling's outcomes ------------------------------------------------------------------


OUTCOME_FIELDS = {
    "attended": "sessions_attended",
    "no_show": "sessions_missed",
    "cancelled": "sessions_cancelled",
}


def session_outcome_count(*, participant_id: int, outcome: str) -> None:
    field = OUTCOME_FIELDS.get(outcome)
    if field:
        Enrolment.objects.filter(participant_id=participant_id).update(**{field: F(field) + 1})
