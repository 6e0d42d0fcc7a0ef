from __future__ import annotations

import pytest

from stopcsam.core import zones


@pytest.mark.parametrize(
    "name",
    [
        "America/Argentina",  # a folder of zones in the database, not a zone
        "America/Indiana",
        "Europe/" + "x" * 300,  # longer than a file name may be
        "Etc/../Europe/Berlin",
        "a/\x00",
    ],
)
def test_a_name_that_is_no_zone_is_invalid_rather_than_an_error(name: str) -> None:
    """A site's time zone is typed into the admin unchecked: "America/Argentina" raised
    IsADirectoryError from ``valid`` and every page of that site's staff was a 500."""
    assert zones.valid(name) is False


def test_a_zone_is_valid() -> None:
    assert zones.valid("America/Argentina/Cordoba") and zones.valid("Europe/Berlin")
