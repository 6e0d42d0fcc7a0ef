"""day_from_randomization of baseline answers (a review of the docs, 2026-12-01): baseline has
three instruments and randomization waits for the last; one answered days before it has a
negative day, as docs/researchers.md says."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from stopcsam.core import clock
from stopcsam.study.export import export_csv
from stopcsam.study.models import ProtocolVersion
from stopcsam.study.selectors import parsed_protocol
from stopcsam.study.tests.conftest import answer_baseline, enrolled

pytestmark = pytest.mark.django_db


def test_a_baseline_answer_before_randomization_has_a_negative_day(
    version: ProtocolVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    protocol = parsed_protocol(version)
    enrolment = enrolled(version)
    start = clock.now()
    for days, name in zip((0, 3, 3), protocol.baseline.instruments, strict=True):
        monkeypatch.setattr(clock, "now", lambda days=days: start + timedelta(days=days))
        answer_baseline(enrolment, protocol.instruments[name])
    enrolment.refresh_from_db()
    assert enrolment.randomized_at is not None
    rows = list(csv.DictReader(io.StringIO("".join(export_csv(version)))))
    days = {r["instrument"]: r["day_from_randomization"] for r in rows}
    first, *_, last = protocol.baseline.instruments
    assert days[first] == "-3"  # answered three days before the last, which randomized
    assert days[last] == "0"
