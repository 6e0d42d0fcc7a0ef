"""Questionnaire instruments as data: items, options, scales and scoring.

An instrument is defined in JSON or YAML (see docs/researchers.md) and validated here. The
study stores participants' answers, the outreach survey stores anonymous ones; both use this
engine to render localised forms, validate answers and score scales. It holds no state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

ITEM_TYPES = ("likert", "single", "multiple", "number", "text")
SCORING_METHODS = ("sum", "mean")
LANGUAGES = ("en", "de", "cs", "pt", "es")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TEXT_MAX_LENGTH = 4000

Answer = int | str | list[int | str] | None


class InstrumentDefinitionError(ValueError):
    """The definition cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Option:
    value: int | str
    label: Mapping[str, str]


@dataclass(frozen=True)
class Item:
    key: str
    type: str
    label: Mapping[str, str]
    options: tuple[Option, ...] = ()
    required: bool = True
    minimum: int | None = None
    maximum: int | None = None
    reverse: bool = False
    max_length: int = TEXT_MAX_LENGTH

    def option_values(self) -> list[int | str]:
        return [option.value for option in self.options]


@dataclass(frozen=True)
class Scale:
    key: str
    items: tuple[str, ...]
    method: str
    min_answered: int
    label: Mapping[str, str]


@dataclass(frozen=True)
class Instrument:
    key: str
    version: str
    title: Mapping[str, str]
    items: tuple[Item, ...]
    scales: tuple[Scale, ...] = ()

    def item(self, key: str) -> Item:
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(key)


def localised(text: Mapping[str, str], language: str) -> str:
    return text.get(language) or text.get("en") or next(iter(text.values()), "")


# --- reading a definition -------------------------------------------------------------------


def instrument_from_dict(data: Mapping[str, Any]) -> Instrument:
    if not isinstance(data, Mapping):
        raise InstrumentDefinitionError("An instrument must be a mapping.")
    key = _key(data.get("key"), "instrument")
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise InstrumentDefinitionError(f"{key}: 'items' must be a non-empty list.")
    items = tuple(_item(raw, f"{key}.items[{n}]") for n, raw in enumerate(raw_items))
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise InstrumentDefinitionError(f"{key}: item keys must be unique.")
    by_key = {item.key: item for item in items}
    raw_scales = data.get("scales") or []
    if not isinstance(raw_scales, list):
        raise InstrumentDefinitionError(f"{key}: 'scales' must be a list.")
    scales = tuple(_scale(raw, by_key, f"{key}.scales[{n}]") for n, raw in enumerate(raw_scales))
    return Instrument(
        key=key,
        version=str(data.get("version") or "1"),
        title=_text(data.get("title"), f"{key}.title"),
        items=items,
        scales=scales,
    )


def _key(value: Any, where: str) -> str:
    if not isinstance(value, str) or not KEY_PATTERN.match(value):
        raise InstrumentDefinitionError(
            f"{where}: key {value!r} must be lower-case letters, digits or _ (max 64)."
        )
    return value


def _text(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, str):
        value = {"en": value}
    if not isinstance(value, Mapping) or not value.get("en"):
        raise InstrumentDefinitionError(f"{where}: needs a text, at least in 'en'.")
    unknown = set(value) - set(LANGUAGES)
    if unknown:
        raise InstrumentDefinitionError(f"{where}: unknown languages {sorted(unknown)}.")
    return {str(lang): str(text) for lang, text in value.items()}


def _item(raw: Any, where: str) -> Item:
    if not isinstance(raw, Mapping):
        raise InstrumentDefinitionError(f"{where}: an item must be a mapping.")
    key = _key(raw.get("key"), where)
    kind = raw.get("type")
    if kind not in ITEM_TYPES:
        raise InstrumentDefinitionError(f"{where}: type must be one of {ITEM_TYPES}.")
    options = tuple(
        _option(o, f"{where}.options[{n}]") for n, o in enumerate(raw.get("options") or [])
    )
    _check_options(kind, options, where)
    minimum, maximum = raw.get("min"), raw.get("max")
    for bound in (minimum, maximum):
        if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool)):
            raise InstrumentDefinitionError(f"{where}: min and max must be whole numbers.")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise InstrumentDefinitionError(f"{where}: min is greater than max.")
    reverse = bool(raw.get("reverse", False))
    if reverse and kind != "likert":
        raise InstrumentDefinitionError(f"{where}: only likert items can be reverse-scored.")
    return Item(
        key=key,
        type=kind,
        label=_text(raw.get("label"), where),
        options=options,
        required=bool(raw.get("required", True)),
        minimum=minimum,
        maximum=maximum,
        reverse=reverse,
        max_length=min(int(raw.get("max_length", TEXT_MAX_LENGTH)), TEXT_MAX_LENGTH),
    )


def _option(raw: Any, where: str) -> Option:
    if not isinstance(raw, Mapping) or "value" not in raw:
        raise InstrumentDefinitionError(f"{where}: an option needs a value and a label.")
    value = raw["value"]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InstrumentDefinitionError(f"{where}: an option value is a number or a word.")
    return Option(value=value, label=_text(raw.get("label"), where))


def _check_options(kind: str, options: tuple[Option, ...], where: str) -> None:
    if kind in ("likert", "single", "multiple") and len(options) < 2:
        raise InstrumentDefinitionError(f"{where}: a {kind} item needs at least two options.")
    if kind in ("number", "text") and options:
        raise InstrumentDefinitionError(f"{where}: a {kind} item has no options.")
    values = [option.value for option in options]
    if len(set(values)) != len(values):
        raise InstrumentDefinitionError(f"{where}: option values must be unique.")
    if kind == "likert" and not all(isinstance(v, int) for v in values):
        raise InstrumentDefinitionError(f"{where}: likert option values must be numbers.")


def _scale(raw: Any, items: Mapping[str, Item], where: str) -> Scale:
    if not isinstance(raw, Mapping):
        raise InstrumentDefinitionError(f"{where}: a scale must be a mapping.")
    key = _key(raw.get("key"), where)
    members = raw.get("items")
    if not isinstance(members, list) or not members:
        raise InstrumentDefinitionError(f"{where}: 'items' must list the scored items.")
    for member in members:
        item = items.get(member)
        if item is None or not _is_numeric(item):
            raise InstrumentDefinitionError(f"{where}: {member!r} is not a numeric item.")
    method = raw.get("method", "sum")
    if method not in SCORING_METHODS:
        raise InstrumentDefinitionError(f"{where}: method must be one of {SCORING_METHODS}.")
    min_answered = raw.get("min_answered", len(members))
    if not isinstance(min_answered, int) or not 1 <= min_answered <= len(members):
        raise InstrumentDefinitionError(f"{where}: min_answered must be 1..{len(members)}.")
    return Scale(
        key=key,
        items=tuple(members),
        method=method,
        min_answered=min_answered,
        label=_text(raw.get("label") or {"en": key}, where),
    )


def _is_numeric(item: Item) -> bool:
    if item.type in ("likert", "number"):
        return True
    return item.type == "single" and all(isinstance(v, int) for v in item.option_values())


# --- forms ----------------------------------------------------------------------------------

ERRORS = {
    "required": _("Please answer this question."),
    "invalid_choice": _("Please choose one of the answers shown."),
    "invalid": _("Please enter a whole number."),
    "min_value": _("Please enter a number of at least %(limit_value)s."),
    "max_value": _("Please enter a number of at most %(limit_value)s."),
    "max_length": _("Please shorten your answer to at most %(limit_value)d characters."),
    "null_characters_not_allowed": _("Your answer contains characters we cannot store."),
}


def instrument_form(
    instrument: Instrument,
    *,
    language: str,
    data: Any = None,
    initial: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> InstrumentForm:
    """A bound or unbound form for the instrument. ``partial`` makes every item optional,
    so an unfinished questionnaire can be saved and resumed."""
    form = InstrumentForm(data=data, initial=_initial(instrument, initial or {}))
    form.instrument = instrument
    for item in instrument.items:
        form.fields[item.key] = _field(item, language, required=item.required and not partial)
    return form


class InstrumentForm(forms.Form):
    instrument: Instrument

    def answers(self) -> dict[str, Answer]:
        """The cleaned answers as stored values (option values keep their types)."""
        return {
            item.key: _coerce(item, self.cleaned_data.get(item.key))
            for item in self.instrument.items
        }


def _field(item: Item, language: str, *, required: bool) -> forms.Field:
    label = localised(item.label, language)
    common: dict[str, Any] = {"label": label, "required": required, "error_messages": ERRORS}
    choices = [(str(o.value), localised(o.label, language)) for o in item.options]
    if item.type in ("likert", "single"):
        return forms.ChoiceField(choices=choices, widget=forms.RadioSelect, **common)
    if item.type == "multiple":
        return forms.MultipleChoiceField(
            choices=choices, widget=forms.CheckboxSelectMultiple, **common
        )
    if item.type == "number":
        return forms.IntegerField(min_value=item.minimum, max_value=item.maximum, **common)
    return forms.CharField(
        max_length=item.max_length, widget=forms.Textarea(attrs={"rows": 4}), **common
    )


def _coerce(item: Item, raw: Any) -> Answer:
    if raw in (None, "", []):
        return None
    if item.type in ("likert", "single"):
        return _option_value(item, raw)
    if item.type == "multiple":
        return [_option_value(item, value) for value in raw]
    if item.type == "number":
        return int(raw)
    return str(raw)


def _option_value(item: Item, raw: str) -> int | str:
    for value in item.option_values():
        if str(value) == str(raw):
            return value
    raise ValueError(f"{raw!r} is not an option of {item.key}")


def _initial(instrument: Instrument, answers: Mapping[str, Any]) -> dict[str, Any]:
    initial: dict[str, Any] = {}
    for item in instrument.items:
        value = answers.get(item.key)
        if value is None:
            continue
        initial[item.key] = [str(v) for v in value] if isinstance(value, list) else str(value)
    return initial


# --- scoring --------------------------------------------------------------------------------


def score(instrument: Instrument, answers: Mapping[str, Any]) -> dict[str, float | None]:
    """Each scale's score, or None when fewer than ``min_answered`` items were answered."""
    return {scale.key: _scale_score(instrument, scale, answers) for scale in instrument.scales}


def _scale_score(instrument: Instrument, scale: Scale, answers: Mapping[str, Any]) -> float | None:
    values = [scored_value(instrument.item(key), answers.get(key)) for key in scale.items]
    answered = [v for v in values if v is not None]
    if len(answered) < scale.min_answered:
        return None
    total = sum(answered, Decimal(0))
    result = total if scale.method == "sum" else total / len(answered)
    return float(round(result, 4))


def scored_value(item: Item, value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        return None
    if item.reverse:
        values = [int(v) for v in item.option_values()]
        return Decimal(min(values) + max(values) - value)
    return Decimal(value)


def value_domain(item: Item) -> str:
    """A short description of the allowed values, for the export codebook."""
    if item.options:
        return "|".join(str(value) for value in item.option_values())
    if item.type == "number":
        low = "" if item.minimum is None else str(item.minimum)
        high = "" if item.maximum is None else str(item.maximum)
        return f"{low}..{high}"
    return f"text (max {item.max_length})"
