"""Forms post with Origin: null under Referrer-Policy no-referrer; CSRF must still hold."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _token(client: Client) -> str:
    html = client.get("/en/login/").content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _post(client: Client, token: str | None, **headers: str) -> int:
    data = {"codename": "alpha beta"}
    if token:
        data["csrfmiddlewaretoken"] = token
    return client.post("/en/login/", data, headers=headers).status_code


def test_a_same_origin_post_with_origin_null_is_accepted() -> None:
    client = Client(enforce_csrf_checks=True)
    token = _token(client)
    assert _post(client, token, origin="null", sec_fetch_site="same-origin") == 400  # form error


def test_origin_null_without_fetch_metadata_is_refused() -> None:
    client = Client(enforce_csrf_checks=True)
    assert _post(client, _token(client), origin="null") == 403


def test_origin_null_from_another_site_is_refused() -> None:
    client = Client(enforce_csrf_checks=True)
    assert _post(client, _token(client), origin="null", sec_fetch_site="cross-site") == 403


def test_a_foreign_origin_is_refused() -> None:
    client = Client(enforce_csrf_checks=True)
    assert _post(client, _token(client), origin="https://evil.example") == 403


def test_a_missing_token_is_refused_with_a_friendly_page() -> None:
    client = Client(enforce_csrf_checks=True)
    _token(client)
    response = client.post(
        "/de/login/", {"codename": "x"}, headers={"origin": "null", "sec_fetch_site": "same-origin"}
    )
    assert response.status_code == 403
    assert b"<h1>" in response.content and b"Traceback" not in response.content
