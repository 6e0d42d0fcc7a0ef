"""The one source of "now" for domain decisions (due questionnaires, bookings, no-shows).

Always call ``clock.now()`` rather than ``timezone.now()`` in services and selectors, so the
end-to-end tests can move time.

The test clock: with ``STOPCSAM_TEST_CLOCK=1`` (allowed only in demo or debug mode; a system
check refuses it anywhere else) the server adds an offset read from ``var/test-clock.json``,
which ``stopcsam testclock`` writes. Every process of a deployment sees the same file.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

_cache: dict[str, object] = {"mtime": None, "offset": timedelta(0)}


def now() -> datetime:
    if not settings.STOPCSAM_TEST_CLOCK:
        return timezone.now()
    return timezone.now() + _offset()


def clock_file() -> Path:
    return Path(settings.VAR_DIR) / "test-clock.json"


def _offset() -> timedelta:
    path = clock_file()
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return timedelta(0)
    if mtime != _cache["mtime"]:
        seconds = float(json.loads(path.read_text(encoding="utf-8"))["offset_seconds"])
        _cache.update(mtime=mtime, offset=timedelta(seconds=seconds))
    offset = _cache["offset"]
    assert isinstance(offset, timedelta)
    return offset


def set_offset(offset: timedelta) -> None:
    path = clock_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"offset_seconds": offset.total_seconds()}), encoding="utf-8")
    temporary.replace(path)  # atomic: other processes never read half a file
    # This process knows the new offset: two writes within one tick of the file system's
    # clock (a jiffy on many kernels) have the same mtime, and the cache kept the old one.
    _cache.update(mtime=path.stat().st_mtime_ns, offset=offset)
