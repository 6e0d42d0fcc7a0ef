from __future__ import annotations

import pytest
from django.test import Client

from stopcsam.outreach.tests.conftest import PartnerPersona

pytestmark = pytest.mark.django_db


def test_a_deeply_nested_body_is_a_400_not_a_500(search_partner: PartnerPersona) -> None:
    client = Client(raise_request_exception=False)
    response = search_partner.post(None, client=client, raw="[" * 8000 + "]" * 8000)
    assert response.status_code == 400, response.status_code


@pytest.mark.parametrize(
    "raw",
    [
        '{"query": "\\ud800 x"}',
        '{"query": "a", "lang": ["en"]}',
        '{"query": "a", "lang": {}}',
        '{"query": 1e999}',
        '{"query":"' + "x" * 100 + '"}',
    ],
)
def test_odd_bodies_are_not_500(search_partner: PartnerPersona, raw: str) -> None:
    client = Client(raise_request_exception=False)
    response = search_partner.post(None, client=client, raw=raw)
    assert response.status_code < 500, response.status_code
