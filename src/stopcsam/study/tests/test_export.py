"""The pseudonymised export round-trips with its codebook and leaks nothing."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from stopcsam.conftest import StaffPersona
from stopcsam.core.models import AuditEvent
from stopcsam.study.export import codebook, export_csv
from stopcsam.study.models import ProtocolVersion
from stopcsam.study.selectors import consort_counts
from stopcsam.study.tests.conftest import answered_baseline, enrolled

pytestmark = pytest.mark.django_db


def _study_admin(site: object, language: str) -> tuple[Any, Any]:
    from stopcsam.accounts.models import Role
    from stopcsam.accounts.services import staff_create

    return staff_create(  # type: ignore[return-value]
        username="sam",
        password="a-long-unusual-passphrase",
        role=Role.STUDY_ADMIN,
        site=site,  # type: ignore[arg-type]
        languages=[language],
    )


def _load(version: ProtocolVersion, *, free_text: bool = False) -> list[dict[str, str]]:
    text = "".join(export_csv(version, include_free_text=free_text))
    return list(csv.DictReader(io.StringIO(text)))


def test_the_export_round_trips_with_its_codebook(version: ProtocolVersion) -> None:
    enrolments = answered_baseline(version)
    rows = _load(version)
    book = codebook(version)
    variables = {(v["instrument"], v["variable"]): v for v in book["variables"]}
    assert [c["name"] for c in book["columns"]] == list(rows[0])
    assert len({r["study_id"] for r in rows}) == len(enrolments)
    for row in rows:
        spec = variables[(row["instrument"], row["variable"])]
        if row["value"] == "":
            continue
        if spec["type"] == "integer":
            assert str(int(row["value"])) == row["value"]
            assert row["value"] in spec["values"].split("|") or ".." in spec["values"]
        elif spec["kind"] == "scale":
            float(row["value"])
        assert row["arm"] in {"chat", "waitlist"}
        assert int(row["day_from_randomization"]) == 0


def test_the_export_holds_no_codename_key_or_fine_timestamp(version: ProtocolVersion) -> None:
    enrolments = answered_baseline(version)
    text = "".join(export_csv(version, include_free_text=True))
    for enrolment in enrolments:
        participant = enrolment.participant
        assert participant.codename_lookup not in text and participant.codename_hash not in text
    ids = {row["study_id"] for row in csv.DictReader(io.StringIO(text))}
    assert all(re.fullmatch(r"S[0-9A-F]{14}", sid) for sid in ids)
    assert not re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d", text)  # no dates or times at all
    pks = {str(e.pk) for e in enrolments} | {str(e.participant_id) for e in enrolments}
    assert not {row["study_id"] for row in csv.DictReader(io.StringIO(text))} & pks


def test_free_text_only_behind_the_flag(version: ProtocolVersion) -> None:
    answered_baseline(version)
    without = _load(version)
    with_text = _load(version, free_text=True)
    assert not any(r["kind"] == "text" for r in without)
    notes = [r for r in with_text if r["kind"] == "text"]
    assert notes and all(r["value"] == "I am worried about my urges" for r in notes)
    assert "wb_note" not in {v["variable"] for v in codebook(version)["variables"]}


def test_study_ids_are_stable_and_distinct(version: ProtocolVersion) -> None:
    answered_baseline(version, participants=5)
    first = [r["study_id"] for r in _load(version)]
    assert first == [r["study_id"] for r in _load(version)]
    assert len(set(first)) == 5


def test_only_study_admins_export_and_each_export_is_audited(
    version: ProtocolVersion,
    coordinator: StaffPersona,
    therapist: StaffPersona,
    staff_client: Callable[..., Client],
    site_de: object,
) -> None:
    user, device = _study_admin(site_de, "en")
    admin = staff_client(StaffPersona(user, device))
    answered_baseline(version, participants=2)
    for persona in (coordinator, therapist):
        assert staff_client(persona).get("/en/study/research/export/").status_code == 403
    assert admin.get("/en/study/research/export/").status_code == 200
    response = admin.post("/en/study/research/export/", {})
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert body.startswith("study_id,arm,") and "wb_note" not in body
    assert AuditEvent.objects.filter(action="study.exported").count() == 1
    book = json.loads(admin.get("/en/study/research/codebook.json").content)
    assert book["protocol"]["key"] == "stop-csam-demo"
    assert admin.get("/en/study/research/codebook.csv").status_code == 200
    assert admin.get("/en/study/research/codebook.xml").status_code == 404


def test_the_consort_flow_is_a_table_by_arm_under_the_arms_labels(
    version: ProtocolVersion, staff_client: Callable[..., Client], site_de: object
) -> None:
    user, device = _study_admin(site_de, "de")
    answered_baseline(version, participants=3)
    page = staff_client(StaffPersona(user, device)).get("/de/study/research/export/")
    html = page.content.decode()
    rows = re.findall(r'<tr><th scope="row">(.*?)</tr>', html, re.S)
    cells = [re.findall(r"<td>(\d+)</td>", row) for row in rows]
    assert [re.sub(r"<.*", "", row).strip() for row in rows] == ["Chat-Intervention", "Warteliste"]
    # randomized (the tallies of _study's three), received, lost, analysed
    tallied = [str(n) for n in consort_counts(version)["randomized"].values()]
    assert [c[0] for c in cells] == tallied and sum(map(int, tallied)) == 3
    assert "<code>waitlist</code>" in html and "0 mit ihren Antworten, 0 gelöscht" in html


def test_randomized_only_participants_are_exported(version: ProtocolVersion) -> None:
    answered_baseline(version, participants=2)
    enrolled(version)  # consented but not randomized
    assert len({r["study_id"] for r in _load(version)}) == 2


@pytest.mark.parametrize(
    ("written", "exported"),
    [
        ("=1+1", "'=1+1"),
        ("+1 more worry", "'+1 more worry"),
        ("-I am worried", "'-I am worried"),
        ("@home it is worse", "'@home it is worse"),
        ("I am worried = anxious", "I am worried = anxious"),
    ],
)
def test_free_text_is_never_a_spreadsheet_formula(
    written: str, exported: str, version: ProtocolVersion
) -> None:
    answered_baseline(
        version, participants=1, text=written
    )  # the whole baseline: randomized, exported
    (note,) = [r for r in _load(version, free_text=True) if r["kind"] == "text"]
    assert note["value"] == exported


def test_the_codebook_csv_holds_no_spreadsheet_formula() -> None:
    """The codebook's labels and value ranges come from the protocol, which coordinators
    write in the admin: a label beginning with = ran as a formula when a researcher opened
    the codebook, and a range of negative numbers (-3..3) was taken for one (a review
    finding). Text cells are kept as text there too."""
    from stopcsam.study.export import codebook_csv

    entry = {
        "instrument": "mood",
        "instrument_version": "1",
        "variable": "m1",
        "kind": "item",
        "type": "integer",
        "values": "-3..3",
        "reverse_scored": False,
        "label": '=HYPERLINK("https://example.org","Rate your mood")',
    }
    rows = list(csv.DictReader(io.StringIO("".join(codebook_csv({"variables": [entry]})))))
    assert rows[0]["label"] == "'" + entry["label"]
    assert rows[0]["values"] == "'-3..3"
    assert rows[0]["variable"] == "m1" and rows[0]["reverse_scored"] == "False"


def test_choice_answers_and_protocol_keys_are_never_a_spreadsheet_formula(db: None) -> None:
    """A site writes the protocol's option values: a multiple-choice answer joined by ; and
    a single choice that begin with = or - ran as formulas when a researcher opened the
    export, while only free text was kept as text (a review finding). Every cell the export
    writes from data is guarded, in one place."""
    import copy

    from stopcsam.study.demo import demo_definition
    from stopcsam.study.selectors import parsed_protocol
    from stopcsam.study.services import protocol_load, response_save
    from stopcsam.study.tests.conftest import enrolled

    definition = copy.deepcopy(demo_definition())
    wellbeing = next(i for i in definition["instruments"] if i["key"] == "wellbeing")
    choices = [{"value": v, "label": {"en": v}} for v in ("=1+1", "-worse", "@home")]
    wellbeing["items"] += [
        {"key": "wb_when", "type": "multiple", "label": {"en": "When?"}, "options": choices},
        {"key": "wb_where", "type": "single", "label": {"en": "Where?"}, "options": choices},
    ]
    version = protocol_load(definition=definition)
    protocol = parsed_protocol(version)
    enrolment = enrolled(version)
    for name in protocol.baseline.instruments:
        instrument = protocol.instruments[name]
        answers: dict[str, Any] = {
            item.key: item.option_values()[0] if item.options else 1
            for item in instrument.items
            if item.type != "text"
        }
        if name == "wellbeing":
            answers.update(wb_when=["=1+1", "-worse"], wb_where="@home")
        response_save(
            enrolment=enrolment,
            time_point="baseline",
            instrument=instrument,
            answers=answers,
            complete=True,
        )
    values = {r["variable"]: r["value"] for r in _load(version)}
    assert values["wb_when"] == "'=1+1;-worse"
    assert values["wb_where"] == "'@home"
    assert values["wb_mood"] == "0"
