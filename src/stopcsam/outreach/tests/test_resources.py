"""The resource directory: filtering, and JSON/CSV import and export with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from stopcsam.core.models import AuditEvent
from stopcsam.outreach.directory_io import FIELDS
from stopcsam.outreach.models import Resource

pytestmark = pytest.mark.django_db

GOOD = {
    "country": "AT",
    "name": "Demo helpline",
    "kind": "helpline",
    "languages": ["de"],
    "description": "A demo entry.",
    "website": "https://example.org/demo",
    "phone": "",
    "email": "",
    "hours": "Weekdays",
    "cost": "Free",
    "anonymous": True,
}


def test_the_directory_filters_by_country_and_language() -> None:
    html = Client().get("/de/support/?country=DE&language=de").content.decode()
    assert "Kein Täter werden" in html and "Troubled Desire" in html  # XX: any country
    assert "Emergencias 112" not in html and "Stop It Now" not in html
    spanish = Client().get("/es/support/?country=ES&language=es").content.decode()
    assert "Emergencias 112" in spanish and "Kein Täter werden" not in spanish


def test_an_unknown_country_is_a_clear_400() -> None:
    response = Client().get("/en/support/?country=ZZ")
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_demo_entries_exist_for_each_study_country() -> None:
    countries = set(Resource.objects.values_list("country", flat=True))
    assert {"DE", "ES", "PT", "CZ"} <= countries


def test_json_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"resources": [GOOD]}), encoding="utf-8")
    call_command("resources_import", str(source))
    assert Resource.objects.get(name="Demo helpline").languages == ["de"]
    capsys.readouterr()
    call_command("resources_export", "--format", "json")
    exported = json.loads(capsys.readouterr().out)["resources"]
    assert GOOD in exported
    assert AuditEvent.objects.filter(action="outreach.resources_imported").exists()


def test_csv_round_trip_and_replace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("resources_export", "--format", "csv")
    exported = capsys.readouterr().out
    assert exported.splitlines()[0].startswith("country,name,kind,languages")
    source = tmp_path / "in.csv"
    source.write_text(exported.splitlines()[0] + "\nAT,Demo csv,chat,de;en,,,,,,,yes\n", "utf-8")
    call_command("resources_import", str(source), "--replace")
    shown = list(Resource.objects.filter(active=True).values_list("name", "languages"))
    assert shown == [("Demo csv", ["de", "en"])]


def test_an_import_with_errors_names_each_row_and_changes_nothing(tmp_path: Path) -> None:
    bad = [
        GOOD,
        {**GOOD, "name": "B", "kind": "hotline", "languages": ["fr"], "website": "not a url"},
        {**GOOD, "name": "C", "country": "Germany", "anonymous": "maybe", "colour": "red"},
        GOOD,
    ]
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(bad), encoding="utf-8")
    before = Resource.objects.count()
    with pytest.raises(CommandError) as raised:
        call_command("resources_import", str(source))
    message = str(raised.value)
    assert "entry 2: languages must list" in message and "entry 2: kind must be" in message
    assert "entry 2: website" in message
    assert "entry 3: unknown fields: colour" in message and "entry 3: anonymous" in message
    assert "entry 3: country" in message
    assert "entry 4: Demo helpline (AT) appears twice" in message
    assert Resource.objects.count() == before


def test_a_csv_without_the_columns_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("name,country\nX,DE\n", encoding="utf-8")
    with pytest.raises(CommandError, match="missing columns"):
        call_command("resources_import", str(source))


def test_each_language_sees_the_services_texts_in_it_when_written() -> None:
    """A usability finding: on the German page the German service "Kein Täter werden" was
    described in English, with hours and cost in English too."""
    german = Client().get("/de/support/?country=DE").content.decode()
    assert "Kostenlose, vertrauliche Therapie" in german and "Siehe Website" in german
    assert "Free, confidential therapy" not in german and "See the website" not in german
    english = Client().get("/en/support/?country=DE").content.decode()
    assert "Free, confidential therapy" in english and "See the website" in english
    for language, said in (("cs", "Vždy"), ("pt", "Sempre"), ("es", "Siempre")):
        page = Client().get(f"/{language}/support/").content.decode()
        assert said in page and "Always" not in page


def test_a_language_without_its_own_text_shows_the_services_own(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps([GOOD]), encoding="utf-8")
    call_command("resources_import", str(source))
    page = Client().get("/cs/support/?country=AT").content.decode()
    assert "A demo entry." in page and "Weekdays" in page


def test_texts_in_other_languages_travel_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = {"de": {"description": "Ein Demo-Eintrag.", "hours": "Werktags", "cost": "Kostenlos"}}
    source = tmp_path / "in.json"
    source.write_text(json.dumps([{**GOOD, "texts": texts}]), encoding="utf-8")
    call_command("resources_import", str(source))
    assert "Werktags" in Client().get("/de/support/?country=AT").content.decode()
    capsys.readouterr()
    call_command("resources_export", "--format", "json")
    exported = json.loads(capsys.readouterr().out)["resources"]
    assert {**GOOD, "texts": texts} in exported
    # Imported again without texts (a CSV, or JSON without them), they stay as they are.
    source.write_text(json.dumps([GOOD]), encoding="utf-8")
    call_command("resources_import", str(source))
    assert "Werktags" in Client().get("/de/support/?country=AT").content.decode()
    # With other texts, those replace them.
    source.write_text(json.dumps([{**GOOD, "texts": {}}]), encoding="utf-8")
    call_command("resources_import", str(source))
    assert "Werktags" not in Client().get("/de/support/?country=AT").content.decode()


@pytest.mark.parametrize(
    ("texts", "said"),
    [
        ("German", "texts must be an object of languages"),
        ({"fr": {"description": "x"}}, "texts: fr is not one of"),
        ({"de": {"colour": "red"}}, "texts de: give only description, hours, cost"),
        ({"de": ["description"]}, "texts de: give only"),
        ({"de": {"hours": "h" * 201}}, "texts de: hours"),
    ],
)
def test_bad_texts_are_named_and_nothing_changes(tmp_path: Path, texts: object, said: str) -> None:
    source = tmp_path / "bad.json"
    source.write_text(json.dumps([{**GOOD, "texts": texts}]), encoding="utf-8")
    with pytest.raises(CommandError, match="entry 1: " + said):
        call_command("resources_import", str(source))
    assert not Resource.objects.filter(name="Demo helpline").exists()


def test_importing_a_listed_service_again_updates_it(tmp_path: Path) -> None:
    """Every import of a service already in the directory was refused as "already exists":
    its uniqueness was checked against the database, where the import updates it."""
    source = tmp_path / "in.json"
    source.write_text(json.dumps([GOOD]), encoding="utf-8")
    call_command("resources_import", str(source))
    source.write_text(json.dumps([{**GOOD, "hours": "Evenings"}]), encoding="utf-8")
    call_command("resources_import", str(source))
    assert Resource.objects.get(name="Demo helpline").hours == "Evenings"


def _load_texts_as_migration_0004_does() -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("stopcsam.outreach.migrations.0004_resource_texts")
    migration.load(apps, None)


def test_the_migration_leaves_texts_out_for_a_demo_service_whose_hours_or_cost_were_edited() -> (
    None
):
    """An existing directory whose coordinator changed a demo service's cost (its description
    as shipped) was given the shipped German "Kostenlos" for it: the German page said free
    where the service now said fees apply."""
    service = Resource.objects.get(name="Kein Täter werden")
    service.texts.all().delete()
    service.cost = "Fees apply; see the website"
    service.save()
    stop_it_now = Resource.objects.get(name="Stop It Now")
    stop_it_now.texts.all().delete()
    stop_it_now.hours = "Weekdays 9 to 17"
    stop_it_now.save()
    untouched = Resource.objects.get(name="Troubled Desire")
    untouched.texts.all().delete()
    _load_texts_as_migration_0004_does()
    assert not service.texts.exists() and not stop_it_now.texts.exists()
    assert untouched.texts.count() == 4  # still as shipped: its texts come
    german = Client().get("/de/support/?country=DE").content.decode()
    assert "Fees apply; see the website" in german and "Kostenlose" not in german


def test_a_text_without_hours_or_cost_shows_the_services_own() -> None:
    """Only the description written in German: the German page showed no hours and no cost
    at all, where the service gives them ("otherwise as the service gives them")."""
    service = Resource.objects.get(name="Kein Täter werden")
    service.texts.filter(language="de").update(hours="", cost="")
    german = Client().get("/de/support/?country=DE").content.decode()
    assert "Kostenlose, vertrauliche Therapie" in german
    assert "<dd>See the website</dd>" in german and "<dd>Free</dd>" in german
    service.texts.filter(language="de").update(description="")
    german = Client().get("/de/support/?country=DE").content.decode()
    assert "Free, confidential therapy" in german


@pytest.mark.parametrize(
    ("texts", "said"),
    [
        ({"de": {"description": {"text": "Ein Demo-Eintrag."}}}, "texts de: description"),
        ({"de": {"hours": ["Werktags"]}}, "texts de: hours"),
        ({"de": {"cost": 0}}, "texts de: cost"),
    ],
)
def test_texts_that_are_not_strings_are_named(tmp_path: Path, texts: object, said: str) -> None:
    """They were stored as Python's rendering ("{'text': ...}", "['Werktags']") or, for 0,
    as nothing, and shown so on the page."""
    source = tmp_path / "bad.json"
    source.write_text(json.dumps([{**GOOD, "texts": texts}]), encoding="utf-8")
    with pytest.raises(CommandError, match="entry 1: " + said):
        call_command("resources_import", str(source))
    assert not Resource.objects.filter(name="Demo helpline").exists()


@pytest.mark.parametrize("languages", [[["de"]], [{"de": 1}], [1], "de", []])
def test_odd_languages_are_named_not_a_traceback(tmp_path: Path, languages: object) -> None:
    source = tmp_path / "bad.json"
    source.write_text(json.dumps([{**GOOD, "languages": languages}]), encoding="utf-8")
    with pytest.raises(CommandError, match="entry 1: languages must list"):
        call_command("resources_import", str(source))


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", ["Demo helpline"]), ("description", {"en": "A demo entry."}), ("hours", 0)],
)
def test_fields_that_are_not_strings_are_named(tmp_path: Path, field: str, value: object) -> None:
    """They were stored as Python writes them ("['Demo helpline']") or, for 0, as nothing."""
    source = tmp_path / "bad.json"
    source.write_text(json.dumps([{**GOOD, field: value}]), encoding="utf-8")
    with pytest.raises(CommandError, match=f"entry 1: {field}: must be text"):
        call_command("resources_import", str(source))
    assert not Resource.objects.filter(name__contains="Demo helpline").exists()


@pytest.mark.parametrize(("name", "text"), [("empty.json", "[]"), ("empty.csv", ",".join(GOOD))])
def test_a_file_without_services_is_refused(tmp_path: Path, name: str, text: str) -> None:
    """With --replace, an empty (or truncated to its header) file hid every service of the
    public directory, and the command said "Imported 0 services."."""
    source = tmp_path / name
    source.write_text(text + "\n", encoding="utf-8")
    shown = Resource.objects.filter(active=True).count()
    with pytest.raises(CommandError, match="lists no services"):
        call_command("resources_import", str(source), "--replace")
    assert Resource.objects.filter(active=True).count() == shown > 0


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ("long.csv", ",".join(FIELDS) + '\nDE,"' + "x" * 200_000 + '"\n', "line 2"),
    ],
)
def test_a_malformed_file_is_a_clear_error_not_a_traceback(
    tmp_path: Path, name: str, text: str, said: str
) -> None:
    """Nested too deep (RecursionError) or a field past the csv module's limit (csv.Error)
    ended the command with a traceback."""
    source = tmp_path / name
    source.write_text(text)
    with pytest.raises(CommandError, match=said):
        call_command("resources_import", str(source))
