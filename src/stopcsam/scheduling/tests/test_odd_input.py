from __future__ import annotations

import logging


def test_book_page_with_a_non_ascii_digit_week_is_not_a_500(participant, participant_client):
    client = participant_client(participant)
    client.raise_request_exception = False
    response = client.get("/en/sessions/book/?week=%C2%B2")  # "²": isdigit() but not int()
    assert response.status_code < 500, response.status_code


def test_the_access_log_names_no_participant_notice(participant, participant_client, caplog):
    client = participant_client(participant)
    with caplog.at_level(logging.INFO, logger="stopcsam.access"):
        client.post("/en/sessions/notices/4711/dismiss/")
    lines = [r.getMessage() for r in caplog.records if r.name == "stopcsam.access"]
    assert lines and not any("4711" in line for line in lines), lines


def test_a_confirmed_plan_naming_a_therapist_id_past_the_databases_range_is_not_a_500(
    participant, participant_client
):
    """Found by a review helper: the id went to the database as it came, and SQLite raised
    OverflowError (a 500 with a traceback) for a number it cannot hold."""
    client = participant_client(participant)
    client.raise_request_exception = False
    response = client.post(
        "/en/sessions/book/confirm/",
        {"therapist": "9" * 30, "starts": "1893456000,1894060800,1894665600,1895270400"},
    )
    assert response.status_code == 400, response.status_code
    assert "This plan is not valid. Please start again." in response.content.decode()
