"""Reads of the outreach app, with access control where staff see data."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.core.cache import cache
from django.db.models import Q, Sum

from stopcsam.accounts.models import Role, StaffUser
from stopcsam.core import clock
from stopcsam.core.signals import FUNNEL_STEPS
from stopcsam.outreach.exceptions import InvalidApiKeyError
from stopcsam.outreach.models import (
    ApiKey,
    Campaign,
    FunnelCount,
    Page,
    PageSlug,
    PageStatus,
    Resource,
    SurveyResponse,
    TermListStamp,
)

SMALL_CELL = 5  # counts under this are suppressed wherever numbers leave the site (§5)


# --- API keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyHolder:
    key_id: int
    prefix: str
    partner_id: int
    campaign: str
    rate_per_minute: int


KEY_CACHE_SECONDS = 30.0
KEY_GENERATION = "outreach:api-keys:generation"
_known_keys: dict[str, tuple[KeyHolder, object, float]] = {}


def api_key_holder(*, key: str) -> KeyHolder:
    """The partner behind a presented key; InvalidApiKeyError for unknown or revoked keys.

    Valid keys are remembered in this process for a short while, tagged with the key
    generation in the shared cache (Redis when scaled out). Revoking a key bumps the
    generation, so every process stops accepting it on its next request.
    """
    from stopcsam.outreach.services import KEY_PREFIX, key_digest

    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        raise InvalidApiKeyError
    digest = key_digest(key)
    generation = cache.get(KEY_GENERATION, 0)
    known = _known_keys.get(digest)
    if known and known[1] == generation and time.monotonic() - known[2] < KEY_CACHE_SECONDS:
        return known[0]
    holder = _api_key_from_database(digest)
    if len(_known_keys) > 10_000:  # only valid keys get here; a bound all the same
        _known_keys.clear()
    _known_keys[digest] = (holder, generation, time.monotonic())
    return holder


def _api_key_from_database(digest: str) -> KeyHolder:
    row = (
        ApiKey.objects.filter(digest=digest, revoked_at=None)
        .values_list("pk", "prefix", "partner_id", "partner__campaign__code", "rate_per_minute")
        .first()
    )
    if row is None:
        raise InvalidApiKeyError
    return KeyHolder(*row)


# --- campaigns and term lists -----------------------------------------------------------------


def campaign_is_known(*, code: str) -> bool:
    return Campaign.objects.filter(code=code, active=True).exists()


def term_list_version() -> int:
    version = TermListStamp.objects.filter(pk=1).values_list("version", flat=True).first()
    return version or 0


# --- front-door content -----------------------------------------------------------------------


def page_published(*, slug: str, language: str) -> Page | None:
    return Page.objects.filter(slug=slug, language=language, status=PageStatus.PUBLISHED).first()


def pages_published(*, language: str) -> list[Page]:
    """The published pages of a language, in the order of the menu."""
    order = {slug: n for n, slug in enumerate(PageSlug.values)}
    pages = Page.objects.filter(language=language, status=PageStatus.PUBLISHED)
    return sorted(pages, key=lambda page: order.get(page.slug, 99))


# --- resource directory -----------------------------------------------------------------------


def resources_for(*, country: str = "", language: str = "") -> list[Resource]:
    """Shown services, optionally for one country (plus those open to all, "XX") and language."""
    found = Resource.objects.filter(active=True)
    if country:
        found = found.filter(Q(country=country) | Q(country="XX"))
    rows = list(found.order_by("country", "name").prefetch_related("texts"))
    if language:
        rows = [r for r in rows if language in r.languages]
    return rows


def resource_countries() -> list[str]:
    return sorted(set(Resource.objects.filter(active=True).values_list("country", flat=True)))


# --- funnel -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelRow:
    step: str
    count: int | None  # None: suppressed (under SMALL_CELL)
    from_previous: float | None  # conversion from the step before, in percent
    from_first: float | None


def funnel_may_see_exact(user: StaffUser) -> bool:
    """Coordinators run outreach at their site and see exact counts; anyone else sees the
    figures as they may be shared outside the site, with small cells suppressed."""
    return user.role == Role.COORDINATOR


def funnel_report(
    *,
    user: StaffUser,
    start: date,
    end: date,
    campaign: str | None = None,
    language: str | None = None,
    shared: bool = False,
) -> list[FunnelRow]:
    suppress = shared or not funnel_may_see_exact(user)
    start, end = funnel_period(start=start, end=end, suppressed=suppress)
    counts = funnel_totals(start=start, end=end, campaign=campaign, language=language)
    rows, previous, first = [], None, counts.get(FUNNEL_STEPS[0], 0)
    for step in FUNNEL_STEPS:
        count = counts.get(step, 0)
        hidden = suppress and count < SMALL_CELL
        rows.append(
            FunnelRow(
                step=step,
                count=None if hidden else count,
                from_previous=_rate(count, previous, suppress),
                from_first=_rate(count, first, suppress) if step != FUNNEL_STEPS[0] else None,
            )
        )
        previous = count
    return rows


def funnel_period(
    *, start: date, end: date, suppressed: bool, today: date | None = None
) -> tuple[date, date]:
    """The days a report counts. Suppressed figures cover one whole calendar month that has
    ended (the end date's, or the last one before today): with free dates, two ranges a day
    apart (days 1-10 and 1-9) gave one day's count by subtraction, suppressed or not, and so
    did the current month read on two days. A therapist who knew when a client was
    randomised could learn which partner's warning brought them."""
    if not suppressed:
        return start, end
    today = today or clock.now().date()
    first = min(end, today).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    if following > today:  # the month has not ended: the one before it
        following = first
        first = (first - timedelta(days=1)).replace(day=1)
    return first, following - timedelta(days=1)


def _rate(count: int, base: int | None, suppress: bool) -> float | None:
    """The share of ``base`` that reached this step, in percent; None where it is no
    share: a step that more people reached than the step before it counts people who came
    another way too (landing visits against help clicks read 280 %, a review finding)."""
    if not base or count > base:
        return None
    if suppress and (count < SMALL_CELL or base < SMALL_CELL):
        return None
    return round(100 * count / base, 1)


def funnel_totals(
    *, start: date, end: date, campaign: str | None = None, language: str | None = None
) -> dict[str, int]:
    found = FunnelCount.objects.filter(day__gte=start, day__lte=end)
    if campaign is not None:
        found = found.filter(campaign=campaign)
    if language:
        found = found.filter(language=language)
    totals = found.values("step").annotate(total=Sum("count"))
    return {row["step"]: int(row["total"]) for row in totals}


def funnel_campaigns() -> list[str]:
    return sorted(set(FunnelCount.objects.values_list("campaign", flat=True)))


def funnel_count(*, step: str, campaign: str = "", language: str, day: date) -> int:
    row = FunnelCount.objects.filter(day=day, campaign=campaign, language=language, step=step)
    return row.values_list("count", flat=True).first() or 0


# --- survey -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerCell:
    value: str
    count: int | None  # None: suppressed


def survey_aggregates(
    *, user: StaffUser, instrument_key: str, shared: bool = False
) -> tuple[int | None, dict[str, list[AnswerCell]]]:
    """How many responses chose each option of each item. Only aggregates ever leave here."""
    suppress = shared or not funnel_may_see_exact(user)
    tallies: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    total = 0
    for answers in SurveyResponse.objects.filter(instrument_key=instrument_key).values_list(
        "answers", flat=True
    ):
        total += 1
        for item, value in answers.items():
            # Each option once per response: a repeated field (reasons=o1&reasons=o1...) is
            # stored as sent, and one response made a cell of any size.
            values = value if isinstance(value, list) else [value]
            for chosen in {str(v) for v in values if v is not None}:
                tallies[item][chosen] += 1
    cells = {
        item: [
            AnswerCell(value, None if suppress and n < SMALL_CELL else n)
            for value, n in sorted(counts.items())
        ]
        for item, counts in tallies.items()
    }
    return (None if suppress and total < SMALL_CELL else total), cells
