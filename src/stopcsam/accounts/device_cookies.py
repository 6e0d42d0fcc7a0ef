"""Device cookies for staff logins (OWASP, "Slow Down Online Guessing Attacks with Device
Cookies"): a signed cookie that a browser receives after a successful login.

The cookie names the account, a random nonce and a fragment of an HMAC of the password hash,
so a new password makes every earlier cookie worthless. Signing makes it unforgeable without
SECRET_KEY; it is not encrypted (it holds nothing secret). The database keeps only a digest
of the nonce (see ``StaffDeviceCookie``), so a copy of the database forges no cookie either.
This module is pure: it signs and opens values; the services keep the rows.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import NewType

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

from stopcsam.accounts.models import StaffUser

DeviceNonce = NewType("DeviceNonce", str)

_SALT = "stopcsam.accounts.staff_device_cookie"
_HASH_FRAGMENT_SALT = "stopcsam.accounts.staff_device_cookie.password_hash"
# A genuine value is about 130 characters; anything far longer is refused before any work.
MAX_COOKIE_LENGTH = 400


def device_cookie_max_age() -> timedelta:
    return timedelta(days=settings.STAFF_DEVICE_COOKIE_DAYS)


def device_nonce_new() -> DeviceNonce:
    return DeviceNonce(secrets.token_urlsafe(24))


def device_nonce_digest(nonce: DeviceNonce) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def device_cookie_sign(*, user: StaffUser, nonce: DeviceNonce) -> str:
    payload = {"u": user.pk, "n": nonce, "p": _password_fragment(user)}
    return signing.dumps(payload, salt=_SALT)


def device_cookie_open(*, value: str, user: StaffUser) -> DeviceNonce | None:
    """The nonce of a genuine, unexpired cookie issued to this user under their current
    password; None for anything else (tampered, expired, another account, garbage)."""
    if not value or len(value) > MAX_COOKIE_LENGTH:
        return None
    try:
        payload = signing.loads(value, salt=_SALT, max_age=device_cookie_max_age())
    except signing.BadSignature:  # also SignatureExpired
        return None
    if not isinstance(payload, dict) or payload.get("u") != user.pk:
        return None
    nonce, fragment = payload.get("n"), payload.get("p")
    if not isinstance(nonce, str) or not isinstance(fragment, str):
        return None
    if not constant_time_compare(fragment, _password_fragment(user)):
        return None
    return DeviceNonce(nonce)


def _password_fragment(user: StaffUser) -> str:
    # Like Django's session auth hash: changes whenever the password hash does.
    return salted_hmac(_HASH_FRAGMENT_SALT, user.password, algorithm="sha256").hexdigest()[:16]
