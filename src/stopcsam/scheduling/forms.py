"""Forms check shape and range; services decide. Every error message is localised."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any, cast
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.utils.translation import gettext_lazy as _

from stopcsam.core.forms import ServiceDateField
from stopcsam.scheduling.models import ExceptionKind
from stopcsam.scheduling.slots import local_instant, wall_exists

# Offered first in every time-zone list: the partner sites' zones and a few common others.
COMMON_ZONES = [
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Lisbon",
    "Europe/Prague",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/London",
    "Atlantic/Canary",
    "Atlantic/Azores",
    "Atlantic/Madeira",
    "America/Sao_Paulo",
    "America/New_York",
    "UTC",
]
# tzdata's old country areas (US/Eastern, Canada/Pacific ...) only point to zones of the
# list under their own names: offered too, they made the list longer, and the page heavier by
# 1.6 KB, past its budget (tests/e2e/audit.py).
LEGACY_AREAS = ("US/", "Canada/", "Mexico/", "Brazil/", "Chile/")
_ALL_ZONES = sorted(
    z
    for z in available_timezones()
    if "/" in z and not z.startswith("Etc/") and not z.startswith(LEGACY_AREAS)
)


def zone_choices() -> list[tuple[Any, Any]]:
    others = [(z, z.replace("_", " ")) for z in _ALL_ZONES if z not in COMMON_ZONES]
    return [
        (_("Common"), [(z, z.replace("_", " ")) for z in COMMON_ZONES]),
        (_("All time zones"), others),
    ]


def is_zone(name: str) -> bool:
    return name in COMMON_ZONES or name in _ALL_ZONES


class CompactSelect(forms.Select):
    """Django's select without the line breaks and indents between its options: for the
    list of about 500 time zones they were 3 KB of a page that must stay under 60 KB
    (tests/e2e/audit.py)."""

    template_name = "scheduling/widgets/compact_select.html"
    option_template_name = "scheduling/widgets/compact_option.html"


class ZoneForm(forms.Form):
    tz = forms.ChoiceField(
        label=_("Your time zone"),
        choices=zone_choices,
        widget=CompactSelect,
        error_messages={"invalid_choice": _("Please choose a time zone from the list.")},
    )


class InstantField(forms.IntegerField):
    """A slot start sent as seconds since 1970 (UTC): unambiguous whatever the zone."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "error_messages",
            {
                "required": _("Please choose a time."),
                "invalid": _("That time is not valid. Please choose one from the list."),
            },
        )
        super().__init__(min_value=0, max_value=4_102_444_800, **kwargs)

    def clean(self, value: Any) -> datetime | None:
        seconds = super().clean(value)
        return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


class ChooseStartForm(forms.Form):
    start = InstantField()


PLAN_INVALID = _("This plan is not valid. Please start again.")


class ConfirmCourseForm(forms.Form):
    # Bounded by the id column's range: a larger number went to the database as it came, and
    # SQLite raised OverflowError (a 500). Any bad value reads as the plan's own error.
    therapist = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        error_messages={
            key: PLAN_INVALID for key in ("required", "invalid", "min_value", "max_value")
        },
    )
    starts = forms.CharField(max_length=400)

    def clean_starts(self) -> list[datetime]:
        field = InstantField()
        try:
            parts = [p for p in self.cleaned_data["starts"].split(",") if p]
            result = [field.clean(p) for p in parts[:20]]
        except forms.ValidationError as exc:
            raise forms.ValidationError(PLAN_INVALID) from exc
        if not result:
            raise forms.ValidationError(PLAN_INVALID)
        return [r for r in result if r is not None]


SCOPE_CHOICES = [
    ("one", _("Only this session")),
    ("rest", _("This session and all later ones")),
]


class RescheduleForm(forms.Form):
    """Its ids (``move_...``) differ from CancelForm's: a therapist's page holds both."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "move_%s")
        super().__init__(*args, **kwargs)

    start = InstantField(label=_("New time"))
    # Optional: rebooking a missed session has no "rest of the course" to move.
    scope = forms.ChoiceField(
        choices=SCOPE_CHOICES,
        initial="one",
        required=False,
        widget=forms.RadioSelect,
        label=_("What to move"),
    )


class CancelForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "cancel_%s")
        super().__init__(*args, **kwargs)

    scope = forms.ChoiceField(
        choices=SCOPE_CHOICES, initial="one", widget=forms.RadioSelect, label=_("What to cancel")
    )


WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


class _TimeRangeMixin:
    def _check_order(self, cleaned: dict[str, Any]) -> None:
        start, end = cleaned.get("start_time"), cleaned.get("end_time")
        if isinstance(start, time) and isinstance(end, time) and end <= start:
            self.add_error("end_time", _("The end must be after the start."))  # type: ignore[attr-defined]


class WindowForm(_TimeRangeMixin, forms.Form):
    """Ids of its own (``window_...``): ExceptionForm, on the same page, also has "From" and
    "Until", and shared ids sent their labels to this form's fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "window_%s")
        super().__init__(*args, **kwargs)

    weekday = forms.TypedChoiceField(label=_("Day"), choices=WEEKDAYS, coerce=int)
    start_time = forms.TimeField(label=_("From"), widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(label=_("Until"), widget=forms.TimeInput(attrs={"type": "time"}))

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        self._check_order(cleaned)
        return cleaned


SKIPPED_TIME = _(
    "This time does not exist on that day: the clocks go forward. Please choose another time."
)


class ExceptionForm(_TimeRangeMixin, forms.Form):
    """Times are wall-clock times on the date in ``time_zone`` (the therapist's). One the
    clocks skip that day is refused; one they repeat is its first occurrence."""

    def __init__(self, *args: Any, time_zone: str = "UTC", **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "exception_%s")
        super().__init__(*args, **kwargs)
        self.tz = ZoneInfo(time_zone)

    kind = forms.ChoiceField(label=_("Kind"), choices=ExceptionKind.choices)
    date = ServiceDateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(
        label=_("From"), initial=time(0, 0), widget=forms.TimeInput(attrs={"type": "time"})
    )
    end_time = forms.TimeField(
        label=_("Until"), initial=time(23, 59), widget=forms.TimeInput(attrs={"type": "time"})
    )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        self._check_order(cleaned)
        day = cleaned.get("date")
        for name in ("start_time", "end_time"):
            wall = cleaned.get(name)
            if day is not None and isinstance(wall, time) and not wall_exists(day, wall, self.tz):
                self.add_error(name, SKIPPED_TIME)
        return cleaned

    def instants(self) -> tuple[datetime, datetime]:
        day = self.cleaned_data["date"]
        return (
            local_instant(day, self.cleaned_data["start_time"], self.tz),
            local_instant(day, self.cleaned_data["end_time"], self.tz),
        )


class LimitsForm(forms.Form):
    time_zone = forms.ChoiceField(label=_("Your time zone"), choices=zone_choices)
    max_per_day = forms.IntegerField(label=_("Sessions per day at most"), min_value=1, max_value=20)
    max_per_week = forms.IntegerField(
        label=_("Sessions per week at most"), min_value=1, max_value=80
    )
    max_caseload = forms.IntegerField(
        label=_("Participants in your care at most"), min_value=0, max_value=200
    )
    buffer_minutes = forms.IntegerField(
        label=_("Break after each session (minutes)"), min_value=0, max_value=120
    )


class BoosterForm(forms.Form):
    start = InstantField(label=_("Time of the booster session"))


class HandoverForm(forms.Form):
    colleague = forms.TypedChoiceField(label=_("Colleague"), coerce=int)

    def __init__(self, *args: Any, colleagues: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.TypedChoiceField, self.fields["colleague"])
        field.choices = [(c.pk, str(c)) for c in colleagues]


class QualificationForm(forms.Form):
    qualified = forms.BooleanField(required=False)
