"""Writes of the outreach app: counters, partners and keys, term-list reloads, content,
the resource directory and anonymous survey responses. Audited actions record in the same
transaction as the action."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSession
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F

from stopcsam.accounts.models import StaffUser
from stopcsam.core import clock
from stopcsam.core.audit import audit_record
from stopcsam.core.counters import count_in_window
from stopcsam.core.signals import FUNNEL_STEPS
from stopcsam.outreach.exceptions import RateLimitedError, UnknownStepError
from stopcsam.outreach.models import (
    ApiKey,
    Campaign,
    FunnelCount,
    Page,
    PageStatus,
    Partner,
    Resource,
    ResourceText,
    SurveyResponse,
    TermListStamp,
)
from stopcsam.outreach.terms import forget_current_matcher, load_term_lists, term_list_paths

KEY_PREFIX = "sk_"


def _actor(user: StaffUser | None) -> str:
    return user.audit_ref if user is not None else "system"


# --- funnel counters --------------------------------------------------------------------------


def funnel_increment(
    *, step: str, campaign: str, language: str, day: date | None = None, amount: int = 1
) -> None:
    """Add to a daily counter; safe under concurrent requests on SQLite and PostgreSQL.

    A step of an inactive campaign counts as "no campaign", as an unknown code does on the
    front door (``selectors.campaign_is_known``): its API warnings went on being counted under
    its code, on both paths, while its help clicks and visits were not (a review finding)."""
    if step not in FUNNEL_STEPS:
        raise UnknownStepError(step)
    if campaign and Campaign.objects.filter(code=campaign, active=False).exists():
        campaign = ""
    key = {
        "day": day or clock.now().date(),
        "campaign": campaign,
        "language": language,
        "step": step,
    }
    if FunnelCount.objects.filter(**key).update(count=F("count") + amount):
        return
    try:
        with transaction.atomic():
            FunnelCount.objects.create(**key, count=amount)
    except IntegrityError:  # another request created the row first: add to it
        FunnelCount.objects.filter(**key).update(count=F("count") + amount)


# --- partners and API keys --------------------------------------------------------------------


def key_digest(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash cannot be reversed or guessed.
    return hashlib.sha256(key.encode()).hexdigest()


def partner_create(*, name: str, campaign_code: str, by: StaffUser | None = None) -> Partner:
    with transaction.atomic():
        campaign, _ = Campaign.objects.get_or_create(code=campaign_code)
        partner = Partner.objects.create(name=name, campaign=campaign, created_at=clock.now())
        audit_record(
            actor=_actor(by),
            action="outreach.partner_created",
            subject=f"partner:{partner.pk}",
            detail={"campaign": campaign.code},
        )
    return partner


def api_key_create(
    *, partner: Partner, label: str = "", rate_per_minute: int = 600, by: StaffUser | None = None
) -> tuple[ApiKey, str]:
    """Create a key; the plain key is returned once and never stored."""
    for attempt in range(3):
        prefix = secrets.token_hex(4)
        key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    partner=partner,
                    prefix=prefix,
                    digest=key_digest(key),
                    label=label,
                    rate_per_minute=rate_per_minute,
                    created_at=clock.now(),
                )
                audit_record(
                    actor=_actor(by),
                    action="outreach.api_key_created",
                    subject=f"api_key:{api_key.pk}",
                    detail={"partner": partner.pk, "prefix": prefix},
                )
            return api_key, key
        except IntegrityError:
            # The prefix (32 bits, unique) drawn was another key's: a 500 in the admin. Drawn
            # again; a third clash is no chance, and the caller hears of it.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def api_key_revoke(*, api_key: ApiKey, by: StaffUser | None = None) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at=None).update(
            revoked_at=clock.now()
        )
        if updated:
            # Now, and again after commit: a process that re-reads the key in between
            # would otherwise remember it as valid.
            _api_keys_changed()
            transaction.on_commit(_api_keys_changed)
            audit_record(
                actor=_actor(by),
                action="outreach.api_key_revoked",
                subject=f"api_key:{api_key.pk}",
                detail={"partner": api_key.partner_id, "prefix": api_key.prefix},
            )
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def _api_keys_changed() -> None:
    """Make every process forget the keys it remembers (see selectors.api_key_holder)."""
    from stopcsam.outreach.selectors import KEY_GENERATION

    cache.add(KEY_GENERATION, 0, timeout=None)
    try:
        cache.incr(KEY_GENERATION)
    except ValueError:  # evicted between add and incr
        cache.set(KEY_GENERATION, 1, timeout=None)


def api_key_spend(*, prefix: str, rate_per_minute: int) -> None:
    """Count one request against the key's per-minute budget (shared by all processes
    through the cache, which is Redis when scaled out); raise RateLimitedError when spent."""
    used, left = count_in_window(f"outreach:rate:{prefix}", 60)
    if used > rate_per_minute:
        raise RateLimitedError(retry_after=left)


# --- term lists --------------------------------------------------------------------------------


def term_lists_reload(*, by: StaffUser | None = None, actor: str = "") -> TermListStamp:
    """Check the term-list files and raise the version every process watches.

    Raises TermListError (and changes nothing) when a file is faulty.
    """
    loaded = load_term_lists(term_list_paths())
    with transaction.atomic():
        stamp, _ = TermListStamp.objects.select_for_update().get_or_create(pk=1)
        stamp.version += 1
        stamp.digest = loaded.digest
        stamp.term_count = len(loaded.terms)
        stamp.loaded_at = clock.now()
        stamp.save(update_fields=["version", "digest", "term_count", "loaded_at"])
        audit_record(
            actor=actor or _actor(by),
            action="outreach.term_lists_reloaded",
            subject="term_lists",
            detail={"version": stamp.version, "terms": stamp.term_count, "sha256": loaded.digest},
        )
    forget_current_matcher()
    return stamp


# --- front-door content ------------------------------------------------------------------------


def page_save(*, page: Page, by: StaffUser | None = None) -> Page:
    """Save a page as edited; publishing is audited, drafts are not shown to visitors."""
    with transaction.atomic():
        was_published = (
            Page.objects.filter(pk=page.pk, status=PageStatus.PUBLISHED).exists()
            if page.pk
            else False
        )
        page.updated_at = clock.now()
        if page.status == PageStatus.PUBLISHED:
            page.published_at = page.updated_at
        page.save()
        if page.status == PageStatus.PUBLISHED or was_published:
            audit_record(
                actor=_actor(by),
                action="outreach.page_published"
                if page.status == PageStatus.PUBLISHED
                else "outreach.page_unpublished",
                subject=f"page:{page.slug}:{page.language}",
                detail={"sha256": hashlib.sha256(page.body.encode()).hexdigest()},
            )
    return page


# --- anonymous survey --------------------------------------------------------------------------


def survey_response_record(
    *, instrument_key: str, instrument_version: str, language: str, answers: dict[str, Any]
) -> None:
    """Store answers with nothing that links them to a person: no id, session or time of day."""
    SurveyResponse.objects.create(
        instrument_key=instrument_key,
        instrument_version=instrument_version,
        language=language,
        day=clock.now().date(),
        answers=answers,
    )


SESSION_SURVEYS_ANSWERED = "outreach_surveys_answered"


def survey_answer_once(
    *,
    session: DatabaseSession,
    instrument_key: str,
    instrument_version: str,
    language: str,
    answers: dict[str, Any],
) -> bool:
    """Store a survey's answers once per browser session: the same survey sent again (a
    double click, a second tab, the browser's resend) was stored again, and one visitor
    counted twice in every aggregate (a review finding). The session keeps only which surveys
    it answered, never what or which response. Its row is locked and read again first, and
    the mark saved before the lock goes, as the study counts a screening. Whether stored."""
    if session.session_key is None:
        session.save()  # a row to lock (a sending with no session cookie starts one)
    with transaction.atomic():
        row = session.model.objects.select_for_update().filter(session_key=session.session_key)
        stored = row.values_list("session_data", flat=True).first()
        latest = session.decode(stored) if stored is not None else dict(session.items())
        answered = list(latest.get(SESSION_SURVEYS_ANSWERED, []))
        if instrument_key in answered:
            return False
        survey_response_record(
            instrument_key=instrument_key,
            instrument_version=instrument_version,
            language=language,
            answers=answers,
        )
        session[SESSION_SURVEYS_ANSWERED] = [*answered, instrument_key]
        if stored is not None:  # gone meanwhile (signed out in another tab): not brought back
            session.save()
    return True


# --- resource directory ------------------------------------------------------------------------


def resources_import(
    *, resources: list[Resource], replace: bool = False, by: StaffUser | None = None
) -> int:
    """Create or update services by (country, name); ``replace`` hides those not listed."""
    with transaction.atomic():
        for resource in resources:
            fields = {f: getattr(resource, f) for f in RESOURCE_FIELDS}
            saved, _ = Resource.objects.update_or_create(
                country=resource.country, name=resource.name, defaults={**fields, "active": True}
            )
            texts = getattr(resource, "imported_texts", None)
            if texts is not None:  # given: these and no others; not given: as they are
                ResourceText.objects.filter(resource=saved).delete()
                for text in texts:
                    text.resource = saved
                ResourceText.objects.bulk_create(texts)
        if replace:
            listed = {(r.country, r.name) for r in resources}
            for row in Resource.objects.filter(active=True):
                if (row.country, row.name) not in listed:
                    row.active = False
                    row.save(update_fields=["active"])
        audit_record(
            actor=_actor(by),
            action="outreach.resources_imported",
            subject="resources",
            detail={"count": len(resources), "replace": replace},
        )
    return len(resources)


RESOURCE_FIELDS = (
    "kind",
    "languages",
    "description",
    "website",
    "phone",
    "email",
    "hours",
    "cost",
    "anonymous",
)
