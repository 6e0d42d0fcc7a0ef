from __future__ import annotations

from django.test import Client

from stopcsam.accounts.services import staff_invitation_create


def test_invitation_with_a_non_ascii_digit_code_is_not_a_500(site_de):
    _invitation, token = staff_invitation_create(role="therapist", site=site_de, languages=["en"])
    client = Client(raise_request_exception=False)
    response = client.post(
        f"/en/staff/invite/{token}/",
        {
            "username": "newbie",
            "password1": "a-long-enough-pass-phrase-91",
            "password2": "a-long-enough-pass-phrase-91",
            "otp_token": "²²²²²²",
        },
    )
    assert response.status_code < 500, response.status_code
