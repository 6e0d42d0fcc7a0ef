from __future__ import annotations

import pytest

from stopcsam.accounts.models import Role
from stopcsam.accounts.services import staff_create
from stopcsam.conftest import STAFF_PASSWORD, StaffPersona

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/en/study/research/export/", "/en/study/research/codebook.json"])
def test_research_pages_without_an_active_protocol_are_not_a_500(site_de, staff_client, url):
    user, device = staff_create(
        username="ada",
        password=STAFF_PASSWORD,
        role=Role.STUDY_ADMIN,
        site=site_de,
        languages=["en"],
    )
    client = staff_client(StaffPersona(user, device))
    client.raise_request_exception = False
    assert client.get(url).status_code != 500


def test_the_export_command_without_an_active_protocol_says_so(tmp_path) -> None:
    """It ended in a traceback of NoActiveProtocolError (a review finding)."""
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No protocol is active"):
        call_command("study_export", str(tmp_path / "out"))
    assert not (tmp_path / "out" / "data.csv").exists()
