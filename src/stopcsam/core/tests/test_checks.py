from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from stopcsam.core.checks import check_scale_out, check_secrets

STOPCSAM = str(Path(sys.executable).with_name("stopcsam"))
PRODUCTION_ENV = {
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-" + "q7" * 20,
    "STOPCSAM_ENCRYPTION_KEYS": "k1:" + "C" * 43 + "=",
    "STOPCSAM_LOOKUP_KEY": "lookup-key-for-tests",
    "ALLOWED_HOSTS": "help.example.org",
    "DJANGO_SETTINGS_MODULE": "stopcsam.settings",
}


def _ids(messages: list) -> set[str]:  # type: ignore[type-arg]
    return {m.id for m in messages}


@override_settings(STOPCSAM_ENCRYPTION_KEYS="")
def test_a_missing_encryption_key_is_refused() -> None:
    assert "stopcsam.E002" in _ids(check_secrets())


@override_settings(SECRET_KEY_IS_SET=False, STOPCSAM_LOOKUP_KEY="")
def test_missing_secrets_are_refused() -> None:
    assert {"stopcsam.E001", "stopcsam.E003"} <= _ids(check_secrets())


@override_settings(STOPCSAM_PROCESSES=2, REDIS_URL="")
def test_several_processes_without_redis_are_refused() -> None:
    assert _ids(check_scale_out()) == {"stopcsam.E004"}


@override_settings(STOPCSAM_PROCESSES=2, REDIS_URL="redis://127.0.0.1:6379/0")
def test_several_processes_with_redis_are_fine() -> None:
    assert check_scale_out() == []


def _run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STOPCSAM_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"))
    }
    return subprocess.run(
        [STOPCSAM, *args],
        env={**clean, "STOPCSAM_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    result = _run(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_of_the_chat_test_mode(tmp_path: Path) -> None:
    env = {**PRODUCTION_ENV, "CHAT_TEST_MODE": "1"}
    result = _run(["check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode != 0
    assert "stopcsam.chat.W001" in result.stderr + result.stdout


def test_the_server_refuses_to_start_without_an_encryption_key(tmp_path: Path) -> None:
    env = {**PRODUCTION_ENV, "STOPCSAM_ENCRYPTION_KEYS": ""}
    result = _run(["serve", "--port", "0"], env, tmp_path)
    assert result.returncode != 0
    assert "stopcsam.E002" in result.stderr


def test_the_asgi_application_refuses_a_broken_configuration(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STOPCSAM_")}
    env = {
        **clean,
        **PRODUCTION_ENV,
        "STOPCSAM_PROCESSES": "3",
        "REDIS_URL": "",
        "STOPCSAM_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", "import stopcsam.asgi"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0 and "stopcsam.E004" in result.stderr


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
@pytest.mark.django_db
def test_redis_is_used_and_answers_when_configured() -> None:
    from django.core.cache import caches
    from django.test import Client

    assert type(caches["default"]).__name__ == "RedisCache"
    assert "redis: ok" in Client().get("/healthz").content.decode()
