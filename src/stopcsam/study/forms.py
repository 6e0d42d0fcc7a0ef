from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from stopcsam.study.protocol import ConsentDocument


class ConsentForm(forms.Form):
    """One required checkbox per consent item of the document shown, and the SHA-256 of the
    text shown: the text can change while the page is open (a new consent version), and a
    consent is recorded only for the text that was read."""

    # Not required: a page sent without it (one from before this field) is taken as showing
    # another text, and the current one is shown again.
    shown = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(
        self, *args: object, document: ConsentDocument, version: str, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["shown"].initial = document.sha256(version)
        for key, text in document.items:
            self.fields[f"item_{key}"] = forms.BooleanField(
                label=text, error_messages={"required": _("Please tick this box to agree.")}
            )

    def ticked(self) -> set[str]:
        return {
            name.removeprefix("item_")
            for name, value in self.cleaned_data.items()
            if name.startswith("item_") and value
        }


class WithdrawForm(forms.Form):
    choice = forms.ChoiceField(
        label=_("How would you like to stop?"),
        widget=forms.RadioSelect,
        choices=[
            ("stop", _("Stop taking part, and keep the answers I have given for the research.")),
            ("erase", _("Stop taking part, and erase everything: my answers and my account.")),
        ],
        error_messages={
            "required": _("Please choose one of the two ways to stop."),
            "invalid_choice": _("Please choose one of the two ways to stop."),
        },
    )
    confirm = forms.BooleanField(
        label=_("I understand that this cannot be undone."),
        error_messages={"required": _("Please tick the box to confirm.")},
    )


class ExportForm(forms.Form):
    include_free_text = forms.BooleanField(
        label=_("Include free-text answers (only if your ethics approval covers it)"),
        required=False,
    )
