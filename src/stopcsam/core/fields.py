"""A model field whose value is encrypted at rest with ``stopcsam.core.crypto``."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.models.query_utils import DeferredAttribute

from stopcsam.core import crypto


class Sealed:
    """A stored value of a field bound to its row, not opened yet: opening it needs the row.
    Not a string, so that code reading the column without its row (``values()``,
    ``values_list()``) fails at once instead of taking the ciphertext for the text."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return "<sealed>"


class _OpenedOnRead(DeferredAttribute):
    """Opens a bound field's sealed value on first read, under the row's values as they are
    then (a value moved to another row, or a row whose bound columns were changed, does not
    open), and keeps the text for later reads."""

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            field: EncryptedTextField = self.field  # type: ignore[assignment]
            value = crypto.decrypt(value.token, context=field.context_of(instance))
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        # A data descriptor: without ``__set__`` the instance's own value would hide it.
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """Text that the database only ever sees sealed.

    ``context`` defaults to ``"<app_label>.<model>.<field>"`` so a ciphertext cannot be moved
    between columns. ``bound_to`` names fields of the same row whose values are bound into
    the tag as well (a chat message's session, sender and client id), so a ciphertext cannot
    be moved between rows either, nor a row's bound columns changed under it: the sender of
    a message changed in the database no longer passes for the other side's words. A bound
    field is sealed and opened through its model instance only (``save``, ``bulk_create``,
    reading the attribute); a queryset's ``update`` of it is refused. Reads of a tampered
    value raise ``TamperedCiphertextError``.
    """

    def __init__(
        self,
        *args: Any,
        context: str | None = None,
        bound_to: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        self.explicit_context = context
        self.bound_to = tuple(bound_to)
        if self.bound_to:
            self.descriptor_class = _OpenedOnRead
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.explicit_context is not None:
            kwargs["context"] = self.explicit_context
        if self.bound_to:
            kwargs["bound_to"] = self.bound_to
        return name, path, args, kwargs

    @property
    def encryption_context(self) -> str:
        if self.explicit_context:
            return self.explicit_context
        return f"{self.model._meta.label_lower}.{self.name}"

    def bound_context(self, **values: Any) -> str:
        """The context of a bound field's value in a row with these values of ``bound_to``
        (for code that seals or opens without a model instance, such as the chat's writer)."""
        if set(values) != set(self.bound_to):
            raise TypeError(f"{self.name} is bound to {', '.join(self.bound_to)}.")
        row = [str(values[name]) for name in self.bound_to]
        return f"{self.encryption_context}{json.dumps(row, ensure_ascii=True)}"

    def open(self, value: Sealed, **values: Any) -> str:
        """A bound value read without its model instance (``values_list()``), opened under
        its row's values of ``bound_to``."""
        return crypto.decrypt(value.token, context=self.bound_context(**values))

    def context_of(self, instance: models.Model) -> str:
        return self.bound_context(**{name: getattr(instance, name) for name in self.bound_to})

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        if not self.bound_to or value is None:
            return value
        return Sealed(crypto.encrypt(str(value), context=self.context_of(model_instance)))

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if self.bound_to:
            if not isinstance(value, Sealed):
                raise TypeError(f"{self.name} is sealed through its model instance only.")
            return value.token
        return crypto.encrypt(str(value), context=self.encryption_context)

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        if self.bound_to:
            return Sealed(value)
        return crypto.decrypt(value, context=self.encryption_context)

    def to_python(self, value: Any) -> Any:
        return value


def reseal_bound(
    apps: Any, schema_editor: Any, app_label: str, sealed: dict[str, tuple[str, ...]], *, bind: bool
) -> None:
    """For a migration that binds sealed columns to their rows: re-seal every value of
    ``sealed`` (model name: columns, all bound to the same fields) from its column's context
    alone to the context bound to its row, or back (``bind=False``). Through the migration
    state's fields, which know both contexts; a thousand rows at a time."""
    quote = schema_editor.connection.ops.quote_name
    for name, columns in sealed.items():
        model = apps.get_model(app_label, name)
        fields = [model._meta.get_field(column) for column in columns]
        bound = fields[0].bound_to
        table = quote(model._meta.db_table)
        names = ("id", *bound, *columns)
        selected = ", ".join(quote(model._meta.get_field(name).column) for name in names)
        assigned = ", ".join(f"{quote(field.column)} = %s" for field in fields)
        last = 0
        with schema_editor.connection.cursor() as cursor:
            while True:
                # Names come from model metadata, never from input.
                cursor.execute(
                    f"SELECT {selected} FROM {table} WHERE id > %s ORDER BY id LIMIT 1000",  # noqa: S608
                    [last],
                )
                rows = cursor.fetchall()
                for pk, *values in rows:
                    row = dict(zip(bound, values[: len(bound)], strict=True))
                    resealed = []
                    for field, value in zip(fields, values[len(bound) :], strict=True):
                        plain, tied = field.encryption_context, field.bound_context(**row)
                        old, new = (plain, tied) if bind else (tied, plain)
                        text = crypto.decrypt(value, context=old)
                        resealed.append(crypto.encrypt(text, context=new))
                    cursor.execute(
                        f"UPDATE {table} SET {assigned} WHERE id = %s",  # noqa: S608
                        [*resealed, pk],
                    )
                if len(rows) < 1000:
                    break
                last = rows[-1][0]
