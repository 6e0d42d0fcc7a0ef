"""Authenticated encryption of fields at rest (AES-256-GCM).

A stored value is ``v1.<key id>.<base64url(nonce || ciphertext || tag)>``. The key id names the
key that sealed it, so keys can rotate: the first configured key seals new values, every
configured key can open old ones, and ``stopcsam reencrypt`` moves old values to the first key.
A context string (for example ``"chat.message.body"``) is bound into the tag as associated
data, so a ciphertext copied into another column does not open. Without a key nothing is
encrypted or decrypted: the functions raise instead (fail closed).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

FORMAT_VERSION = "v1"
NONCE_BYTES = 12
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class EncryptionError(Exception):
    """Base for encryption failures; never carries plaintext."""


class MissingKeyError(EncryptionError):
    """No usable key is configured, or the value names a key that is not configured."""


class TamperedCiphertextError(EncryptionError):
    """The value is not a ciphertext we sealed, or was changed after sealing."""


@dataclass(frozen=True)
class Keyring:
    primary_id: str
    keys: dict[str, bytes]


def parse_keyring(spec: str) -> Keyring:
    """Read ``"id:base64key,id:base64key"``; the first key is the one that seals."""
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep or not KEY_ID_PATTERN.match(key_id):
            raise MissingKeyError("Each encryption key must be written as id:base64key.")
        try:
            key = base64.urlsafe_b64decode(encoded.encode() + b"=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError) as exc:
            raise MissingKeyError(f"Encryption key {key_id!r} is not valid base64.") from exc
        if len(key) != 32:
            raise MissingKeyError(f"Encryption key {key_id!r} must be 32 bytes.")
        if key_id in keys:
            raise MissingKeyError(f"Encryption key id {key_id!r} appears twice.")
        keys[key_id] = key
        order.append(key_id)
    if not order:
        raise MissingKeyError("No encryption key is configured (STOPCSAM_ENCRYPTION_KEYS).")
    return Keyring(primary_id=order[0], keys=keys)


@lru_cache(maxsize=4)
def _keyring_for(spec: str) -> Keyring:
    return parse_keyring(spec)


def active_keyring() -> Keyring:
    return _keyring_for(settings.STOPCSAM_ENCRYPTION_KEYS)


@lru_cache(maxsize=16)
def _cipher(key: bytes) -> AESGCM:
    """A cipher per key, made once: making one costs more than sealing a chat message."""
    return AESGCM(key)


def new_key_spec(key_id: str) -> str:
    """A fresh ``id:base64key`` entry, for operators adding a key."""
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


def encrypt(plaintext: str, *, context: str) -> str:
    keyring = active_keyring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = _cipher(keyring.keys[keyring.primary_id]).encrypt(
        nonce, plaintext.encode("utf-8"), context.encode("utf-8")
    )
    payload = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{FORMAT_VERSION}.{keyring.primary_id}.{payload}"


def decrypt(token: str, *, context: str) -> str:
    key_id, raw = _split(token)
    keyring = active_keyring()
    key = keyring.keys.get(key_id)
    if key is None:
        raise MissingKeyError(f"The key {key_id!r} that sealed this value is not configured.")
    try:
        opened = _cipher(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
    except InvalidTag as exc:
        raise TamperedCiphertextError("The stored value failed its integrity check.") from exc
    return opened.decode("utf-8")


def key_id_of(token: str) -> str:
    return _split(token)[0]


def _split(token: str) -> tuple[str, bytes]:
    version, _, rest = token.partition(".")
    key_id, _, payload = rest.partition(".")
    if version != FORMAT_VERSION or not key_id or not payload:
        raise TamperedCiphertextError("The stored value is not in a known format.")
    try:
        raw = base64.urlsafe_b64decode(payload.encode() + b"=" * (-len(payload) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TamperedCiphertextError("The stored value is not valid base64.") from exc
    if len(raw) < NONCE_BYTES + 16:
        raise TamperedCiphertextError("The stored value is too short.")
    return key_id, raw
