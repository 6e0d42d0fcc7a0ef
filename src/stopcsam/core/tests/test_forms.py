"""Dates far outside the service's years get a clear error, not a 500 (OverflowError in the
date arithmetic behind the forms)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from stopcsam.conftest import StaffPersona

pytestmark = pytest.mark.django_db
ERROR = "Choose a date between 2000-01-01 and 2100-12-31."


@pytest.mark.parametrize(
    "query", ["?end=0001-01-01", "?start=0001-01-01&end=9999-12-31", "?end=2100-12-31"]
)
def test_the_funnel_filter_refuses_dates_it_cannot_count_from(
    query: str, coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    client = staff_client(coordinator)
    client.raise_request_exception = False
    response = client.get("/en/staff/outreach/funnel/" + query)
    assert response.status_code in (200, 400)
    assert (ERROR in response.content.decode()) == ("0001" in query or "9999" in query)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_an_availability_exception_refuses_a_date_out_of_range(
    day: str, therapist: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    client = staff_client(therapist)
    client.raise_request_exception = False
    form = {"kind": "holiday", "date": day, "start_time": "09:00", "end_time": "10:00"}
    response = client.post("/en/sessions/staff/availability/exception/", form)
    assert response.status_code == 400
    assert ERROR in response.content.decode()
    assert client.get("/en/sessions/staff/availability/").status_code == 200
