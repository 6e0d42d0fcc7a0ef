"""Forms validate shape and length; the services decide. Errors are localised."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.password_validation import validate_password
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext_lazy as _

from stopcsam.accounts.models import LANGUAGE_CHOICES, StaffUser

# The longest password the staff login takes: the same limit wherever a password is set.
PASSWORD_MAX_LENGTH = 256


class SignupForm(forms.Form):
    language = forms.ChoiceField(
        label=_("Language of your codename"),
        choices=LANGUAGE_CHOICES,
        error_messages={"invalid_choice": _("Please choose one of the listed languages.")},
    )


class CodenameLoginForm(forms.Form):
    codename = forms.CharField(
        label=_("Your codename"),
        max_length=settings.CODENAME_MAX_LENGTH,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        ),
        error_messages={
            "required": _("Please enter your codename."),
            "max_length": _("That is longer than any codename. Please check what you typed."),
        },
    )


class DeleteAccountForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that my account and everything in it will be deleted for good."),
        error_messages={"required": _("Please tick the box to confirm.")},
    )


class StaffLoginForm(forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=PASSWORD_MAX_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    otp_token = forms.CharField(
        label=_("One-time code"),
        max_length=10,
        # Left empty by an account whose two-factor login was reset: it sets one up next.
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class StaffEnrolForm(forms.Form):
    otp_token = forms.CharField(
        label=_("Code from your authenticator app"),
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class InvitationAcceptForm(forms.Form):
    username = forms.RegexField(
        label=_("Username"),
        regex=r"^[a-zA-Z0-9._-]{3,64}$",
        max_length=64,
        error_messages={"invalid": _("Use 3 to 64 letters, digits, dots, dashes or underscores.")},
    )
    password1 = forms.CharField(
        label=_("Password"),
        max_length=PASSWORD_MAX_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        max_length=PASSWORD_MAX_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    otp_token = forms.CharField(label=_("Code from your authenticator app"), max_length=10)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ."))
        elif first:
            # The account to be, so the validator comparing the password with the username
            # runs too: without it, a username was accepted as its own password.
            account = StaffUser(username=cleaned.get("username", ""))
            try:
                validate_password(first, user=account)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class StaffPasswordChangeForm(PasswordChangeForm):
    """Django's form for the new password (twice, through the validators). The old password
    is checked by ``services.staff_password_change``, which counts a wrong one as a failed
    login: here the form would check it without limit. No longer than the login takes: a
    longer new password was saved, and its owner could not log in again (a review finding)."""

    def __init__(self, user: StaffUser, *args: Any, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        for name in ("old_password", "new_password1", "new_password2"):
            field = self.fields[name]
            field.max_length = PASSWORD_MAX_LENGTH  # type: ignore[attr-defined]
            field.validators.append(MaxLengthValidator(PASSWORD_MAX_LENGTH))
            field.widget.attrs["maxlength"] = str(PASSWORD_MAX_LENGTH)

    def clean_old_password(self) -> str:
        return str(self.cleaned_data["old_password"])
