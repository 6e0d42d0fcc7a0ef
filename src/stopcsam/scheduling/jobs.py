"""Background jobs on huey: a SQLite file beside the database in the embedded default, Redis
when REDIS_URL is set (the scaled-out setup runs ``stopcsam scheduling_worker``).

Huey is used for its periodic tasks (a no-show sweep every minute) and its two stores; the
jobs themselves are plain services, idempotent, so two workers never double-mark.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

# huey ships no type information; its few entry points used here are typed by our wrappers.
from huey import Huey, RedisHuey, SqliteHuey, crontab

logger = logging.getLogger(__name__)


def _make_huey() -> Huey:
    immediate = settings.SCHEDULING_JOBS_IMMEDIATE
    if settings.REDIS_URL:
        # The deployment's prefix: two deployments on one Redis database would otherwise run
        # each other's jobs.
        name = f"{settings.CHAT_REDIS_PREFIX}-scheduling"
        return RedisHuey(name, url=settings.REDIS_URL, immediate=immediate)
    path = settings.VAR_DIR / "jobs-scheduling.sqlite3"
    return SqliteHuey("stopcsam-scheduling", filename=str(path), immediate=immediate)


huey = _make_huey()


@huey.periodic_task(crontab(minute="*"))
def sweep_sessions() -> dict[str, int]:
    """Every minute: mark no-shows and leave reminders for the coming day; then the other
    apps' minute jobs (STOPCSAM_EVERY_MINUTE), each on its own: one that fails is logged and
    the others run."""
    from django.utils.module_loading import import_string

    from stopcsam.scheduling import services

    # Scheduling's own steps on their own too: a no-show marking that failed (the database
    # away for a moment) left the reminders and the chat's forced ends undone that minute.
    steps = [
        ("no_shows", services.no_shows_mark),
        ("reminders", services.reminders_create),
        *[(path.rsplit(".", 1)[1], import_string(path)) for path in settings.STOPCSAM_EVERY_MINUTE],
    ]
    result: dict[str, int] = {}
    for name, step in steps:
        try:
            done = step()
        except Exception as fault:  # never let one job stop the sweep
            logger.error("minute job %s failed: %s", name, type(fault).__name__)
            _close_connections()
            continue
        result[name] = int(done or 0)
    _close_connections()
    return result


def _close_connections() -> None:
    # Worker threads keep their own connection; close it so a restarted database is noticed.
    from django.db import close_old_connections

    close_old_connections()


def build_consumer(**options: Any) -> Any:
    options.setdefault("workers", 1)
    options.setdefault("worker_type", "thread")
    options.setdefault("periodic", True)
    return huey.create_consumer(**options)


def start_embedded_worker() -> None:
    """Start huey's scheduler and one worker thread inside this process (the embedded default).

    ``Consumer.start`` returns at once; its threads are daemons that end with the server.
    """
    consumer = build_consumer()
    consumer.start()
    logger.info("scheduling jobs run in this process")
