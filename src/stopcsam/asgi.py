"""The ASGI application: Django, behind a layer that strips identifying request metadata.

HTTP requests run Django's WSGI handler on a pool of threads (``STOPCSAM_HTTP_THREADS``),
websockets go to the lean chat endpoint. Under Django's own ASGI handler every sync view and
sync middleware of a process shares one thread, so at 50 concurrent participants requests
queued behind each other (see bench/journey.py and the commit that made this change).
``STOPCSAM_HTTP_THREADS=0`` serves HTTP through Django's ASGI handler instead.

Importing this module runs the system checks and refuses to start on a broken configuration,
whichever server imports it.
"""

from __future__ import annotations

import concurrent.futures
import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stopcsam.settings")

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.db import connections

django_application = get_asgi_application()

from stopcsam.core.asgi_limits import capped  # noqa: E402
from stopcsam.core.asgi_privacy import anonymising  # noqa: E402
from stopcsam.core.routing import with_websockets  # noqa: E402
from stopcsam.core.startup import refuse_broken_configuration  # noqa: E402


def _http_application() -> object:
    if settings.STOPCSAM_HTTP_THREADS <= 0:
        return capped(django_application)
    from a2wsgi import WSGIMiddleware
    from django.core.wsgi import get_wsgi_application

    # django-stubs types the handler as returning a response object, which is iterable bytes.
    wsgi = WSGIMiddleware(get_wsgi_application(), workers=settings.STOPCSAM_HTTP_THREADS)  # type: ignore[arg-type]
    return capped(wsgi)


def _refuse_broken_configuration_off_the_event_loop() -> None:
    """uvicorn imports this module inside its running event loop (each worker of ``serve
    --processes N``, or uvicorn run directly), where Django refuses database access; and since
    Django 6.1 the model checks ask each database what it supports (SQLite: JSON, by a query).
    The checks run on a thread of their own, which has no event loop, whoever imports this."""

    def check() -> None:
        try:
            refuse_broken_configuration()
        finally:
            connections.close_all()  # this thread's own connections; it ends here

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(check).result()


_refuse_broken_configuration_off_the_event_loop()
application = anonymising(with_websockets(_http_application()))


def _tune_garbage_collector() -> None:
    """Keep the collector's pauses out of chat latency: the objects of start-up are frozen
    out of every later collection, and young collections run less often. bench/chat.py at
    2,000 sessions: p99 336-456 ms with the defaults, 36 ms so; memory per connection alike.
    A young collection of 50,000 objects paused the loop for 10-40 ms; of 25,000, p99 went
    from 47 to 34 ms (medians of three embedded runs)."""
    threshold = settings.STOPCSAM_GC_THRESHOLD
    if threshold:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*threshold)


_tune_garbage_collector()
