from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_demo_names_the_address_it_is_served_at(settings) -> None:  # type: ignore[no-untyped-def]
    """It printed port 8000 whatever the demo's port was (a review finding)."""
    settings.DEMO_MODE = True
    settings.STOPCSAM_DEMO_SEEDERS = []
    out = StringIO()
    call_command("seed_demo", base_url="http://127.0.0.1:8347", stdout=out)
    assert "http://127.0.0.1:8347/en/staff/login/" in out.getvalue()
    assert "8000" not in out.getvalue()
