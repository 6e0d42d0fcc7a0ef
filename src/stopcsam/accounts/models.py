"""Sites, staff users and anonymous participants.

A participant row holds no e-mail, phone, IP address, user agent or name: only a keyed
lookup digest and a slow hash of the server-generated codename, and the chosen language.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from stopcsam.core import zones

LANGUAGE_CHOICES = [
    ("en", "English"),
    ("de", "Deutsch"),
    ("cs", "Čeština"),
    ("pt", "Português"),
    ("es", "Español"),
]


def languages_clean(languages: Any) -> None:
    """A list of the languages' codes, as every check "language in x.languages" expects: the
    admin took any JSON there, and a number made each such check a 500 (a review finding)."""
    known = {code for code, _name in LANGUAGE_CHOICES}
    if not isinstance(languages, list) or not all(
        isinstance(code, str) and code in known for code in languages
    ):
        raise ValidationError(
            {"languages": _('Give a list of language codes, for example ["de", "en"].')}
        )


class Site(models.Model):
    """A partner site of the study (for example DE, ES, PT, CZ) and its home time zone."""

    code = models.CharField(
        _("code"),
        max_length=8,
        unique=True,
        validators=[RegexValidator(r"^[A-Z]{2,8}$", _("Use 2 to 8 capital letters."))],
    )
    name = models.CharField(_("name"), max_length=100)
    country = models.CharField(_("country"), max_length=2, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Berlin")
    languages = models.JSONField(_("languages"), default=list)

    class Meta:
        ordering = ["code"]
        verbose_name = _("site")
        verbose_name_plural = _("sites")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self) -> None:
        super().clean()
        # Any text was saved: the site's staff then read every time in UTC, unwarned.
        if not zones.valid(self.time_zone):
            raise ValidationError({"time_zone": _("Give a time zone such as Europe/Berlin.")})
        languages_clean(self.languages)


class Role(models.TextChoices):
    THERAPIST = "therapist", _("Therapist")
    SUPERVISOR = "supervisor", _("Supervisor")
    COORDINATOR = "coordinator", _("Coordinator")
    STUDY_ADMIN = "study_admin", _("Study administrator")


class StaffUserManager(BaseUserManager["StaffUser"]):
    def get_by_natural_key(self, username: str | None) -> StaffUser:
        return self.get(username__iexact=username)


class StaffUser(AbstractBaseUser):
    """A member of staff. Logs in with a password and a TOTP code, always both."""

    username = models.CharField(
        _("username"),
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-zA-Z0-9._-]{3,64}$",
                _("Use 3 to 64 letters, digits, dots, dashes or underscores."),
            )
        ],
    )
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="staff", verbose_name=_("site")
    )
    languages = models.JSONField(_("languages"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)
    failed_logins = models.PositiveIntegerField(default=0, editable=False)
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)

    objects = StaffUserManager()

    USERNAME_FIELD = "username"
    # django-stubs declares REQUIRED_FIELDS as a ClassVar on AbstractBaseUser.
    REQUIRED_FIELDS: list[str] = []  # type: ignore[misc]

    class Meta:
        ordering = ["username"]
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        constraints = [
            # One username in any letter case, as a login looks it up, held by the database
            # too: two invitations accepted at once both passed the check (a review finding).
            models.UniqueConstraint(
                Lower("username"),
                name="accounts_staffuser_username_lower_unique",
                violation_error_message=_("This username is taken."),
            )
        ]

    def __str__(self) -> str:
        return self.display_name or self.username

    def clean(self) -> None:
        super().clean()
        # One username in any letter case, as a login looks it up: "ANNA" beside "anna" left
        # one of the two unable to log in (the admin saved it; staff_create checked).
        taken = StaffUser.objects.filter(username__iexact=self.username).exclude(pk=self.pk)
        if self.username and taken.exists():
            raise ValidationError({"username": _("This username is taken.")})
        languages_clean(self.languages)

    @property
    def is_staff(self) -> bool:
        """Admin access: coordinators and study admins, only after TOTP (see the admin site)."""
        return self.is_active and self.role in (Role.COORDINATOR, Role.STUDY_ADMIN)

    @property
    def is_superuser(self) -> bool:
        return False

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return self.is_staff

    def has_perms(self, perm_list: Any, obj: Any = None) -> bool:
        return self.is_staff

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_staff

    @property
    def audit_ref(self) -> str:
        return f"staff:{self.pk}"


class StaffDeviceCookie(models.Model):
    """A browser where a member of staff logged in: it holds a signed device cookie.

    Failed logins from this browser count here and lock this browser alone; the account's
    own counter and lock are for browsers without a valid cookie. Only a digest of the
    cookie's nonce is kept; deleting the row revokes the cookie.
    """

    user = models.ForeignKey(StaffUser, on_delete=models.CASCADE, related_name="device_cookies")
    nonce_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    failed_logins = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("device cookie")
        verbose_name_plural = _("device cookies")

    def __str__(self) -> str:
        return f"device cookie {self.pk}"


class Participant(models.Model):
    """An anonymous participant, known only by the codename they hold."""

    codename_lookup = models.CharField(max_length=64, unique=True)
    codename_hash = models.CharField(max_length=255)
    language = models.CharField(max_length=5, choices=LANGUAGE_CHOICES)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")

    def __str__(self) -> str:
        return f"participant {self.pk}"

    @property
    def audit_ref(self) -> str:
        return f"participant:{self.pk}"


class StaffInvitation(models.Model):
    """A one-time link that lets a new member of staff set a password and enrol TOTP."""

    token_digest = models.CharField(max_length=64, unique=True)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, verbose_name=_("site"))
    languages = models.JSONField(_("languages"), default=list)
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    created_by = models.ForeignKey(
        StaffUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("staff invitation")
        verbose_name_plural = _("staff invitations")

    def __str__(self) -> str:
        return f"{self.get_role_display()} @ {self.site.code}"

    def clean(self) -> None:
        super().clean()
        languages_clean(self.languages)
