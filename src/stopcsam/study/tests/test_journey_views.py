"""Screening, enrolment, consent, questionnaires and randomization through the views."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test import Client

from stopcsam.accounts.models import Participant
from stopcsam.core import clock
from stopcsam.core.models import AuditEvent
from stopcsam.study.models import ConsentRecord, Enrolment, ProtocolVersion, Response, Tally
from stopcsam.study.tests.conftest import SCREEN_OK

pytestmark = pytest.mark.django_db


def _screen(client: Client, answers: dict[str, object], lang: str = "en") -> object:
    return client.post(f"/{lang}/study/screening/", {k: str(v) for k, v in answers.items()})


def _eligible_participant(client: Client, lang: str = "en") -> None:
    assert _screen(client, {**SCREEN_OK, "language": lang}, lang).status_code == 302
    page = client.get(f"/{lang}/study/eligible/")
    signup_url = re.search(r'href="([^"]*start/\?next=[^"]*)"', page.content.decode()).group(1)  # type: ignore[union-attr]
    response = client.post(signup_url, {"language": lang})
    assert response.status_code == 200
    next_url = re.search(r'<form method="get" action="([^"]+)"', response.content.decode())
    assert next_url and next_url.group(1) == f"/{lang}/study/enrol/"
    assert client.get(next_url.group(1)).status_code == 302


def _consent(client: Client, lang: str = "en") -> None:
    page = client.get(f"/{lang}/study/consent/")
    items = re.findall(r'name="(item_\w+)"', page.content.decode())
    assert len(items) == 4
    data = {i: "on" for i in items} | _shown(page)
    assert client.post(f"/{lang}/study/consent/", data).status_code == 302


def _shown(page: object) -> dict[str, str]:
    """The consent page's hidden field naming the text it showed."""
    found = re.search(r'name="shown" value="([0-9a-f]+)"', page.content.decode())  # type: ignore[attr-defined]
    assert found
    return {"shown": found.group(1)}


def _answer(
    client: Client, time_point: str, instrument: str, data: dict[str, str], lang: str = "en"
) -> object:
    return client.post(f"/{lang}/study/questionnaire/{time_point}/{instrument}/", data)


BASELINE = {
    "urge": {"urge_strength": "2", "urge_days": "3"},
    "selfefficacy": {"se_resist": "3", "se_help": "4", "se_lost": "1"},
    "wellbeing": {
        "wb_mood": "2",
        "wb_calm": "1",
        "wb_sleep": "2",
        "wb_note": "I am worried about my urges",
    },
}


def test_an_ineligible_person_leaves_only_counts(version: ProtocolVersion) -> None:
    client = Client()
    response = _screen(client, {**SCREEN_OK, "age": 16})
    assert response.status_code == 200
    assert "not the right fit" in response.content.decode()
    assert Participant.objects.count() == 0 and Enrolment.objects.count() == 0
    tallies = {(t.event, t.detail): t.count for t in Tally.objects.all()}
    assert tallies == {("screened", ""): 1, ("excluded", "under_18"): 1}
    assert "study_pending_screening" not in client.session


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"recent_use": "no"}, "no_recent_use"),
        ({"language": "other"}, "language_not_offered"),
        ({"in_treatment": "yes"}, "already_in_treatment"),
    ],
)
def test_each_exclusion_rule_counts_its_reason(
    version: ProtocolVersion, change: dict[str, str], reason: str
) -> None:
    _screen(Client(), {**SCREEN_OK, **change})
    assert Tally.objects.get(event="excluded").detail == reason


def test_screening_errors_are_clear_and_localised(version: ProtocolVersion) -> None:
    english = _screen(Client(), {"age": "abc"})
    german = _screen(Client(), {"age": "abc"}, "de")
    assert english.status_code == german.status_code == 400
    assert "Please enter a whole number." in english.content.decode()
    assert "Please enter a whole number." not in german.content.decode()
    assert Tally.objects.count() == 0


def test_the_eligible_path_stores_answers_encrypted(version: ProtocolVersion) -> None:
    client = Client()
    _eligible_participant(client)
    enrolment = Enrolment.objects.get()
    assert enrolment.status == "eligible" and '"age": 30' in enrolment.screening_answers
    with connection.cursor() as cursor:
        cursor.execute("SELECT screening_answers FROM study_enrolment")
        raw = cursor.fetchone()[0]
    assert "age" not in raw and raw.startswith("v1.")


def test_consent_needs_every_item(version: ProtocolVersion) -> None:
    client = Client()
    _eligible_participant(client)
    response = client.post("/en/study/consent/", {"item_read": "on", "item_adult": "on"})
    assert response.status_code == 400
    assert ConsentRecord.objects.count() == 0
    _consent(client)
    record = ConsentRecord.objects.get()
    assert record.document_version == "1" and record.language == "en"
    assert len(record.text_sha256) == 64
    assert AuditEvent.objects.filter(action="study.consented").count() == 1


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("de", "Bitte prüfen Sie die unten markierten Antworten."),
        ("cs", "Zkontrolujte prosím odpovědi označené níže."),
        ("es", "Revisa las respuestas marcadas abajo."),
    ],
)
def test_answers_refused_are_said_at_the_top_of_the_page(
    version: ProtocolVersion, lang: str, said: str
) -> None:
    """Without JavaScript the answer comes back at the top of the page, and on a phone the
    boxes left empty lie under the whole consent text: "I agree" seemed to do nothing."""
    client = Client()
    _eligible_participant(client, lang)
    page = client.get(f"/{lang}/study/consent/")
    first_box = re.search(r'name="(item_\w+)"', page.content.decode())
    assert first_box
    refused = client.post(f"/{lang}/study/consent/", {first_box.group(1): "on"} | _shown(page))
    html = refused.content.decode()
    assert refused.status_code == 400
    alert = html.find('role="alert">' + said)
    assert 0 < alert < html.find("<p>", html.find("</h1>") + 1)  # above the text
    _consent(client, lang)
    screening = _screen(Client(), {"age": "thirty"}, lang).content.decode()  # type: ignore[attr-defined]
    assert 'role="alert">' + said in screening
    refused = _answer(client, "baseline", "urge", {"urge_days": "99"}, lang)
    assert 'role="alert">' + said in refused.content.decode()  # type: ignore[attr-defined]
    refused = client.post(f"/{lang}/study/withdraw/", {"choice": "erase"})
    assert 'role="alert">' + said in refused.content.decode()


def test_czech_labels_that_are_sentences_take_no_colon(version: ProtocolVersion) -> None:
    """Django's Czech catalogue adds a colon after a label's full stop: the consent's boxes
    read "Je mi 18 let nebo více.:", and so did every statement of the questionnaires."""
    client = Client()
    _eligible_participant(client, "cs")
    consent = client.get("/cs/study/consent/").content.decode()
    assert "Je mi 18 let nebo více.</label>" in consent and ".:<" not in consent
    _consent(client, "cs")
    statements = client.get("/cs/study/questionnaire/baseline/selfefficacy/").content.decode()
    assert "Věřím, že dokážu odolat nutkání, když přijde.</legend>" in statements
    assert ".:<" not in statements
    assert ".:<" not in client.get("/cs/study/withdraw/").content.decode()


def test_the_consent_copy_has_version_hash_and_no_identity(version: ProtocolVersion) -> None:
    client = Client()
    _eligible_participant(client)
    _consent(client)
    copy = client.get("/en/study/consent/copy/")
    body = copy.content.decode()
    assert copy["Content-Disposition"] == 'attachment; filename="consent.html"'
    record = ConsentRecord.objects.get()
    assert record.text_sha256 in body and "Information and consent" in body
    participant = record.enrolment.participant
    assert participant.codename_lookup not in body and participant.codename_hash not in body
    assert not re.search(r"\d\d:\d\d", body)  # the day only, no time of day


def test_a_new_consent_version_asks_again_at_next_login(version: ProtocolVersion) -> None:
    client = Client()
    _eligible_participant(client)
    _consent(client)
    assert client.get("/en/study/").status_code == 200
    definition = dict(version.definition)
    definition["consent"] = {**definition["consent"], "version": "2"}
    ProtocolVersion.objects.filter(pk=version.pk).update(definition=definition)
    response = client.get("/en/study/")
    assert response.status_code == 302 and response["Location"] == "/en/study/consent/"
    assert "The information has changed" in client.get("/en/study/consent/").content.decode()
    _consent(client)
    assert client.get("/en/study/").status_code == 200
    assert Enrolment.objects.get().status == "consented"


def test_a_consent_given_to_a_text_changed_meanwhile_is_not_recorded(
    version: ProtocolVersion,
) -> None:
    """The consent is recorded for the text the participant read: one changed while the page
    was open (a new version loaded) is shown again, not recorded as agreed to unseen."""
    client = Client()
    _eligible_participant(client)
    page = client.get("/en/study/consent/")
    items = re.findall(r'name="(item_\w+)"', page.content.decode())
    definition = dict(version.definition)
    documents = definition["consent"]["documents"]
    changed = {**documents["en"], "body": [*documents["en"]["body"], "A new paragraph."]}
    definition["consent"] = {"version": "2", "documents": {**documents, "en": changed}}
    ProtocolVersion.objects.filter(pk=version.pk).update(definition=definition)
    response = client.post("/en/study/consent/", {i: "on" for i in items} | _shown(page))
    assert response.status_code == 200
    assert ConsentRecord.objects.count() == 0
    body = response.content.decode()
    assert "A new paragraph." in body and "The information has changed" in body
    client.post("/en/study/consent/", {i: "on" for i in items} | _shown(response))
    assert ConsentRecord.objects.get().document_version == "2"


def test_the_consent_page_does_not_say_the_information_changed_when_it_did_not(
    version: ProtocolVersion,
) -> None:
    """Opened again after consenting (from the browser's history, say), the consent page
    said "The information has changed" and asked for agreement again: nothing is due, so
    the participant's space is shown."""
    client = Client()
    _eligible_participant(client)
    _consent(client)
    response = client.get("/en/study/consent/")
    assert response.status_code == 302 and response["Location"] == "/en/study/"


def test_a_consent_sent_twice_is_recorded_once(version: ProtocolVersion) -> None:
    """A double click, or the form sent again from the browser's history, records nothing
    more: one record and one audit entry of the one consent."""
    client = Client()
    _eligible_participant(client)
    page = client.get("/en/study/consent/")
    data = dict.fromkeys(re.findall(r'name="(item_\w+)"', page.content.decode()), "on")
    for _attempt in range(2):
        response = client.post("/en/study/consent/", data | _shown(page))
        assert response.status_code == 302 and response["Location"] == "/en/study/"
    assert ConsentRecord.objects.count() == 1
    assert AuditEvent.objects.filter(action="study.consented").count() == 1


def test_completing_the_baseline_randomizes(version: ProtocolVersion) -> None:
    client = Client()
    _eligible_participant(client)
    _consent(client)
    home = client.get("/en/study/").content.decode()
    assert home.count("/en/study/questionnaire/baseline/") == 3
    for name, data in list(BASELINE.items())[:-1]:
        assert _answer(client, "baseline", name, data)["Location"] == "/en/study/"  # type: ignore[index]
    last = _answer(client, "baseline", "wellbeing", BASELINE["wellbeing"])
    assert last["Location"] == "/en/study/allocation/"  # type: ignore[index]
    enrolment = Enrolment.objects.get()
    assert enrolment.status == "randomized" and enrolment.arm in {"chat", "waitlist"}
    page = client.get("/en/study/allocation/").content.decode()
    assert ("Chat intervention" if enrolment.arm == "chat" else "Waiting list") in page


def test_the_baselines_last_questionnaire_sent_twice_shows_the_group(
    version: ProtocolVersion,
) -> None:
    """A double click (or the form sent again from the browser's history) on the last
    baseline questionnaire: the answers are stored once, and the second answer leads to the
    group drawn, as the first did, not to "This questionnaire is not open"."""
    client = Client()
    _eligible_participant(client)
    _consent(client)
    for name, data in BASELINE.items():
        _answer(client, "baseline", name, data)
    again = _answer(client, "baseline", "wellbeing", BASELINE["wellbeing"])
    assert again.status_code == 302  # type: ignore[attr-defined]
    assert again["Location"] == "/en/study/allocation/"  # type: ignore[index]
    assert Response.objects.filter(instrument="wellbeing").count() == 1
    assert Tally.objects.get(event="randomized").count == 1


def test_answers_refused_for_a_questionnaire_no_longer_open_say_it_is_not_open(
    version: ProtocolVersion,
) -> None:
    """The questionnaire was answered in another tab; this tab's answers, incomplete, were
    shown with their errors, as if answering could still help."""
    client = Client()
    _eligible_participant(client)
    _consent(client)
    _answer(client, "baseline", "urge", BASELINE["urge"])  # the other tab
    again = _answer(client, "baseline", "urge", {"urge_strength": "2"})
    assert again.status_code == 409  # type: ignore[attr-defined]
    assert "This questionnaire is not open" in again.content.decode()  # type: ignore[attr-defined]
    assert Response.objects.filter(instrument="urge").count() == 1


def test_free_text_is_encrypted_and_scores_are_kept(version: ProtocolVersion) -> None:
    client = Client()
    _eligible_participant(client)
    _consent(client)
    _answer(client, "baseline", "wellbeing", BASELINE["wellbeing"])
    response = Response.objects.get(instrument="wellbeing")
    assert response.scores == {"wellbeing_sum": 5.0}
    assert "wb_note" not in response.answers
    with connection.cursor() as cursor:
        cursor.execute("SELECT free_text FROM study_response")
        assert "worried" not in cursor.fetchone()[0]


def test_partial_answers_are_saved_and_resumed(version: ProtocolVersion) -> None:
    client = Client()
    _eligible_participant(client)
    _consent(client)
    saved = _answer(client, "baseline", "selfefficacy", {"se_resist": "3", "save_later": "1"})
    assert saved.status_code == 302  # type: ignore[attr-defined]
    response = Response.objects.get()
    assert response.completed_at is None and response.answers == {"se_resist": 3}
    page = client.get("/en/study/questionnaire/baseline/selfefficacy/").content.decode()
    assert re.search(r'value="3"[^>]*checked|checked[^>]*value="3"', page)
    assert "started" in client.get("/en/study/").content.decode()
    refused = _answer(client, "baseline", "selfefficacy", {"se_resist": "3"})
    assert refused.status_code == 400  # type: ignore[attr-defined]


def test_later_questionnaires_open_with_their_window(version: ProtocolVersion) -> None:
    client = Client()
    _eligible_participant(client)
    _consent(client)
    for name, data in BASELINE.items():
        _answer(client, "baseline", name, data)
    assert client.get("/en/study/questionnaire/week2/urge/").status_code == 404
    enrolment = Enrolment.objects.get()
    Enrolment.objects.filter(pk=enrolment.pk).update(
        randomized_at=enrolment.randomized_at - timedelta(days=15)
    )
    assert "/en/study/questionnaire/week2/urge/" in client.get("/en/study/").content.decode()
    assert (
        _answer(client, "week2", "urge", {"urge_strength": "1", "urge_days": "0"}).status_code
        == 302
    )  # type: ignore[attr-defined]
    assert client.get("/en/study/questionnaire/week2/urge/").status_code == 404  # done
    Enrolment.objects.filter(pk=enrolment.pk).update(
        randomized_at=enrolment.randomized_at - timedelta(days=30)
    )
    assert client.get("/en/study/questionnaire/week2/wellbeing/").status_code == 404  # closed


def test_the_waiting_list_is_offered_chat_after_its_wait(version: ProtocolVersion) -> None:
    from stopcsam.study.selectors import parsed_protocol, participant_may_book
    from stopcsam.study.services import randomize, response_save
    from stopcsam.study.tests.conftest import enrolled

    enrolment = enrolled(version)
    with mock.patch("stopcsam.study.randomization.arm_at", return_value="waitlist"):
        randomize(enrolment=enrolment)
    assert not participant_may_book(enrolment.participant)
    protocol = parsed_protocol(version)
    after = protocol.time_point(protocol.arm("waitlist").offers_chat_after or "")
    assert after.key == "post"  # the demo's four-week wait, as in STOP-CSAM
    Enrolment.objects.filter(pk=enrolment.pk).update(
        randomized_at=enrolment.randomized_at - timedelta(days=after.day + 1)
    )
    enrolment.refresh_from_db()
    asked = protocol.instruments_at(after, protocol.arm("waitlist"))
    assert "feedback" in after.instruments and "feedback" not in asked  # not about sessions
    for name in asked:
        assert not participant_may_book(enrolment.participant)
        instrument = protocol.instruments[name]
        answers = {
            item.key: item.option_values()[0] if item.options else 1
            for item in instrument.items
            if item.type != "text"
        }
        response_save(
            enrolment=enrolment,
            time_point=after.key,
            instrument=instrument,
            answers=answers,
            complete=True,
        )
    enrolment.refresh_from_db()
    assert enrolment.chat_offered and participant_may_book(enrolment.participant)


def test_a_waitlisted_participant_who_misses_week_4_is_offered_the_chat_all_the_same(
    version: ProtocolVersion,
) -> None:
    """The questionnaires of week 4 open the chat at once; once their window has closed
    unanswered, the chat is offered all the same (a review finding: it never was)."""
    from stopcsam.study.selectors import participant_may_book
    from stopcsam.study.tests.conftest import randomized_to, signed_in

    enrolment = randomized_to(version, "waitlist")
    client = signed_in(enrolment)
    for days, offered in [(41, False), (43, True)]:  # week 4's window closes on day 42
        Enrolment.objects.filter(pk=enrolment.pk).update(
            randomized_at=clock.now() - timedelta(days=days)
        )
        assert participant_may_book(enrolment.participant) is offered
        page = client.get("/en/study/").content.decode()
        assert ("/en/sessions/book/" in page) is offered
        enrolment.refresh_from_db()
        assert enrolment.chat_offered is offered
    assert AuditEvent.objects.filter(action="study.chat_offered").count() == 1


def test_the_waiting_list_is_told_the_day_its_wait_ends(version: ProtocolVersion) -> None:
    from zoneinfo import ZoneInfo

    from django.utils import timezone, translation
    from django.utils.formats import date_format

    client = Client()
    _eligible_participant(client)
    _consent(client)
    with mock.patch("stopcsam.study.randomization.arm_at", return_value="waitlist"):
        for name, data in BASELINE.items():
            _answer(client, "baseline", name, data)
    enrolment = Enrolment.objects.get()
    opens = enrolment.randomized_at + timedelta(days=28)  # week 4 of the demo protocol
    with translation.override("en"), timezone.override(ZoneInfo("Europe/London")):
        day = date_format(timezone.localtime(opens), "DATE_FORMAT")
    waiting = f"You are on the waiting list until {day}."
    for url in ("/en/study/allocation/", "/en/study/"):
        assert waiting in client.get(url).content.decode()
    # Once that day has come, the questionnaire itself is the news.
    with mock.patch("stopcsam.study.views._now", return_value=opens + timedelta(minutes=1)):
        page = client.get("/en/study/").content.decode()
    assert "waiting list until" not in page
    assert "once you have answered the questionnaires “Week 4”, or on" in page


def test_an_arm_that_never_offers_chat_is_not_told_it_waits(db: None) -> None:
    from stopcsam.study.services import protocol_load
    from stopcsam.study.tests.conftest import four_arm_definition, randomized_to, signed_in

    version = protocol_load(definition=four_arm_definition())
    client = signed_in(randomized_to(version, "selfhelp"))
    for url in ("/en/study/allocation/", "/en/study/"):
        page = client.get(url).content.decode()
        assert "Self-help" in page and 'id="waiting"' not in page


def test_someone_without_an_enrolment_is_sent_to_screening(version: ProtocolVersion) -> None:
    client = Client()
    client.post("/en/start/", {"language": "en"})
    assert client.get("/en/study/enrol/")["Location"] == "/en/study/screening/"
    assert "Start the questions" in client.get("/en/study/").content.decode()


def test_pages_need_a_participant(version: ProtocolVersion) -> None:
    for path in [
        "/en/study/",
        "/en/study/consent/",
        "/en/study/withdraw/",
        "/en/study/questionnaire/baseline/urge/",
    ]:
        assert Client().get(path)["Location"].startswith("/en/login/")


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_time_point_is_not_found(method: str, version: ProtocolVersion) -> None:
    client = Client(raise_request_exception=False)
    _eligible_participant(client)
    _consent(client)
    send = getattr(client, method)
    response = send("/en/study/questionnaire/nosuchpoint/urge/", {"urge_strength": "x"})
    assert response.status_code == 404
    assert not Response.objects.exists()


@pytest.mark.usefixtures("version")
def test_the_chat_language_chosen_at_screening_decides_the_enrolment() -> None:
    """Screened in English, chose to chat in Czech, kept the codename's language at the page's
    (English): the enrolment, its site and stratum, and the booking that follows went by the
    codename's language, and the participant would have chatted in English."""
    client = Client()
    assert _screen(client, {**SCREEN_OK, "language": "cs"}).status_code == 302
    page = client.get("/en/study/eligible/")
    signup_url = re.search(r'href="([^"]*start/\?next=[^"]*)"', page.content.decode()).group(1)  # type: ignore[union-attr]
    assert client.post(signup_url, {"language": "en"}).status_code == 200
    assert client.get("/en/study/enrol/").status_code == 302
    enrolment = Enrolment.objects.get()
    assert (enrolment.language, enrolment.site) == ("cs", "CZ")
    assert enrolment.stratum.split("|") == ["CZ", "cs"]
    assert Participant.objects.get().language == "cs"  # booking looks for Czech therapists


def test_a_screening_without_a_chat_language_keeps_the_accounts() -> None:
    """'Another language' is excluded at screening; a protocol that does not ask keeps the
    account's language."""
    from stopcsam.study.services import _chat_language

    participant = Participant(language="pt")
    assert _chat_language(participant, {"age": 30}) == "pt"
    assert _chat_language(participant, {"language": "other"}) == "pt"
    assert _chat_language(participant, {"language": "de"}) == "de"
