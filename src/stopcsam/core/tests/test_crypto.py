from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from stopcsam.core import crypto
from stopcsam.core.tests.testapp.models import SecretNote

OLD_KEYS = "old:" + "A" * 43 + "="
NEW_KEYS = "new:" + "B" * 43 + "=," + OLD_KEYS


def test_it_round_trips_text() -> None:
    sealed = crypto.encrypt("I am worried about my urges", context="t.note")
    assert sealed.startswith("v1.test1.")
    assert crypto.decrypt(sealed, context="t.note") == "I am worried about my urges"


def test_each_encryption_uses_a_fresh_nonce() -> None:
    assert crypto.encrypt("same", context="c") != crypto.encrypt("same", context="c")


def test_it_detects_a_tampered_ciphertext() -> None:
    sealed = crypto.encrypt("I looked at illegal images again last week", context="c")
    head, payload = sealed.rsplit(".", 1)
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    with pytest.raises(crypto.TamperedCiphertextError):
        crypto.decrypt(f"{head}.{flipped}", context="c")


def test_it_refuses_a_ciphertext_moved_to_another_column() -> None:
    sealed = crypto.encrypt("note", context="chat.message.body")
    with pytest.raises(crypto.TamperedCiphertextError):
        crypto.decrypt(sealed, context="study.answer.text")


@pytest.mark.parametrize("garbage", ["", "plain text", "v1..", "v2.test1.abcd", "v1.test1.!!"])
def test_it_rejects_values_it_did_not_seal(garbage: str) -> None:
    with pytest.raises(crypto.EncryptionError):
        crypto.decrypt(garbage, context="c")


@override_settings(STOPCSAM_ENCRYPTION_KEYS="")
def test_it_fails_closed_without_a_key() -> None:
    with pytest.raises(crypto.MissingKeyError):
        crypto.encrypt("x", context="c")


@pytest.mark.parametrize(
    "spec",
    ["nokey", "a:short", "a:" + "A" * 43 + "=,a:" + "A" * 43 + "=", "bad id!:" + "A" * 43 + "="],
)
def test_it_rejects_malformed_keyrings(spec: str) -> None:
    with pytest.raises(crypto.MissingKeyError):
        crypto.parse_keyring(spec)


def test_old_values_open_after_rotation_and_new_ones_use_the_new_key() -> None:
    with override_settings(STOPCSAM_ENCRYPTION_KEYS=OLD_KEYS):
        sealed = crypto.encrypt("before rotation", context="c")
    with override_settings(STOPCSAM_ENCRYPTION_KEYS=NEW_KEYS):
        assert crypto.decrypt(sealed, context="c") == "before rotation"
        assert crypto.key_id_of(crypto.encrypt("after", context="c")) == "new"


def test_a_value_sealed_by_a_removed_key_fails_closed() -> None:
    sealed = crypto.encrypt("x", context="c")
    with (
        override_settings(STOPCSAM_ENCRYPTION_KEYS=OLD_KEYS),
        pytest.raises(crypto.MissingKeyError),
    ):
        crypto.decrypt(sealed, context="c")


def _raw_bodies() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM core_testapp_secretnote")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_the_database_never_sees_plaintext() -> None:
    SecretNote.objects.create(body="I am worried about my urges")
    (raw,) = _raw_bodies()
    assert "worried" not in raw
    assert SecretNote.objects.get().body == "I am worried about my urges"


@pytest.mark.django_db
def test_reencrypt_moves_every_value_to_the_primary_key() -> None:
    with override_settings(STOPCSAM_ENCRYPTION_KEYS=OLD_KEYS):
        SecretNote.objects.create(body="one", other="two")
        SecretNote.objects.create(body="three")
    with override_settings(STOPCSAM_ENCRYPTION_KEYS=NEW_KEYS):
        call_command("reencrypt", stdout=open("/dev/null", "w"))  # noqa: SIM115, PTH123
        assert {crypto.key_id_of(v) for v in _raw_bodies()} == {"new"}
        assert sorted(SecretNote.objects.values_list("body", flat=True)) == ["one", "three"]


@pytest.mark.django_db
def test_reencrypt_passes_over_a_row_deleted_while_it_runs() -> None:
    """Keys rotate while the service runs: a transcript shredded by retention, or a
    participant's erasure, between the listing of stale rows and their re-sealing stopped
    the command with DoesNotExist and a traceback, leaving the rest on the old key."""
    from unittest import mock

    from stopcsam.core.management.commands import reencrypt

    with override_settings(STOPCSAM_ENCRYPTION_KEYS=OLD_KEYS):
        gone = SecretNote.objects.create(body="one")
        SecretNote.objects.create(body="two")
    listed = reencrypt._raw

    def list_then_erase(model, fields):  # type: ignore[no-untyped-def]
        rows = listed(model, fields)
        if model is SecretNote:
            SecretNote.objects.filter(pk=gone.pk).delete()
        return rows

    with (
        override_settings(STOPCSAM_ENCRYPTION_KEYS=NEW_KEYS),
        mock.patch.object(reencrypt, "_raw", list_then_erase),
    ):
        call_command("reencrypt", stdout=open("/dev/null", "w"))  # noqa: SIM115, PTH123
        assert {crypto.key_id_of(v) for v in _raw_bodies()} == {"new"}
        assert list(SecretNote.objects.values_list("body", flat=True)) == ["two"]
