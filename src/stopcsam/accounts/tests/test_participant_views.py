from __future__ import annotations

import re
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.middleware.csrf import CSRF_SESSION_KEY
from django.test import Client
from django.urls import reverse

from stopcsam.accounts.models import Participant
from stopcsam.conftest import ParticipantPersona
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db

FORBIDDEN_WORDS = {"email", "mail", "phone", "ip", "agent", "name", "address", "referer", "host"}


def _signup(client: Client, language: str = "en") -> str:
    response = client.post(reverse("accounts:signup"), {"language": language})
    assert response.status_code == 200
    match = re.search(r'<p class="codename" id="codename">([^<]+)</p>', response.content.decode())
    assert match, "the codename page shows the codename"
    return match.group(1)


def test_signup_shows_a_codename_once_and_stores_only_hashes() -> None:
    client = Client()
    codename = _signup(client)
    participant = Participant.objects.get()
    assert participant.codename_hash.startswith("$argon2id$")
    assert len(participant.codename_lookup) == 64
    assert codename not in participant.codename_hash
    assert client.get(reverse("accounts:me")).status_code == 200
    # Signing up again in the same session leads home and creates nobody.
    again = client.post(reverse("accounts:signup"), {"language": "en"})
    assert again.status_code == 302 and Participant.objects.count() == 1


def test_the_codename_is_in_the_participants_language() -> None:
    codename = _signup(Client(), language="cs")
    from stopcsam.accounts.codenames import wordlist

    assert all(word in wordlist("cs") for word in codename.split())
    assert Participant.objects.get().language == "cs"


def test_login_accepts_the_codename_in_any_case_and_spacing(
    participant: ParticipantPersona,
) -> None:
    client = Client()
    typed = "  " + participant.codename.upper().replace(" ", "   ") + " "
    response = client.post(reverse("accounts:login"), {"codename": typed})
    assert response.status_code == 302 and response["Location"] == reverse(
        settings.STOPCSAM_PARTICIPANT_HOME
    )
    assert client.get(reverse("accounts:me")).status_code == 200
    together = Client()  # "spaces do not matter": none at all, too
    typed = participant.codename.replace(" ", "")
    assert together.post(reverse("accounts:login"), {"codename": typed}).status_code == 302
    assert together.get(reverse("accounts:me")).status_code == 200


def test_a_wrong_codename_gets_one_generic_localised_message(
    participant: ParticipantPersona,
) -> None:
    client = Client()
    wrong = participant.codename.rsplit(" ", 1)[0] + " zzzz"
    english = client.post("/en/login/", {"codename": wrong})
    german = client.post("/de/login/", {"codename": wrong})
    assert english.status_code == german.status_code == 400
    assert "We could not find that codename" in english.content.decode()
    assert "We could not find that codename" not in german.content.decode()
    assert client.get(reverse("accounts:me")).status_code == 302


def test_a_wrong_codename_is_told_at_the_codename_field(participant: ParticipantPersona) -> None:
    """The message belongs to the field: the input is marked invalid and described by it, so
    a screen reader announces it there (a message for the whole form is tied to no input)."""
    wrong = participant.codename.rsplit(" ", 1)[0] + " zzzz"
    body = Client().post("/en/login/", {"codename": wrong}).content.decode()
    field = re.search(r'<input[^>]*name="codename"[^>]*>', body)
    assert field and 'aria-invalid="true"' in field.group(0)
    described = re.search(r'aria-describedby="([^"]+)"', field.group(0))
    assert described
    errors = re.search(rf'<ul class="errorlist" id="{described.group(1)}">(.*?)</ul>', body)
    assert errors and "We could not find that codename" in errors.group(1)


def test_over_long_input_is_refused_before_any_hashing(participant: ParticipantPersona) -> None:
    with (
        mock.patch("stopcsam.accounts.services._codename_hasher") as hasher,
        mock.patch("stopcsam.accounts.services.lookup_digest") as digest,
    ):
        response = Client().post(reverse("accounts:login"), {"codename": "word " * 1000})
    assert response.status_code == 400
    hasher.assert_not_called()
    digest.assert_not_called()


def test_a_participant_can_delete_their_account(participant: ParticipantPersona) -> None:
    client = Client()
    client.post(reverse("accounts:login"), {"codename": participant.codename})
    refused = client.post(reverse("accounts:delete"), {})
    assert refused.status_code == 400 and Participant.objects.count() == 1
    response = client.post(reverse("accounts:delete"), {"confirm": "on"})
    assert response.status_code == 302
    assert not Participant.objects.filter(pk=participant.participant.pk).exists()
    assert AuditEvent.objects.filter(action="participant.deleted").count() == 1
    again = Client().post(reverse("accounts:login"), {"codename": participant.codename})
    assert again.status_code == 400


def test_logout_is_a_post(participant: ParticipantPersona) -> None:
    client = Client()
    client.post(reverse("accounts:login"), {"codename": participant.codename})
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert client.get(reverse("accounts:me")).status_code == 200
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("accounts:me")).status_code == 302


def test_the_participant_table_has_no_identifying_column() -> None:
    with connection.cursor() as cursor:
        columns = [
            c.name
            for c in connection.introspection.get_table_description(
                cursor, Participant._meta.db_table
            )
        ]
    assert set(columns) == {"id", "codename_lookup", "codename_hash", "language", "created_at"}
    assert not [c for c in columns if set(c.split("_")) & FORBIDDEN_WORDS]


def test_login_gets_a_fresh_session_id(participant: ParticipantPersona) -> None:
    client = Client()
    client.get(reverse("accounts:login"))
    client.session.save()
    before = client.cookies["sid"].value
    client.post(reverse("accounts:login"), {"codename": participant.codename})
    assert client.cookies["sid"].value != before


def test_login_gets_a_fresh_csrf_token(participant: ParticipantPersona) -> None:
    """As Django's own login() does: a token seen before the login (on a shared computer,
    say) no longer sends forms as the participant."""
    client = Client()
    client.get(reverse("accounts:login"))  # the form's token, kept in the session
    before = client.session[CSRF_SESSION_KEY]
    client.post(reverse("accounts:login"), {"codename": participant.codename})
    assert client.session[CSRF_SESSION_KEY] != before


def test_the_session_holds_the_id_never_the_codename(participant: ParticipantPersona) -> None:
    client = Client()
    client.post(reverse("accounts:login"), {"codename": participant.codename})
    stored = dict(client.session.items())
    assert participant.codename not in repr(stored)
    assert stored["participant_id"] == participant.participant.pk
    assert "participant_lang" not in stored  # written, never read: one fact fewer


@pytest.mark.django_db
def test_a_signed_in_participant_always_has_a_way_back_to_their_space(
    participant, participant_client
) -> None:  # type: ignore[no-untyped-def]
    """Found by a review helper: the home page offered "Start" and "Log in" to a participant
    already signed in, and several pages had no way back."""
    from django.utils import translation

    client = participant_client(participant)
    with translation.override("en"):
        home = reverse(settings.STOPCSAM_PARTICIPANT_HOME)
    for path in ("/en/", "/en/chat/", "/en/sessions/", "/en/me/"):
        assert f'class="home-link" href="{home}"' in client.get(path).content.decode(), path
    front = client.get("/en/").content.decode()
    assert "Go to your space" in front and "Already have a codename?" not in front
    anonymous = Client().get("/en/").content.decode()
    assert "home-link" not in anonymous and "Already have a codename?" in anonymous


def test_a_participant_asked_to_log_in_comes_back_to_the_page_they_opened(
    participant: ParticipantPersona,
) -> None:
    """A session that ended (Tor Browser forgets it when closed) sends the participant to log
    in; afterwards they land on the page they opened (their sessions, the chat), not on a
    start page where they have to find it again."""
    client = Client()
    sent = client.get("/de/me/")
    assert sent.status_code == 302 and sent["Location"] == "/de/login/?next=/de/me/"
    back = client.post(sent["Location"], {"codename": participant.codename})
    assert back.status_code == 302 and back["Location"] == "/de/me/"


def test_a_form_sent_after_the_session_ended_does_not_come_back_as_a_get(
    participant: ParticipantPersona,
) -> None:
    sent = Client().post("/en/me/delete/", {"confirm": "on"})
    assert sent.status_code == 302 and sent["Location"] == "/en/login/"


def _language_choice(html: str) -> str:
    return html.split('<nav class="languages"', 1)[1].split("</nav>", 1)[0]


def test_a_change_of_language_on_the_codename_page_shows_the_codename_again() -> None:
    """Tor Browser asks for English pages; a participant who turned to German on the page
    showing their codename, which is shown once and never stored, followed a link to the
    sign-up page: signed in already, they were sent on and the codename was lost for good."""
    client = Client()
    shown = client.post("/en/start/?next=/en/study/enrol/", {"language": "en"})
    codename = re.search(r'id="codename">([^<]+)<', shown.content.decode())
    assert codename
    choice = _language_choice(shown.content.decode())
    assert 'method="post"' in choice and "href=" not in choice  # no link away from it
    german = re.search(r'formaction="([^"]+)" lang="de"', choice)
    assert german and german.group(1) == "/de/start/codename/?next=/de/study/enrol/"
    again = client.post(german.group(1), {"codename": codename.group(1)})
    html = again.content.decode()
    assert again.status_code == 200 and '<html lang="de">' in html
    assert f'id="codename">{codename.group(1)}<' in html
    assert "Ihr Codename" in html and 'action="/de/study/enrol/"' in html


def test_the_codename_page_shows_no_codename_but_the_participants_own(
    participant: ParticipantPersona, other_participant: ParticipantPersona
) -> None:
    client = Client()
    client.post("/en/login/", {"codename": participant.codename})
    for sent in (other_participant.codename, "no such words", ""):
        answer = client.post("/de/start/codename/", {"codename": sent})
        assert answer.status_code == 302 and answer["Location"] == reverse(
            settings.STOPCSAM_PARTICIPANT_HOME
        )
    own = client.post("/de/start/codename/", {"codename": participant.codename})
    assert f'id="codename">{participant.codename}<' in own.content.decode()
    signed_out = Client().post("/de/start/codename/", {"codename": participant.codename})
    assert signed_out["Location"].startswith("/de/login/")
