from __future__ import annotations

import asyncio

import pytest

from stopcsam.chat.tests.wsharness import Socket

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_query_string_that_is_not_utf8_is_refused_not_an_exception(
    live, participant, participant_client
):
    cookie = f"sid={participant_client(participant).cookies['sid'].value}"

    async def scenario() -> None:
        sock = Socket(f"/ws/chat/{live.public_id}", cookie=cookie)
        sock.scope["query_string"] = b"lang=\xff"
        accepted = await sock.connect()
        assert accepted
        await sock.close()

    asyncio.run(scenario())


def test_session_page_with_a_non_ascii_digit_before_is_not_a_500(
    live, participant, participant_client
):
    client = participant_client(participant)
    client.raise_request_exception = False
    response = client.get(f"/en/chat/s/{live.public_id}/?before=%C2%B2")
    assert response.status_code < 500, response.status_code
