"""A model field whose value is encrypted at rest with ``stopcsam.core.crypto``."""

from __future__ import annotations

from typing import Any

from django.db import models

from stopcsam.core import crypto


class EncryptedTextField(models.TextField):
    """Text that the database only ever sees sealed.

    ``context`` defaults to ``"<app_label>.<model>.<field>"`` so a ciphertext cannot be moved
    between columns. Reads of a tampered value raise ``TamperedCiphertextError``.
    """

    def __init__(self, *args: Any, context: str | None = None, **kwargs: Any) -> None:
        self.explicit_context = context
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.explicit_context is not None:
            kwargs["context"] = self.explicit_context
        return name, path, args, kwargs

    @property
    def encryption_context(self) -> str:
        if self.explicit_context:
            return self.explicit_context
        return f"{self.model._meta.label_lower}.{self.name}"

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return crypto.encrypt(str(value), context=self.encryption_context)

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return crypto.decrypt(value, context=self.encryption_context)

    def to_python(self, value: Any) -> Any:
        return value
