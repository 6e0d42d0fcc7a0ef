from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from stopcsam.conftest import ParticipantPersona, StaffPersona

pytestmark = pytest.mark.django_db
PAGES = ["/en/", "/de/start/", "/cs/login/", "/en/staff/login/"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_strict_headers(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_no_inline_script_and_load_nothing_from_elsewhere(path: str) -> None:
    html = Client().get(path).content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(
        r"""(?:src|href)=["'](?:https?:)?//""",
        html.replace('href="https://www.wikipedia.org/"', ""),
    )
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html)  # no inline event handlers


def test_participant_pages_are_never_stored(
    participant: ParticipantPersona, participant_client: Callable[..., Client]
) -> None:
    response = participant_client(participant).get("/en/me/")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]


def test_staff_pages_are_never_stored(
    therapist: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    response = staff_client(therapist).get("/en/staff/")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]


def test_session_cookies_are_strict_httponly_and_end_with_the_browser(
    participant: ParticipantPersona,
) -> None:
    client = Client()
    client.post("/en/login/", {"codename": participant.codename})
    cookie = client.cookies["sid"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert not cookie["expires"] and not cookie["max-age"]
    assert not cookie["secure"]  # plain HTTP here ...


def test_cookies_are_secure_on_https(participant: ParticipantPersona) -> None:
    client = Client()
    response = client.post("/en/login/", {"codename": participant.codename}, secure=True)
    assert response.cookies["sid"]["secure"]  # ... and Secure whenever the request is HTTPS


def test_no_cookie_holds_the_codename(participant: ParticipantPersona) -> None:
    client = Client()
    response = client.post("/en/login/", {"codename": participant.codename})
    for morsel in response.cookies.values():
        assert participant.codename not in morsel.value
        assert participant.codename.split()[0] not in morsel.value


def test_every_participant_page_has_a_quick_exit(
    participant: ParticipantPersona,
    participant_client: Callable[..., Client],
) -> None:
    visits = [(participant_client(participant), p) for p in ["/en/", "/en/me/", "/en/me/delete/"]]
    visits += [(Client(), p) for p in ["/de/", "/es/start/", "/pt/login/"]]
    for client, path in visits:
        response = client.get(path)
        assert response.status_code == 200, path
        assert 'id="quick-exit" href="https://www.wikipedia.org/"' in response.content.decode()


def test_healthz_reports_the_database(db: None) -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200 and "database: ok" in response.content.decode()


ONION = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvw.onion"


@pytest.mark.parametrize("marked_secure", [True, False])
def test_an_onion_beside_a_clearnet_https_name_works_when_nginx_marks_it_secure(
    marked_secure: bool, settings: object
) -> None:
    """With STOPCSAM_HTTPS=true every plain-HTTP request is redirected to https://, which an
    onion does not serve. The onion's own nginx server block marks its requests as secure
    (Tor encrypts end to end; docs/operators.md), and then pages and forms work on it."""
    settings.SECURE_SSL_REDIRECT = True  # type: ignore[attr-defined]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # type: ignore[attr-defined]
    settings.ALLOWED_HOSTS = ["help.example.org", ONION]  # type: ignore[attr-defined]
    settings.CSRF_TRUSTED_ORIGINS = [f"http://{ONION}"]  # type: ignore[attr-defined]
    proto = "https" if marked_secure else "http"
    client = Client(enforce_csrf_checks=True, HTTP_HOST=ONION, HTTP_X_FORWARDED_PROTO=proto)
    page = client.get("/en/start/")
    if not marked_secure:
        assert page.status_code == 301 and page["Location"].startswith(f"https://{ONION}")
        return
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token is not None
    form = {"csrfmiddlewaretoken": token.group(1), "language": "en"}
    posted = client.post("/en/start/", form, HTTP_ORIGIN=f"http://{ONION}")
    assert posted.status_code == 200  # the codename page: the form was accepted
    assert 'id="codename"' in posted.content.decode()


NUL_REQUESTS = [
    ("/en/chat/s/abc%00def/", {}),
    ("/en/chat/console/abc%00def/", {}),
    ("/en/sessions/s/abc%00def.ics", {}),
    ("/en/sessions/feed.ics?key=abc%00def", {}),
    ("/en/staff/invite/abc%00def/", {}),
    ("/en/me/", {"sid": "abc\x00def"}),
]


@pytest.mark.parametrize(("path", "cookies"), NUL_REQUESTS)
def test_a_nul_in_the_path_query_or_cookie_is_a_clear_400(
    path: str,
    cookies: dict[str, str],
    participant: ParticipantPersona,
    participant_client: Callable[[ParticipantPersona], Client],
) -> None:
    """PostgreSQL cannot hold NUL in text: looked up, such a value was a 500 there. The
    participant is signed in, so that the session and participant lookups run too."""
    client = participant_client(participant)
    for name, value in cookies.items():
        client.cookies[name] = value
    response = client.get(path)
    assert response.status_code == 400
    assert "Traceback" not in response.content.decode()


def test_the_partner_api_refuses_a_nul_in_its_own_format() -> None:
    """Found by schemathesis: the refusal was the HTML error page, not the API's JSON."""
    response = Client().get("/api/v1/widget/message?q%00=1")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "invalid_request"


def test_the_browsers_icon_request_is_answered_without_a_404(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 404 on every page wrote a warning each time (a review finding)."""
    response = Client().get("/favicon.ico")
    assert response.status_code == 204 and not response.content
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("path", ["/en/me/?q=a%00b", "/en/login", "/"])
def test_pages_answered_by_a_middleware_may_not_be_framed_either(path: str) -> None:
    """The NUL refusal, the added slash and the language redirect are answered before the
    view, inside which XFrameOptionsMiddleware sat: they went out without X-Frame-Options
    (a browser without CSP's frame-ancestors could frame the 400 page)."""
    response = Client().get(path)
    assert response.status_code in (301, 302, 400)
    assert response["X-Frame-Options"] == "DENY"
