"""Writes for accounts: participants, staff, invitations. Each write is audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from stopcsam.accounts.codenames import Codename, codename_generate, lookup_digest, normalise
from stopcsam.accounts.exceptions import (
    CodenameTooLongError,
    InvalidCodenameError,
    InvitationCodeError,
    InvitationInvalidError,
    StaffAccountLockedError,
    StaffLoginFailedError,
    UsernameTakenError,
)
from stopcsam.accounts.models import Participant, Role, Site, StaffInvitation, StaffUser
from stopcsam.core.audit import audit_record
from stopcsam.core.erasure import forget_deleted
from stopcsam.core.signals import participant_erasing


def _codename_hasher() -> PasswordHasher:
    cost = settings.CODENAME_ARGON2
    return PasswordHasher(
        time_cost=cost["time_cost"],
        memory_cost=cost["memory_cost"],
        parallelism=cost["parallelism"],
    )


# --- participants ---------------------------------------------------------------------------


def participant_create(*, language: str) -> tuple[Participant, Codename]:
    """Create an anonymous account; the codename is returned once and never stored."""
    for _attempt in range(3):
        codename = codename_generate(language)
        normalised = normalise(codename)
        # Hash before the transaction: on SQLite it holds the database's write lock.
        codename_hash = _codename_hasher().hash(normalised)
        try:
            with transaction.atomic():
                participant = Participant.objects.create(
                    codename_lookup=lookup_digest(normalised),
                    codename_hash=codename_hash,
                    language=language,
                )
                audit_record(
                    actor="participant",
                    action="participant.created",
                    subject=participant.audit_ref,
                    detail={"language": language},
                )
            return participant, codename
        except IntegrityError:  # a lookup collision: astronomically rare, draw again
            continue
    raise RuntimeError("Could not draw a unique codename.")


def participant_authenticate(*, codename: str) -> Participant:
    try:
        normalised = normalise(codename)
    except CodenameTooLongError as exc:
        raise InvalidCodenameError from exc
    if not normalised:
        raise InvalidCodenameError
    participant = Participant.objects.filter(codename_lookup=lookup_digest(normalised)).first()
    if participant is None:
        raise InvalidCodenameError
    try:
        _codename_hasher().verify(participant.codename_hash, normalised)
    except (VerificationError, InvalidHashError) as exc:
        raise InvalidCodenameError from exc
    return participant


def participant_delete(*, participant: Participant) -> None:
    """Delete the account itself: a real row deletion, audited without identity."""
    with transaction.atomic():
        ref = participant.audit_ref
        participant_erasing.send(sender=Participant, participant_id=participant.pk)
        participant.delete()
        audit_record(actor="participant", action="participant.deleted", subject=ref)
        forget_deleted()


# --- staff ----------------------------------------------------------------------------------


def staff_create(
    *,
    username: str,
    password: str,
    role: str,
    site: Site,
    languages: list[str],
    display_name: str = "",
    totp_key: str | None = None,
) -> tuple[StaffUser, TOTPDevice]:
    """Create a member of staff with a password and a confirmed TOTP device."""
    with transaction.atomic():
        if StaffUser.objects.filter(username__iexact=username).exists():
            raise UsernameTakenError
        user = StaffUser(
            username=username,
            role=Role(role),
            site=site,
            languages=languages,
            display_name=display_name,
        )
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save()
        device_kwargs = {"key": totp_key} if totp_key else {}
        device = TOTPDevice.objects.create(
            user=user, name="authenticator", confirmed=True, **device_kwargs
        )
        audit_record(
            actor="system",
            action="staff.created",
            subject=user.audit_ref,
            detail={"role": role, "site": site.code},
        )
    return user, device


def staff_authenticate(*, username: str, password: str, otp_token: str) -> TOTPDevice:
    """Check password and TOTP together; return the device that verified the code.

    Failures count against the account named, never against a network address: behind an
    onion service all clients share one address. Locking one account never locks another.
    """
    user = StaffUser.objects.filter(username__iexact=username[:64]).first()
    if user is None:
        make_password(password)  # spend the same time as a real check
        raise StaffLoginFailedError
    if user.locked_until and user.locked_until > timezone.now():
        raise StaffAccountLockedError
    device = None
    if user.is_active and user.check_password(password):
        device = _verified_device(user, otp_token)
    if device is None:
        _staff_login_failed(user)
        raise StaffLoginFailedError
    StaffUser.objects.filter(pk=user.pk).update(
        failed_logins=0, locked_until=None, last_login=timezone.now()
    )
    audit_record(actor=user.audit_ref, action="staff.login", subject=user.audit_ref)
    return device


def _verified_device(user: StaffUser, otp_token: str) -> TOTPDevice | None:
    token = otp_token.strip().replace(" ", "")
    if not token.isdigit() or len(token) > 8:
        return None
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        # verify_token refuses a code whose time step was already used (replay).
        if device.verify_token(token):
            return device
    return None


def _staff_login_failed(user: StaffUser) -> None:
    with transaction.atomic():
        StaffUser.objects.filter(pk=user.pk).update(failed_logins=F("failed_logins") + 1)
        failures = StaffUser.objects.values_list("failed_logins", flat=True).get(pk=user.pk)
        over = failures - settings.STAFF_LOGIN_FREE_ATTEMPTS
        detail: dict[str, int] = {"failures": failures}
        if over >= 0:
            seconds = min(
                settings.STAFF_LOGIN_LOCK_SECONDS * 2**over, settings.STAFF_LOGIN_LOCK_MAX_SECONDS
            )
            StaffUser.objects.filter(pk=user.pk).update(
                locked_until=timezone.now() + timedelta(seconds=seconds)
            )
            detail["locked_seconds"] = seconds
        audit_record(
            actor="anonymous", action="staff.login_failed", subject=user.audit_ref, detail=detail
        )


# --- invitations ----------------------------------------------------------------------------


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_totp_key(token: str) -> str:
    """The TOTP secret offered on the invitation page, derived so no state is needed."""
    material = hmac.new(settings.SECRET_KEY.encode(), b"totp:" + token.encode(), hashlib.sha256)
    return material.hexdigest()[:40]


def staff_invitation_create(
    *,
    role: str,
    site: Site,
    languages: list[str],
    display_name: str = "",
    created_by: StaffUser | None = None,
) -> tuple[StaffInvitation, str]:
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = StaffInvitation.objects.create(
            token_digest=_token_digest(token),
            role=Role(role),
            site=site,
            languages=languages,
            display_name=display_name,
            created_by=created_by,
            expires_at=timezone.now() + timedelta(days=settings.STAFF_INVITATION_DAYS),
        )
        audit_record(
            actor=created_by.audit_ref if created_by else "system",
            action="staff.invited",
            subject=f"invitation:{invitation.pk}",
            detail={"role": role, "site": site.code},
        )
    return invitation, token


def staff_invitation_open(*, token: str) -> StaffInvitation:
    if len(token) > 100:
        raise InvitationInvalidError
    invitation = StaffInvitation.objects.filter(token_digest=_token_digest(token)).first()
    if invitation is None or invitation.used_at or invitation.expires_at <= timezone.now():
        raise InvitationInvalidError
    return invitation


def staff_invitation_accept(
    *, token: str, username: str, password: str, otp_token: str
) -> StaffUser:
    from django_otp.oath import TOTP

    key = invitation_totp_key(token)
    with transaction.atomic():
        invitation = staff_invitation_open(token=token)
        totp = TOTP(bytes.fromhex(key))
        code = otp_token.strip().replace(" ", "")
        if not code.isdigit() or not totp.verify(int(code), tolerance=1):
            raise InvitationCodeError
        user, device = staff_create(
            username=username,
            password=password,
            role=invitation.role,
            site=invitation.site,
            languages=invitation.languages,
            display_name=invitation.display_name,
            totp_key=key,
        )
        device.last_t = totp.t()  # the enrolment code cannot be replayed at first login
        device.save(update_fields=["last_t"])
        updated = StaffInvitation.objects.filter(pk=invitation.pk, used_at=None).update(
            used_at=timezone.now()
        )
        if updated != 1:
            raise InvitationInvalidError
        audit_record(
            actor=user.audit_ref,
            action="staff.invitation_accepted",
            subject=f"invitation:{invitation.pk}",
        )
    return user
