"""Thin views for the participant's way through the study and for researchers' exports."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import get_language
from django.views.decorators.http import require_http_methods

from stopcsam.accounts.decorators import participant_required, staff_verified_required
from stopcsam.accounts.models import Role
from stopcsam.accounts.sessions import participant_logout
from stopcsam.core import crypto
from stopcsam.core.audit import audit_record
from stopcsam.core.instruments import instrument_form, localised
from stopcsam.core.signals import funnel_step
from stopcsam.core.zones import in_reader_zone
from stopcsam.study import export, selectors, services
from stopcsam.study.exceptions import (
    ConsentChangedError,
    ConsentIncompleteError,
    NoActiveProtocolError,
    QuestionnaireNotDueError,
    StepOutOfOrderError,
)
from stopcsam.study.forms import ConsentForm, ExportForm, WithdrawForm
from stopcsam.study.models import Enrolment

PENDING_SCREENING = "study_pending_screening"
SCREENING_STARTED = "study_screening_started"
SCREENING_ELIGIBLE = "study_screening_eligible"
SCREENING_COUNTED = "study_screening_counted"
PENDING_CONTEXT = "study.pending_screening"
COUNTED_CONTEXT = "study.counted_screening"


def _posted(request: HttpRequest) -> QueryDict | None:
    return request.POST if request.method == "POST" else None


def _status(form: Any) -> int:
    return 400 if form.is_bound and form.errors else 200


# --- screening ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def screening_start(request: HttpRequest) -> HttpResponseBase:
    try:
        version = selectors.active_protocol_version()
    except NoActiveProtocolError:
        return render(request, "study/closed.html", status=503)
    if selectors.participant_enrolment(request.participant) is not None:  # type: ignore[attr-defined]
        return redirect("study:home")  # screened and enrolled: not assessed a second time
    protocol = selectors.parsed_protocol(version)
    language = get_language() or "en"
    # Once per browser session each (a screening sent again is the same screening): the
    # funnel's "started" and "eligible" counted every sending.
    if not request.session.get(SCREENING_STARTED):
        request.session[SCREENING_STARTED] = True
        funnel_step.send(sender=screening_start, step="screening_started", request=request)
    form = instrument_form(
        protocol.screening, language=language, data=_posted(request), initial={"language": language}
    )
    if request.method == "POST" and form.is_valid():
        # The latest answers decide: an earlier eligible screening kept in the session must
        # not enrol someone whose answers now exclude them.
        request.session.pop(PENDING_SCREENING, None)
        outcome, first_eligible = _screening_counted_once(
            request, version, form.answers(), language
        )
        if not outcome.eligible:
            return render(request, "study/not_eligible.html", {"reasons": outcome.reasons})
        if first_eligible:
            funnel_step.send(sender=screening_start, step="eligible", request=request)
        sealed = crypto.encrypt(json.dumps(form.answers()), context=PENDING_CONTEXT)
        request.session[PENDING_SCREENING] = {"version": version.pk, "answers": sealed}
        return redirect("study:eligible")
    return render(
        request, "study/screening.html", {"form": form, "protocol": protocol}, status=_status(form)
    )


def _screening_counted_once(
    request: HttpRequest, version: Any, answers: dict[str, Any], language: str
) -> tuple[services.ScreeningOutcome, bool]:
    """Evaluate a screening, counted once per browser session: what it counted is kept in
    the session. Its row is locked and read again first, and the count saved before the lock
    goes: two sendings at once (a double click with JavaScript off) had each read the session
    before the other saved it, and counted the person twice. With the outcome: whether the
    session's screening is eligible for the first time (the funnel's step)."""
    session = request.session
    with transaction.atomic():
        sessions = session.model.objects  # type: ignore[attr-defined]  # the database engine
        row = sessions.select_for_update().filter(session_key=session.session_key)
        stored = row.values_list("session_data", flat=True).first()
        latest = session.decode(stored) if stored is not None else dict(session.items())
        outcome = services.screening_evaluate(
            version=version,
            answers=answers,
            language=language,
            counted=_opened(latest.get(SCREENING_COUNTED)),
        )
        # Sealed, as the pending answers are: it names the reason a person was excluded.
        record = json.dumps(outcome.counted)
        session[SCREENING_COUNTED] = crypto.encrypt(record, context=COUNTED_CONTEXT)
        first_eligible = outcome.eligible and not latest.get(SCREENING_ELIGIBLE)
        session[SCREENING_ELIGIBLE] = bool(latest.get(SCREENING_ELIGIBLE)) or outcome.eligible
        if stored is not None:  # gone meanwhile (signed out in another tab): not brought back
            session.save()
    return outcome, first_eligible


def _opened(sealed: str | None) -> dict[str, Any] | None:
    """A counted screening kept in the session; None if there is none, or if it no longer
    opens (its key retired): then the screening is counted anew rather than failing."""
    if not sealed:
        return None
    try:
        opened: dict[str, Any] = json.loads(crypto.decrypt(sealed, context=COUNTED_CONTEXT))
    except crypto.EncryptionError:
        return None
    return opened


def eligible(request: HttpRequest) -> HttpResponseBase:
    if PENDING_SCREENING not in request.session:
        return redirect("study:screening_start")
    enrol_url = reverse("study:enrol")
    if request.participant:  # type: ignore[attr-defined]
        return redirect(enrol_url)
    return render(
        request,
        "study/eligible.html",
        {"signup_url": f"{reverse('accounts:signup')}?next={enrol_url}"},
    )


@participant_required
def enrol(request: HttpRequest) -> HttpResponseBase:
    pending = request.session.get(PENDING_SCREENING)
    enrolment = selectors.participant_enrolment(request.participant)  # type: ignore[attr-defined]
    if enrolment is None and pending:
        from stopcsam.study.models import ProtocolVersion

        version = ProtocolVersion.objects.get(pk=pending["version"])
        answers = json.loads(crypto.decrypt(pending["answers"], context=PENDING_CONTEXT))
        services.enrolment_create(
            participant=request.participant,  # type: ignore[attr-defined]
            version=version,
            screening_answers=answers,
        )
        del request.session[PENDING_SCREENING]
    elif enrolment is None:
        return redirect("study:screening_start")
    return redirect("study:home")


# --- the participant's study page -----------------------------------------------------------


@participant_required
@in_reader_zone
def home(request: HttpRequest) -> HttpResponseBase:
    enrolment = selectors.participant_enrolment(request.participant)  # type: ignore[attr-defined]
    if enrolment is None:
        return render(request, "study/home_not_enrolled.html")
    if selectors.needs_consent(enrolment):
        return redirect("study:consent")
    services.chat_offer_if_wait_over(enrolment=enrolment)
    protocol = selectors.parsed_protocol(enrolment.protocol)
    language = get_language() or "en"
    due = [
        {
            "title": localised(protocol.instruments[item.instrument].title, language),
            "time_point": localised(item.time_point.label, language),
            "started": item.started,
            "url": reverse("study:questionnaire", args=[item.time_point.key, item.instrument]),
        }
        for item in selectors.due_questionnaires(enrolment)
    ]
    arm = protocol.arm(enrolment.arm) if enrolment.arm else None
    return render(
        request,
        "study/home.html",
        {
            "enrolment": enrolment,
            "due": due,
            "booking_url": _booking_url(enrolment),
            "arm": arm,
            "arm_label": localised(arm.label, language) if arm else "",
            **_waiting(enrolment, protocol),
        },
    )


def _waiting(enrolment: Enrolment, protocol: Any) -> dict[str, Any]:
    """For a waiting-list participant: the day the questionnaire that opens the chat sessions
    can be answered, while it lies ahead (about half of the trial's participants dropped out:
    a date to come back on keeps some)."""
    opens = selectors.chat_offer_opens(enrolment, protocol)
    after = protocol.arm(enrolment.arm).offers_chat_after if enrolment.arm else None
    span = selectors.window(enrolment, protocol.time_point(after)) if after else None
    return {
        "offer_opens": opens if opens is not None and opens > _now() else None,
        "offer_after": (
            localised(protocol.time_point(after).label, get_language() or "en") if after else ""
        ),
        "offer_by": span.closes if span else None,
    }


def _booking_url(enrolment: Enrolment) -> str | None:
    if not (enrolment.chat_offered and enrolment.status == Enrolment.Status.RANDOMIZED):
        return None
    try:
        return reverse("scheduling:book")
    except NoReverseMatch:  # scheduling not installed in this deployment
        return None


def _enrolment_or_404(request: HttpRequest) -> Enrolment:
    enrolment = selectors.participant_enrolment(request.participant)  # type: ignore[attr-defined]
    if enrolment is None:
        raise Http404
    return enrolment


# --- consent --------------------------------------------------------------------------------


@participant_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponseBase:
    enrolment = _enrolment_or_404(request)
    if request.method == "GET" and not selectors.needs_consent(enrolment):
        # Nothing to agree to (consented to this version, or withdrawn): the page would say
        # the information had changed.
        return redirect("study:home")
    protocol = selectors.parsed_protocol(enrolment.protocol)
    document = protocol.consent_document(enrolment.language)
    version = protocol.consent_version
    form = ConsentForm(_posted(request), document=document, version=version)
    changed = False
    if request.method == "POST" and form.is_valid():
        was_eligible = enrolment.status == Enrolment.Status.ELIGIBLE
        try:
            services.consent_record(
                enrolment=enrolment, ticked=form.ticked(), shown=form.cleaned_data["shown"]
            )
        except ConsentChangedError:
            # The text changed while the page was open: the new one is shown to be read and
            # agreed to, with nothing ticked for the participant.
            form, changed = ConsentForm(document=document, version=version), True
        except (ConsentIncompleteError, StepOutOfOrderError):
            return redirect("study:home")
        else:
            # Counted by the sending that moved the enrolment on (consent_record reads it again
            # then): a second sending at once had read it as eligible too, and counted again.
            if was_eligible and enrolment.status == Enrolment.Status.CONSENTED:
                funnel_step.send(sender=consent, step="consented", request=request)
            return redirect("study:home")
    return render(
        request,
        "study/consent.html",
        {
            "form": form,
            "document": document,
            "version": version,
            "reconsent": changed or enrolment.status != Enrolment.Status.ELIGIBLE,
        },
        status=_status(form),
    )


@participant_required
def consent_copy(request: HttpRequest) -> HttpResponse:
    """The consent as given, to keep: version, hash, date and text; nothing that identifies."""
    enrolment = _enrolment_or_404(request)
    record = enrolment.consents.order_by("-consented_at").first()
    if record is None:
        raise Http404
    protocol = selectors.parsed_protocol(enrolment.protocol)
    document = protocol.consent.get(record.language) or protocol.consent_document("en")
    response = render(
        request,
        "study/consent_copy.html",
        {
            "document": document,
            "record": record,
            "text": document.canonical_text(record.document_version),
        },
    )
    response["Content-Disposition"] = 'attachment; filename="consent.html"'
    return response


# --- questionnaires -------------------------------------------------------------------------


@participant_required
@require_http_methods(["GET", "POST"])
def questionnaire(request: HttpRequest, time_point: str, instrument: str) -> HttpResponseBase:
    enrolment = _enrolment_or_404(request)
    protocol = selectors.parsed_protocol(enrolment.protocol)
    definition = protocol.instruments.get(instrument)
    if definition is None or selectors.needs_consent(enrolment):
        return redirect("study:home")
    if time_point not in {point.key for point in protocol.schedule}:
        return render(request, "study/not_due.html", status=404)
    complete = request.method == "POST" and "save_later" not in request.POST
    form = instrument_form(
        definition,
        language=get_language() or "en",
        data=_posted(request),
        initial=selectors.saved_answers(enrolment, time_point, instrument),
        partial=not complete,
    )
    if request.method == "POST" and form.is_valid():
        was_randomized = bool(enrolment.arm)
        try:
            services.response_save(
                enrolment=enrolment,
                time_point=time_point,
                instrument=definition,
                answers=form.answers(),
                complete=complete,
            )
        except QuestionnaireNotDueError:
            if selectors.instrument_completed(enrolment, time_point, instrument):
                # Sent again (a double click, the browser's history): stored once already.
                # On to where the first sending led, not "This questionnaire is not open".
                enrolment.refresh_from_db()
                if time_point == protocol.baseline.key and enrolment.arm:
                    return redirect("study:allocation")
                return redirect("study:home")
            return render(request, "study/not_due.html", status=409)
        # Not read again: response_save leaves the enrolment as this save found and changed
        # it. Read again, a randomization by another tab meanwhile was counted here as well.
        if enrolment.arm and not was_randomized:
            funnel_step.send(sender=questionnaire, step="randomized", request=request)
            return redirect("study:allocation")
        return redirect("study:home")
    # Also for answers refused by the form: a questionnaire no longer open (answered in
    # another tab, its window closed) showed its errors, as if answering could still help.
    if not selectors.instrument_awaits_answers(enrolment, protocol, time_point, instrument, _now()):
        return render(request, "study/not_due.html", status=404 if request.method == "GET" else 409)
    language = get_language() or "en"
    return render(
        request,
        "study/questionnaire.html",
        {
            "form": form,
            "title": localised(definition.title, language),
            "time_point": localised(protocol.time_point(time_point).label, language),
        },
        status=_status(form),
    )


def _now() -> Any:
    from stopcsam.core import clock

    return clock.now()


@participant_required
@in_reader_zone
def allocation(request: HttpRequest) -> HttpResponseBase:
    enrolment = _enrolment_or_404(request)
    if not enrolment.arm:
        return redirect("study:home")
    services.chat_offer_if_wait_over(enrolment=enrolment)
    protocol = selectors.parsed_protocol(enrolment.protocol)
    arm = protocol.arm(enrolment.arm)
    return render(
        request,
        "study/allocation.html",
        {
            "arm": arm,
            "arm_label": localised(arm.label, get_language() or "en"),
            "booking_url": _booking_url(enrolment),
            **_waiting(enrolment, protocol),
        },
    )


# --- withdrawal -----------------------------------------------------------------------------


@participant_required
@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest) -> HttpResponseBase:
    enrolment = _enrolment_or_404(request)
    form = WithdrawForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        erase = form.cleaned_data["choice"] == "erase"
        services.withdraw(enrolment=enrolment, erase=erase)
        if erase:
            # Signed out on the page itself too: it offered "Your space" and "Log out" for
            # the account just deleted.
            participant_logout(request)
            return render(request, "study/erased.html")
        return redirect("study:home")
    return render(
        request, "study/withdraw.html", {"form": form, "enrolment": enrolment}, status=_status(form)
    )


# --- researchers ----------------------------------------------------------------------------


def _study_admin(request: HttpRequest) -> bool:
    return getattr(request.user, "role", None) == Role.STUDY_ADMIN


@staff_verified_required
@require_http_methods(["GET", "POST"])
def export_page(request: HttpRequest) -> HttpResponseBase:
    if not _study_admin(request):
        return render(request, "403.html", status=403)
    try:
        version = selectors.active_protocol_version()
    except NoActiveProtocolError:
        return render(request, "study/closed.html", status=503)
    form = ExportForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        free_text = form.cleaned_data["include_free_text"]
        audit_record(
            actor=request.user.audit_ref,  # type: ignore[union-attr]
            action="study.exported",
            subject=str(version),
            detail={"free_text": free_text},
        )
        response = StreamingHttpResponse(
            export.export_csv(version, include_free_text=free_text), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="{version.key}-data.csv"'
        return response
    consort = selectors.consort_counts(version)
    return render(
        request,
        "study/export.html",
        {"form": form, "version": version, "consort": consort, "by_arm": _by_arm(version, consort)},
    )


def _by_arm(version: Any, consort: dict[str, Any]) -> list[dict[str, Any]]:
    """The CONSORT flow's counts per arm, one row each, under the arm's label."""
    language = get_language() or "en"
    return [
        {
            "label": localised(arm.label, language),
            "key": arm.key,
            **{
                stage: consort[stage].get(arm.key, 0)
                for stage in (
                    "randomized",
                    "received_allocated_intervention",
                    "withdrawn_by_arm",
                    "lost_to_follow_up",
                    "analysed",
                )
            },
        }
        for arm in selectors.parsed_protocol(version).arms
    ]


@staff_verified_required
def codebook_download(request: HttpRequest, fmt: str) -> HttpResponseBase:
    if not _study_admin(request):
        return render(request, "403.html", status=403)
    if fmt not in ("json", "csv"):
        raise Http404
    try:
        version = selectors.active_protocol_version()
    except NoActiveProtocolError:
        return render(request, "study/closed.html", status=503)
    book = export.codebook(version, include_free_text=request.GET.get("free_text") == "1")
    response: HttpResponseBase
    if fmt == "json":
        response = HttpResponse(
            json.dumps(book, indent=2, ensure_ascii=False), content_type="application/json"
        )
    else:
        response = StreamingHttpResponse(export.codebook_csv(book), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{version.key}-codebook.{fmt}"'
    return response
