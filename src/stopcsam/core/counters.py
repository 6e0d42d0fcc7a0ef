"""Counting events in fixed windows of time, in the cache that every process shares (Redis
when scaled out): the partner API's per-key budget, the chat's posts without JavaScript."""

from __future__ import annotations

from django.core.cache import cache

from stopcsam.core import clock


def count_in_window(name: str, seconds: int) -> tuple[int, int]:
    """Count one more event under ``name`` in the current window of ``seconds``. Returns
    the count so far in this window and the seconds left in it. Raises whatever the cache
    raises when it cannot be reached."""
    moment = clock.now().timestamp()
    key = f"{name}:{int(moment // seconds)}"
    cache.add(key, 0, timeout=seconds * 2)
    try:
        used = cache.incr(key)
    except ValueError:  # the count expired between add and incr
        cache.add(key, 1, timeout=seconds * 2)
        used = 1
    return used, max(1, seconds - int(moment % seconds))
