"""Writes for accounts: participants, staff, invitations. Each write is audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from django.conf import settings
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from stopcsam.accounts.codenames import (
    Codename,
    codename_generate,
    lookup_digest,
    normalise,
    readings,
)
from stopcsam.accounts.device_cookies import (
    device_cookie_max_age,
    device_cookie_open,
    device_cookie_sign,
    device_nonce_digest,
    device_nonce_new,
)
from stopcsam.accounts.exceptions import (
    CodenameTooLongError,
    InvalidCodenameError,
    InvitationCodeError,
    InvitationInvalidError,
    StaffAccountLockedError,
    StaffEnrolmentNeededError,
    StaffLoginFailedError,
    TwoFactorCodeError,
    UsernameTakenError,
)
from stopcsam.accounts.models import (
    Participant,
    Role,
    Site,
    StaffDeviceCookie,
    StaffInvitation,
    StaffUser,
)
from stopcsam.core.audit import audit_record
from stopcsam.core.erasure import forget_deleted
from stopcsam.core.hashing import slow_hash_turn
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
        with slow_hash_turn():
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
    # Also the readings of a codename typed without its spaces (codenames.readings).
    read_as = {lookup_digest(reading): reading for reading in readings(normalised)}
    participant = Participant.objects.filter(codename_lookup__in=read_as).first()
    if participant is None:
        raise InvalidCodenameError
    try:
        with slow_hash_turn():
            _codename_hasher().verify(
                participant.codename_hash, read_as[participant.codename_lookup]
            )
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
    user = StaffUser(
        username=username,
        role=Role(role),
        site=site,
        languages=languages,
        display_name=display_name,
    )
    # Hashed before the transaction, which holds the database's write lock on SQLite: waiting
    # there for a turn (core.hashing) stalled every writer, live chats' too (a review finding).
    user.set_password(password)
    with transaction.atomic():
        if StaffUser.objects.filter(username__iexact=username).exists():
            raise UsernameTakenError
        user.full_clean(exclude=["password"])
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as exc:
            # Taken meanwhile by a transaction that committed after the check above.
            raise UsernameTakenError from exc
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


@dataclass(frozen=True)
class StaffLogin:
    """A successful staff login: the TOTP device that verified the code, and the signed
    device cookie the browser keeps from now on (never logged)."""

    totp_device: TOTPDevice
    device_cookie: str


def staff_authenticate(
    *, username: str, password: str, otp_token: str, device_cookie: str = ""
) -> StaffLogin:
    """Check password and TOTP together; on success issue a fresh device cookie.

    Failures count against the account named, never against a network address: behind an
    onion service all clients share one address. Locking one account never locks another.
    A browser presenting a valid device cookie for the account is a known device: its
    failures count and lock that cookie only, and the account's lock does not stop it, so a
    stranger guessing at a username cannot lock its owner out of their own browser.
    """
    user = StaffUser.objects.filter(username__iexact=username[:64]).first()
    # The password's hash waits for its turn (core.hashing) before the attempt is counted:
    # a login answered "busy" is not a failure of the account's.
    with slow_hash_turn():
        if user is None:
            make_password(password)  # spend the same time as a real check
            raise StaffLoginFailedError
        try:
            known, detail = _attempt_reserve(user, _known_device(user, device_cookie))
        except StaffAccountLockedError:
            # As slow as an unknown username: refused at once, a locked account told a
            # stranger that the username exists (a review finding: five guesses, a sixth timed).
            make_password(password)
            raise
        device = None
        # The password is checked for an inactive account too, for the same reason.
        if user.check_password(password) and user.is_active:
            device = _verified_device(user, otp_token)
            if device is None and not TOTPDevice.objects.filter(user=user).exists():
                raise StaffEnrolmentNeededError(user.pk, user.role)
    if device is None:
        audit_record(
            actor="anonymous", action="staff.login_failed", subject=user.audit_ref, detail=detail
        )
        raise StaffLoginFailedError
    return StaffLogin(totp_device=device, device_cookie=_staff_login_succeeded(user, known))


def _known_device(user: StaffUser, device_cookie: str) -> StaffDeviceCookie | None:
    nonce = device_cookie_open(value=device_cookie, user=user)
    if nonce is None:
        return None
    return StaffDeviceCookie.objects.filter(
        user=user, nonce_digest=device_nonce_digest(nonce)
    ).first()


def _verified_device(user: StaffUser, otp_token: str) -> TOTPDevice | None:
    token = otp_token.strip().replace(" ", "")
    if not (token.isascii() and token.isdigit()) or len(token) > 8:
        return None
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        # verify_token refuses a code whose time step was already used (replay).
        if device.verify_token(token):
            return device
    return None


def _staff_login_succeeded(user: StaffUser, known: StaffDeviceCookie | None) -> str:
    """Record the login and issue a new device cookie in place of the one presented.

    A login from a known device leaves the account's counter alone: strangers stay locked
    out however often the owner logs in from their own browser."""
    now = timezone.now()
    nonce = device_nonce_new()
    with transaction.atomic():
        if known is None:
            StaffUser.objects.filter(pk=user.pk).update(
                failed_logins=0, locked_until=None, last_login=now
            )
        else:
            StaffUser.objects.filter(pk=user.pk).update(last_login=now)
            known.delete()
        StaffDeviceCookie.objects.filter(
            user=user, created_at__lt=now - device_cookie_max_age()
        ).delete()
        StaffDeviceCookie.objects.create(
            user=user, nonce_digest=device_nonce_digest(nonce), created_at=now
        )
        audit_record(
            actor=user.audit_ref,
            action="staff.login",
            subject=user.audit_ref,
            detail={"known_device": known is not None},
        )
    return device_cookie_sign(user=user, nonce=nonce)


def _attempt_reserve(
    user: StaffUser, known: StaffDeviceCookie | None
) -> tuple[StaffDeviceCookie | None, dict[str, int]]:
    """Count this attempt as a failure before the password is checked, against the known
    device or else against the account, and lock it once the free attempts are spent; a
    success then resets the count. Raise StaffAccountLockedError while locked. Counted
    first, and in one conditional update with the lock: guesses sent at once each passed a
    check of the lock made before any of them had failed, and were all tried (a review
    finding: twelve at once, against five allowed)."""
    now = timezone.now()
    counted = (
        StaffDeviceCookie.objects.filter(pk=known.pk)
        if known
        else StaffUser.objects.filter(pk=user.pk)
    )
    unlocked = counted.filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
    with transaction.atomic():
        if not unlocked.update(failed_logins=F("failed_logins") + 1):
            if known is not None and not counted.exists():
                # The cookie was replaced by a login that finished meanwhile: a stranger's now.
                return _attempt_reserve(user, None)
            raise StaffAccountLockedError
        failures = counted.values_list("failed_logins", flat=True).get()
        detail: dict[str, int] = {"failures": failures}
        seconds = _lock_seconds(failures)
        if seconds is not None:
            counted.update(locked_until=now + timedelta(seconds=seconds))
            detail["locked_seconds"] = seconds
        if known is not None:
            detail["known_device"] = known.pk
    return known, detail


def _lock_seconds(failures: int) -> int | None:
    """None while free attempts remain, then a lock that doubles up to the maximum."""
    over = failures - settings.STAFF_LOGIN_FREE_ATTEMPTS
    if over < 0:
        return None
    return int(
        min(settings.STAFF_LOGIN_LOCK_SECONDS * 2**over, settings.STAFF_LOGIN_LOCK_MAX_SECONDS)
    )


def staff_password_change(
    *, user: StaffUser, old_password: str, new_password: str, device_cookie: str = ""
) -> str:
    """Set a new password (already through the validators) if ``old_password`` is right. A
    wrong one counts as a failed login, against this browser's device cookie or else the
    account, and locks alike (a review finding: the form checked it without limit, so a
    session left signed in could guess the password): StaffLoginFailedError, or
    StaffAccountLockedError. Every other sign-in of the account ends (Django's session hash
    changes, and the save tells their chat sockets to check again at once: accounts.apps)
    and every device cookie issued before is worthless: return a new one for the browser
    that made the change."""
    # Counted against this browser's cookie, or the account; on success the account's
    # count is reset below and every cookie row, this one's too, is replaced. The turn for
    # the slow hashes comes first, as for a login: a change answered "busy" counts no failure,
    # and the new password's hash never waits for a turn inside the transaction (a review
    # finding: on SQLite that held every writer up for as long).
    with slow_hash_turn():
        _counted, detail = _attempt_reserve(user, _known_device(user, device_cookie))
        if not user.check_password(old_password):
            audit_record(
                actor=user.audit_ref,
                action="staff.password_change_failed",
                subject=user.audit_ref,
                detail=detail,
            )
            raise StaffLoginFailedError
        user.set_password(new_password)
    now = timezone.now()
    nonce = device_nonce_new()
    with transaction.atomic():
        StaffUser.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
        user.save(update_fields=["password"])
        StaffDeviceCookie.objects.filter(user=user).delete()
        StaffDeviceCookie.objects.create(
            user=user, nonce_digest=device_nonce_digest(nonce), created_at=now
        )
        audit_record(actor=user.audit_ref, action="staff.password_changed", subject=user.audit_ref)
    return device_cookie_sign(user=user, nonce=nonce)


def staff_device_cookies_revoke(*, user: StaffUser, actor: str) -> int:
    """Make every device cookie of this account worthless (on deactivation, for example):
    its browsers count as strangers until their next successful login."""
    with transaction.atomic():
        revoked, _by_model = StaffDeviceCookie.objects.filter(user=user).delete()
        audit_record(
            actor=actor,
            action="staff.device_cookies_revoked",
            subject=user.audit_ref,
            detail={"count": revoked},
        )
    return revoked


def staff_sessions_end(*, user: StaffUser, actor: str) -> int:
    """Sign the account out in every browser (on deactivation): an inactive account's
    sessions only count as nobody's, and came back, a stolen one too, if the account was
    activated again within their lifetime (a review finding). Each deletion goes through the
    session engine, which tells open chat sockets at once (``accounts.session_store``)."""
    engine = import_module(settings.SESSION_ENGINE)
    user_id = str(user.pk)
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get(AUTH_SESSION_KEY) == user_id:
            engine.SessionStore(session_key=session.session_key).delete()
            ended += 1
    audit_record(
        actor=actor, action="staff.sessions_ended", subject=user.audit_ref, detail={"count": ended}
    )
    return ended


def staff_unlock(*, user: StaffUser, actor: str) -> None:
    """Lift the login lock of the account and of each of its browsers, and forget their
    failures: for a member of staff locked out who has since shown who they are."""
    with transaction.atomic():
        locked = (
            StaffUser.objects.filter(pk=user.pk, locked_until__gt=timezone.now()).exists()
            or StaffDeviceCookie.objects.filter(user=user, locked_until__gt=timezone.now()).exists()
        )
        StaffUser.objects.filter(pk=user.pk).update(failed_logins=0, locked_until=None)
        StaffDeviceCookie.objects.filter(user=user).update(failed_logins=0, locked_until=None)
        audit_record(
            actor=actor, action="staff.unlocked", subject=user.audit_ref, detail={"locked": locked}
        )


def staff_two_factor_reset(*, user: StaffUser, actor: str) -> None:
    """Forget the account's authenticator (a lost phone): its TOTP devices and device
    cookies go, every sign-in ends, and the next login with the password enrols a new
    authenticator (``staff_two_factor_enrol``)."""
    with transaction.atomic():
        devices, _by_model = TOTPDevice.objects.filter(user=user).delete()
        StaffDeviceCookie.objects.filter(user=user).delete()
        audit_record(
            actor=actor,
            action="staff.two_factor_reset",
            subject=user.audit_ref,
            detail={"devices": devices},
        )
        staff_sessions_end(user=user, actor=actor)


def totp_key_new() -> str:
    """A new authenticator secret, as django-otp makes them (20 random bytes, in hex)."""
    return secrets.token_hex(20)


def staff_two_factor_enrol(*, user_id: int, key: str, otp_token: str) -> StaffLogin:
    """Set up the authenticator of an account whose two-factor login was reset, once its
    password was right (``staff_authenticate``), and sign it in. TwoFactorCodeError for a
    code that does not match the new key; StaffLoginFailedError if the account was
    deactivated, or given an authenticator meanwhile."""
    from django_otp.oath import TOTP

    totp = TOTP(bytes.fromhex(key))
    code = otp_token.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit()) or not totp.verify(int(code), tolerance=1):
        raise TwoFactorCodeError
    with transaction.atomic():
        user = StaffUser.objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if user is None or TOTPDevice.objects.filter(user=user).exists():
            raise StaffLoginFailedError
        device = TOTPDevice.objects.create(
            user=user, name="authenticator", confirmed=True, key=key, last_t=totp.t()
        )
        audit_record(
            actor=user.audit_ref, action="staff.two_factor_enrolled", subject=user.audit_ref
        )
    return StaffLogin(totp_device=device, device_cookie=_staff_login_succeeded(user, None))


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
    """Raise ValidationError for what the account could not hold (an unknown language, an
    over-long name): checked only at acceptance, it made the link a 500 there."""
    token = secrets.token_urlsafe(32)
    invitation = StaffInvitation(
        token_digest=_token_digest(token),
        role=Role(role),
        site=site,
        languages=languages,
        display_name=display_name,
        created_by=created_by,
        expires_at=timezone.now() + timedelta(days=settings.STAFF_INVITATION_DAYS),
    )
    invitation.full_clean()
    with transaction.atomic():
        invitation.save()
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
    invitation = (
        StaffInvitation.objects.select_related("created_by")
        .filter(token_digest=_token_digest(token))
        .first()
    )
    if invitation is None or invitation.used_at or invitation.expires_at <= timezone.now():
        raise InvitationInvalidError
    # Made by an account that may invite no longer (deactivated, or given another role): a
    # way back in for its holder (a review finding).
    if invitation.created_by is not None and not invitation.created_by.is_staff:
        raise InvitationInvalidError
    return invitation


def staff_invitation_accept(
    *, token: str, username: str, password: str, otp_token: str
) -> StaffUser:
    from django_otp.oath import TOTP

    key = invitation_totp_key(token)
    # The turn for the password's slow hash (core.hashing) before the transaction, which
    # holds the database's write lock on SQLite: waited for inside it, every writer waited.
    with slow_hash_turn(), transaction.atomic():
        invitation = staff_invitation_open(token=token)
        totp = TOTP(bytes.fromhex(key))
        code = otp_token.strip().replace(" ", "")
        if not (code.isascii() and code.isdigit()) or not totp.verify(int(code), tolerance=1):
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
