"""Secrets for demo mode only: generated once, kept in ``var/`` so a restart keeps the data.

Outside demo mode nothing here runs; the system checks then insist on real keys.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path


def demo_secrets(var_dir: Path) -> dict[str, str]:
    path = var_dir / "demo-secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return stored
    var_dir.mkdir(parents=True, exist_ok=True)
    generated = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENCRYPTION_KEYS": "demo1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "LOOKUP_KEY": secrets.token_urlsafe(32),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(generated, handle)
    return generated
