"""A model used only by the tests of encrypted fields."""

from __future__ import annotations

from django.db import models

from stopcsam.core.fields import EncryptedTextField


class SecretNote(models.Model):
    body = EncryptedTextField()
    other = EncryptedTextField(null=True, blank=True)

    class Meta:
        app_label = "core_testapp"

    def __str__(self) -> str:
        return f"note {self.pk}"
