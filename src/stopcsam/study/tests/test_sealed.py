"""The study's sealed values are bound to their rows: copied to another row, they do not open."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection

from stopcsam.core import crypto
from stopcsam.core.crypto import TamperedCiphertextError
from stopcsam.study.export import export_csv
from stopcsam.study.models import Enrolment, ProtocolVersion, Response
from stopcsam.study.tests.conftest import answered_baseline, enrolled

pytestmark = pytest.mark.django_db
NOTE = "I am worried about my urges"


def _answered(version: ProtocolVersion, note: str) -> Response:
    """A randomized participant's wellbeing response, with this free text."""
    (enrolment,) = answered_baseline(version, participants=1, text=note)
    return Response.objects.get(enrolment=enrolment, instrument="wellbeing")


def _copy(table: str, column: str, source: int, target: int) -> None:
    with connection.cursor() as cursor:
        # Names are this test's constants.
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [source])  # noqa: S608
        (sealed,) = cursor.fetchone()
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [sealed, target])  # noqa: S608


def test_free_text_copied_to_another_participants_response_does_not_open(
    version: ProtocolVersion,
) -> None:
    mine, other = _answered(version, NOTE), _answered(version, "Calm")
    _copy("study_response", "free_text", mine.pk, other.pk)
    assert NOTE in Response.objects.get(pk=mine.pk).free_text
    with pytest.raises(TamperedCiphertextError):
        _ = Response.objects.get(pk=other.pk).free_text
    with pytest.raises(TamperedCiphertextError):  # nor in the export
        "".join(export_csv(version, include_free_text=True))


def test_the_export_opens_free_text_only_when_asked(version: ProtocolVersion) -> None:
    _answered(version, NOTE)
    assert NOTE in "".join(export_csv(version, include_free_text=True))
    with crypto_refused():  # without free text, nothing sealed is opened
        assert NOTE not in "".join(export_csv(version))


def test_screening_answers_and_seeds_copied_to_another_row_do_not_open(
    version: ProtocolVersion,
) -> None:
    from stopcsam.study.demo import demo_definition
    from stopcsam.study.services import protocol_load

    first, second = enrolled(version), enrolled(version)
    _copy("study_enrolment", "screening_answers", first.pk, second.pk)
    assert "recent_use" in Enrolment.objects.get(pk=first.pk).screening_answers
    with pytest.raises(TamperedCiphertextError):
        _ = Enrolment.objects.get(pk=second.pk).screening_answers
    later = protocol_load(definition={**demo_definition(), "version": "later"}, activate=False)
    _copy("study_protocolversion", "sealed_seed", version.pk, later.pk)
    with pytest.raises(TamperedCiphertextError):
        _ = ProtocolVersion.objects.get(pk=later.pk).sealed_seed


def test_the_migration_binds_the_study_values_and_back(version: ProtocolVersion) -> None:
    import importlib

    from django.db.migrations.loader import MigrationLoader

    name = "0002_sealed_values_bound"
    step = importlib.import_module(f"stopcsam.study.migrations.{name}")
    apps = MigrationLoader(connection).project_state(("study", name)).apps
    editor = SimpleNamespace(connection=connection)
    response = _answered(version, NOTE)
    step.unbind(apps, editor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT free_text FROM study_response WHERE id = %s", [response.pk])
        (sealed,) = cursor.fetchone()
    assert NOTE in crypto.decrypt(sealed, context="study.response.free_text")
    step.bind(apps, editor)
    assert NOTE in Response.objects.get(pk=response.pk).free_text
    assert ProtocolVersion.objects.get(pk=version.pk).sealed_seed == version.sealed_seed


class crypto_refused:
    """Any decryption while inside fails the test."""

    def __enter__(self) -> None:
        from unittest import mock

        self.patch = mock.patch("stopcsam.core.crypto.decrypt", side_effect=AssertionError)
        self.patch.start()

    def __exit__(self, *exc: object) -> None:
        self.patch.stop()
