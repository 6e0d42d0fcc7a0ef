from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from stopcsam.core.crypto import active_keyring, key_id_of
from stopcsam.core.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Re-seal every encrypted field with the first (primary) key, after a rotation. "
        "Safe to run again; values already on the primary key are skipped."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        primary = active_keyring().primary_id
        for model in apps.get_models():
            fields = [f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            moved = 0
            stale = [row[0] for row in _raw(model, fields) if _needs_move(row[1:], primary)]
            for pk in stale:
                with transaction.atomic():
                    # None: deleted since it was listed (retention, an erasure): the service
                    # keeps running while keys rotate, and a DoesNotExist stopped the command.
                    instance = model._base_manager.select_for_update().filter(pk=pk).first()
                    if instance is None:
                        continue
                    instance.save(update_fields=fields)
                    moved += 1
            self.stdout.write(f"{model._meta.label}: re-sealed {moved} rows")


def _raw(model: Any, fields: list[str]) -> list[tuple[Any, ...]]:
    from django.db import connection

    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(
        quote(c)
        for c in [model._meta.pk.column, *(model._meta.get_field(n).column for n in fields)]
    )
    with connection.cursor() as cursor:
        # Names come from model metadata, never from input.
        cursor.execute(f"SELECT {columns} FROM {table}")  # noqa: S608
        return list(cursor.fetchall())


def _needs_move(values: tuple[Any, ...], primary: str) -> bool:
    return any(value is not None and key_id_of(value) != primary for value in values)
