"""Reads of the outreach app, with access control where staff see data."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import SynchronousOnlyOperation
from django.db.models import Q, Sum

from stopcsam.accounts.models import Role, StaffUser
from stopcsam.core import clock, disclosure
from stopcsam.core.disclosure import SMALL_CELL, Cell
from stopcsam.core.instruments import Instrument
from stopcsam.core.signals import FUNNEL_STEPS
from stopcsam.outreach.exceptions import InvalidApiKeyError, KeyLookupsSpentError
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
UNKNOWN_KEYS_REMEMBERED = 4096  # about 1 MB at most: a digest and a time each
_known_keys: dict[str, tuple[KeyHolder, object, float]] = {}


class _KeyLookups:
    """What this process spends on keys it does not remember: a token bucket of database
    lookups (``OUTREACH_KEY_LOOKUPS_PER_SECOND``, as many at once), and the digests of keys
    the database did not know, for a while. Every made-up key cost a query (on the fast path
    a thread hop too), so a flood of them loaded the database without limit (a review
    finding); a key presented again and again is refused from memory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clock: Callable[[], float] = time.monotonic
        self.tokens: float | None = None  # None: full
        self.filled_at = 0.0
        self.unknown: OrderedDict[str, float] = OrderedDict()

    def take(self) -> None:
        """One lookup, or KeyLookupsSpentError with the seconds until there is one again."""
        rate = settings.OUTREACH_KEY_LOOKUPS_PER_SECOND
        with self.lock:
            tokens = self.tokens = self._refilled(rate)
            if tokens < 1:
                raise KeyLookupsSpentError(retry_after=math.ceil((1 - tokens) / rate))
            self.tokens = tokens - 1

    def give_back(self) -> None:
        """A lookup that did not happen: the fast path asked on the event loop, where the
        ORM refuses, and asks again from a thread."""
        rate = settings.OUTREACH_KEY_LOOKUPS_PER_SECOND
        with self.lock:
            self.tokens = min(rate, self._refilled(rate) + 1)

    def _refilled(self, rate: int) -> float:
        now = self.clock()
        elapsed, self.filled_at = now - self.filled_at, now
        return float(rate) if self.tokens is None else min(rate, self.tokens + elapsed * rate)

    def is_unknown(self, digest: str) -> bool:
        with self.lock:
            seen = self.unknown.get(digest)
            return seen is not None and self.clock() - seen < KEY_CACHE_SECONDS

    def remember_unknown(self, digest: str) -> None:
        with self.lock:
            self.unknown[digest] = self.clock()
            self.unknown.move_to_end(digest)
            while len(self.unknown) > UNKNOWN_KEYS_REMEMBERED:
                self.unknown.popitem(last=False)

    def forget(self) -> None:
        with self.lock:
            self.tokens, self.unknown = None, OrderedDict()


key_lookups = _KeyLookups()


def api_key_holder(*, key: str) -> KeyHolder:
    """The partner behind a presented key; InvalidApiKeyError for unknown or revoked keys.

    Valid keys are remembered in this process for a short while, tagged with the key
    generation in the shared cache (Redis when scaled out). Revoking a key bumps the
    generation, so every process stops accepting it on its next request. A key this process
    has never known costs one of its lookups (KeyLookupsSpentError when none is left, whether
    the key exists or not, so the answer tells nothing about it); one the database did not
    know is refused from memory for a while.
    """
    from stopcsam.outreach.services import KEY_PREFIX, key_digest

    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        raise InvalidApiKeyError
    digest = key_digest(key)
    generation = cache.get(KEY_GENERATION, 0)
    known = _known_keys.get(digest)
    if known and known[1] == generation and time.monotonic() - known[2] < KEY_CACHE_SECONDS:
        return known[0]
    if known is None:
        if key_lookups.is_unknown(digest):
            raise InvalidApiKeyError
        key_lookups.take()  # a key known before (now to be checked again) costs none
    holder = _api_key_looked_up(digest, paid=known is None)
    if len(_known_keys) > 10_000:  # only valid keys get here; a bound all the same
        _known_keys.clear()
    _known_keys[digest] = (holder, generation, time.monotonic())
    return holder


def _api_key_looked_up(digest: str, *, paid: bool) -> KeyHolder:
    try:
        return _api_key_from_database(digest)
    except SynchronousOnlyOperation:
        if paid:
            key_lookups.give_back()
        raise
    except InvalidApiKeyError:
        _known_keys.pop(digest, None)
        key_lookups.remember_unknown(digest)
        raise


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
    count: int | None  # None: hidden (under SMALL_CELL, or a complement that protects one)
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
    counts: dict[str, int | None]
    if suppress:
        counts = funnel_shared_counts(start=start, end=end, campaign=campaign, language=language)
    else:
        counts = dict(funnel_totals(start=start, end=end, campaign=campaign, language=language))
    rows, previous, first = [], None, counts.get(FUNNEL_STEPS[0], 0)
    for step in FUNNEL_STEPS:
        count = counts.get(step, 0)
        rows.append(
            FunnelRow(
                step=step,
                count=count,
                from_previous=_rate(count, previous),
                from_first=_rate(count, first) if step != FUNNEL_STEPS[0] else None,
            )
        )
        previous = count
    return rows


def funnel_shared_counts(
    *, start: date, end: date, campaign: str | None = None, language: str | None = None
) -> dict[str, int | None]:
    """One slice of the funnel as it may be shared; None for a hidden count.

    Every slice (a campaign or all, a language or all) is read off one table per step, the
    month's campaigns by languages with their totals, suppressed as a whole: all campaigns
    minus the campaigns shown gave a hidden campaign's count back, and so did a campaign's
    month minus its languages. Deciding per slice would also let two slices disagree.
    """
    found = FunnelCount.objects.filter(day__gte=start, day__lte=end)
    table: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for row in found.values("step", "campaign", "language").annotate(total=Sum("count")):
        table[row["step"]][(row["campaign"], row["language"])] = int(row["total"])
    campaigns = {c for cells in table.values() for c, _ in cells}
    languages = {code for code, _ in settings.LANGUAGES} | {
        lang for cells in table.values() for _, lang in cells
    }
    wanted = (campaign, language or None)
    shown: dict[str, int | None] = {}
    for step in FUNNEL_STEPS:
        cells = funnel_table_cells(table[step], campaigns=campaigns, languages=languages)
        hidden = disclosure.suppressed(cells)
        value = next((c.value for c in cells if c.key == wanted), 0)
        shown[step] = None if wanted in hidden or value < SMALL_CELL else value
    return shown


def funnel_table_cells(
    counts: dict[tuple[str, str], int], *, campaigns: set[str], languages: set[str]
) -> list[Cell]:
    """A step's month as a network (core.disclosure): each campaign's count in a language
    flows from the campaign to the language; a campaign's total flows into it from the
    grand total's node, a language's total flows out of it into the grand total."""
    cells = [
        Cell((c, lang), counts.get((c, lang), 0), ("campaign", c), ("language", lang))
        for c in sorted(campaigns)
        for lang in sorted(languages)
    ]
    for c in sorted(campaigns):
        total = sum(counts.get((c, lang), 0) for lang in languages)
        cells.append(Cell((c, None), total, "out", ("campaign", c), rank=1))
    for lang in sorted(languages):
        total = sum(counts.get((c, lang), 0) for c in campaigns)
        cells.append(Cell((None, lang), total, ("language", lang), "in", rank=1))
    cells.append(Cell((None, None), sum(counts.values()), "in", "out", rank=2))
    return cells


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


def _rate(count: int | None, base: int | None) -> float | None:
    """The share of ``base`` that reached this step, in percent; None where it is no
    share: a step that more people reached than the step before it counts people who came
    another way too (landing visits against help clicks read 280 %, a review finding).
    None too where either count is hidden: a rate and one of its counts give the other."""
    if not base or count is None or count > base:
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
    count: int | None  # None: hidden (under SMALL_CELL, or a complement that protects one)


ONE_ANSWER_TYPES = ("single", "likert")  # their options and the blanks add up to the responses


def survey_aggregates(
    *, user: StaffUser, instrument: Instrument, shared: bool = False
) -> tuple[int | None, dict[str, list[AnswerCell]]]:
    """How many responses chose each option of each item, every option of the instrument in
    its order (an option nobody chose too). Only aggregates ever leave here."""
    suppress = shared or not funnel_may_see_exact(user)
    total, tallies = _survey_tallies(instrument.key)
    counts = {
        item.key: [(str(v), tallies[item.key][str(v)]) for v in item.option_values()]
        for item in instrument.items
    }
    hidden = disclosure.suppressed(survey_cells(instrument, total, counts)) if suppress else None
    cells = {
        item: [AnswerCell(value, _shown(n, (item, value), hidden)) for value, n in options]
        for item, options in counts.items()
    }
    return _shown(total, "total", hidden), cells


def _shown(count: int, key: object, hidden: frozenset[object] | None) -> int | None:
    return None if hidden is not None and key in hidden else count


def _survey_tallies(instrument_key: str) -> tuple[int, dict[str, dict[str, int]]]:
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
    return total, tallies


def survey_cells(
    instrument: Instrument, total: int, counts: dict[str, list[tuple[str, int]]]
) -> list[Cell]:
    """The survey as a network (core.disclosure). An item with one answer per response adds
    up: its options plus those who left it blank (never shown) are the responses, so the
    responses flow through each such item in turn, from node to node. An option of an item
    that takes several answers is in no sum: a loop of its own."""
    additive = [item.key for item in instrument.items if item.type in ONE_ANSWER_TYPES]
    nodes = [f"before:{key}" for key in additive]
    cells = [Cell("total", total, "start", nodes[0] if nodes else "start", rank=1)]
    for item, options in counts.items():
        if item not in additive:
            cells += [Cell((item, v), n, ("loop", item, v), ("loop", item, v)) for v, n in options]
            continue
        n = additive.index(item)
        tail, head = nodes[n], nodes[n + 1] if n + 1 < len(nodes) else "start"
        cells += [Cell((item, v), count, tail, head) for v, count in options]
        blank = total - sum(count for _, count in options)
        cells.append(Cell((item, None), blank, tail, head, published=False))
    return cells
