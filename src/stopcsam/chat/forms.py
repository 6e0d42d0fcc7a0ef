from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from stopcsam.chat.models import RiskLevel


def new_client_id() -> str:
    return "f-" + secrets.token_urlsafe(12)


class MessageField(forms.CharField):
    """A browser sends each line break of a textarea as CRLF but counts it as one character
    against ``maxlength``; the chat stores it as LF (services.message_clean). Counted as LF
    here too, the form takes what the socket takes."""

    def to_python(self, value: object) -> str:
        return str(super().to_python(value)).replace("\r\n", "\n")


class MessageForm(forms.Form):
    body = MessageField(
        label=_("Your message"),
        max_length=settings.CHAT_MAX_MESSAGE_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Write your message first.")},
    )
    # Generated with the page, so sending the same form twice stores the message once.
    client_id = forms.RegexField(regex=r"\A[A-Za-z0-9_-]{8,64}\Z", widget=forms.HiddenInput)


class FeedbackForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=_("How helpful was this session for you?"),
        choices=[
            (1, _("Not helpful")),
            (2, _("A little helpful")),
            (3, _("Somewhat helpful")),
            (4, _("Helpful")),
            (5, _("Very helpful")),
        ],
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": _("Please choose an answer.")},
    )


class NoteForm(forms.Form):
    """On the console beside the message form, whose field is also ``body``: ids of their own
    (``note_body``), or the label "Private notes" named the reply box (a review finding)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "note_%s")
        super().__init__(*args, **kwargs)

    body = forms.CharField(
        label=_("Private notes"), required=False, max_length=20000, widget=forms.Textarea
    )
    risk_level = forms.ChoiceField(
        label=_("Risk assessment"), choices=[("", "—"), *RiskLevel.choices], required=False
    )
    risk_notes = forms.CharField(
        label=_("Reasons for this assessment"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # The version of the notes this form was filled from (services.note_version): notes
    # saved since, in another tab, are not overwritten unseen.
    seen = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


class EscalationForm(forms.Form):
    reason = forms.CharField(
        label=_("What should the supervisor know?"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
