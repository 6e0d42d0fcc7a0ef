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
            value = field.unseal(value.token, field.context_of(instance))
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        # A data descriptor: without ``__set__`` the instance's own value would hide it.
        instance.__dict__[self.field.attname] = value


def _plain_in_json(text: str) -> bool:
    """Does json.dumps (ensure_ascii) write ``text`` as it is? Printable ASCII with no quote
    or backslash: ids, names, client ids."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


PAD_END = "\x80"  # padding: this mark, then NULs up to the length (ISO/IEC 7816-4's way)


class EncryptedTextField(models.TextField):
    """Text that the database only ever sees sealed.

    ``context`` defaults to ``"<app_label>.<model>.<field>"`` so a ciphertext cannot be moved
    between columns. ``bound_to`` names fields of the same row whose values are bound into
    the tag as well (a chat message's session, sender and client id), so a ciphertext cannot
    be moved between rows either, nor a row's bound columns changed under it: the sender of
    a message changed in the database no longer passes for the other side's words. A bound
    field is sealed and opened through its model instance only (``save``, ``bulk_create``,
    reading the attribute); a queryset's ``update`` of it is refused. ``pad_to`` pads the
    text to a multiple of that many characters before sealing, for short values whose length
    would tell them apart (a risk level: "low" and "moderate" sealed to different lengths).
    Reads of a tampered value raise ``TamperedCiphertextError``.
    """

    def __init__(
        self,
        *args: Any,
        context: str | None = None,
        bound_to: tuple[str, ...] = (),
        pad_to: int = 0,
        **kwargs: Any,
    ) -> None:
        self.explicit_context = context
        self.bound_to = tuple(bound_to)
        self.bound_names = frozenset(self.bound_to)
        self.pad_to = pad_to
        if self.bound_to:
            self.descriptor_class = _OpenedOnRead
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.explicit_context is not None:
            kwargs["context"] = self.explicit_context
        if self.bound_to:
            kwargs["bound_to"] = self.bound_to
        if self.pad_to:
            kwargs["pad_to"] = self.pad_to
        return name, path, args, kwargs

    @property
    def encryption_context(self) -> str:
        if self.explicit_context:
            return self.explicit_context
        return f"{self.model._meta.label_lower}.{self.name}"

    def bound_context(self, **values: Any) -> str:
        """The context of a bound field's value in a row with these values of ``bound_to``
        (for code that seals or opens without a model instance, such as the chat's writer)."""
        if values.keys() != self.bound_names:
            raise TypeError(f"{self.name} is bound to {', '.join(self.bound_to)}.")
        row = [str(values[name]) for name in self.bound_to]
        if row and _plain_in_json("".join(row)):
            # The same text as json.dumps writes for these values, at a fraction of the cost:
            # the chat builds a message's context twice (json.dumps was most of it).
            return f'{self.encryption_context}["{'", "'.join(row)}"]'
        return f"{self.encryption_context}{json.dumps(row, ensure_ascii=True)}"

    def seal(self, text: str, context: str) -> str:
        if self.pad_to:
            text += PAD_END
            text += "\x00" * (-len(text) % self.pad_to)
        return crypto.encrypt(text, context=context)

    def unseal(self, token: str, context: str) -> str:
        text = crypto.decrypt(token, context=context)
        if self.pad_to:
            unpadded = text.rstrip("\x00")
            if not unpadded.endswith(PAD_END) or len(text) % self.pad_to:
                raise crypto.TamperedCiphertextError("The stored value is not padded.")
            text = unpadded[: -len(PAD_END)]
        return text

    def open(self, value: Sealed, **values: Any) -> str:
        """A bound value read without its model instance (``values_list()``), opened under
        its row's values of ``bound_to``."""
        return self.unseal(value.token, self.bound_context(**values))

    def context_of(self, instance: models.Model) -> str:
        return self.bound_context(**{name: getattr(instance, name) for name in self.bound_to})

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        if not self.bound_to or value is None:
            return value
        return Sealed(self.seal(str(value), self.context_of(model_instance)))

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if self.bound_to:
            if not isinstance(value, Sealed):
                raise TypeError(f"{self.name} is sealed through its model instance only.")
            return value.token
        return self.seal(str(value), self.encryption_context)

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        if self.bound_to:
            return Sealed(value)
        return self.unseal(value, self.encryption_context)

    def to_python(self, value: Any) -> Any:
        return value


def reseal_bound(
    apps: Any, schema_editor: Any, app_label: str, sealed: dict[str, tuple[str, ...]], *, bind: bool
) -> None:
    """For a migration that binds sealed columns to their rows (and pads them, if they have
    ``pad_to``): re-seal every value of ``sealed`` (model name: columns, all bound to the
    same fields) from its column's context alone, unpadded, to the field's way now, or back
    (``bind=False``). Through the migration state's fields, which know both ways; a thousand
    rows at a time. A value already sealed the new way is left as it is: a process of the
    new version may have stored it before the migration ran (a review finding: it stopped
    the migration)."""
    quote = schema_editor.connection.ops.quote_name
    for name, columns in sealed.items():
        model = apps.get_model(app_label, name)
        fields = [model._meta.get_field(column) for column in columns]
        bound = fields[0].bound_to
        table = quote(model._meta.db_table)
        names = ("id", *bound, *columns)
        selected = ", ".join(quote(model._meta.get_field(name).column) for name in names)
        assigned = ", ".join(f"{quote(field.column)} = %s" for field in fields)
        # Compare and set: a row saved meanwhile by a process of the new version is sealed
        # the new way already, and is left as it is (a review finding: the note saved in
        # between was overwritten with the text read before it).
        unchanged = " AND ".join(f"{quote(field.column)} = %s" for field in fields)
        last = 0
        with schema_editor.connection.cursor() as cursor:
            while True:
                # Names come from model metadata, never from input.
                cursor.execute(
                    f"SELECT {selected} FROM {table} WHERE id > %s ORDER BY id LIMIT 1000",  # noqa: S608
                    [last],
                )
                rows = cursor.fetchall()
                changes = []
                for pk, *values in rows:
                    row = dict(zip(bound, values[: len(bound)], strict=True))
                    sealed_values = values[len(bound) :]
                    resealed = [
                        _resealed(field, value, field.bound_context(**row), bind=bind)
                        for field, value in zip(fields, sealed_values, strict=True)
                    ]
                    if resealed != sealed_values:
                        changes.append([*resealed, pk, *sealed_values])
                cursor.executemany(
                    f"UPDATE {table} SET {assigned} WHERE id = %s AND {unchanged}",  # noqa: S608
                    changes,
                )
                if len(rows) < 1000:
                    break
                last = rows[-1][0]


def _resealed(field: EncryptedTextField, value: str, tied: str, *, bind: bool) -> str:
    """One value moved between the old way (the column's context, unpadded) and the field's
    way now (bound to ``tied``, padded), in the direction ``bind`` says; as it is if it is
    there already."""
    plain = field.encryption_context
    try:
        text = crypto.decrypt(value, context=plain) if bind else field.unseal(value, tied)
    except crypto.TamperedCiphertextError:
        field.unseal(value, tied) if bind else crypto.decrypt(value, context=plain)
        return value  # already moved (and raises above if it is neither)
    return field.seal(text, tied) if bind else crypto.encrypt(text, context=plain)
