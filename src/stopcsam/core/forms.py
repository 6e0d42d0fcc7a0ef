"""Form fields shared by the apps."""

from __future__ import annotations

from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

# The marks after which a form's label takes no colon: Django's Czech catalogue leaves out the
# full stop, so each Czech label that is a sentence read "Je mi 18 let nebo více.:" (the
# consent's boxes, the questionnaires' statements, "I understand ..."). Ours, read before
# Django's, keeps it in every language.
LABEL_ENDINGS = gettext_noop(":?.!")

# The dates a person of this service can mean. Far beyond them, date arithmetic overflows
# (a week before 0001-01-01, a time zone past 9999-12-31): a clear error instead of a 500.
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)


class ServiceDateField(forms.DateField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        message = format_lazy(
            _("Choose a date between {earliest} and {latest}."),
            earliest=EARLIEST.isoformat(),
            latest=LATEST.isoformat(),
        )
        self.validators += [
            MinValueValidator(EARLIEST, message=message),
            MaxValueValidator(LATEST, message=message),
        ]
