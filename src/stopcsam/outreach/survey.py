"""The anonymous intercept survey: an instrument definition (core.instruments) read from JSON.

Free-text items are refused: a sentence can identify its writer, and it cannot be shown as an
aggregate. The definition is read once per process and again when the file changes.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from django.conf import settings

from stopcsam.core.instruments import Instrument, InstrumentDefinitionError, instrument_from_dict

DEFAULT_SURVEY = Path(__file__).parent / "content" / "survey.json"


def survey_path() -> Path:
    return Path(getattr(settings, "OUTREACH_SURVEY_FILE", "") or DEFAULT_SURVEY)


def current_survey() -> Instrument:
    path = survey_path()
    return _load(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> Instrument:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    instrument = instrument_from_dict(data)
    if any(item.type == "text" for item in instrument.items):
        raise InstrumentDefinitionError(
            f"{instrument.key}: the anonymous survey may not ask for free text."
        )
    return instrument
