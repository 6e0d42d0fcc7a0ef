from __future__ import annotations

import os
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser, SystemCheckError
from django.utils.module_loading import import_string

from stopcsam.core.checks import scale_out_problems


class Command(BaseCommand):
    help = "Serve the site with uvicorn. No access log with addresses: ours logs none."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--processes",
            type=int,
            default=settings.STOPCSAM_PROCESSES,
            help="ASGI processes; more than one needs REDIS_URL.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        processes: int = options["processes"]
        self._refuse_unsupported_scale_out(processes)
        if processes > settings.STOPCSAM_PROCESSES:
            # uvicorn's workers are new interpreters that read the settings (and run the checks)
            # afresh: they must count the processes started here. The setting is left alone when
            # it counts more, for a deployment of several serve commands (deploy/two-processes.sh).
            os.environ["STOPCSAM_PROCESSES"] = str(processes)
        if processes >= settings.STOPCSAM_PROCESSES and not settings.STOPCSAM_EXTERNAL_WORKERS:
            # This command serves the whole deployment (the embedded default, or uvicorn's
            # workers under it): the background jobs run in threads of this process, once.
            # Several serve commands of one deployment (deploy/two-processes.sh, one systemd
            # unit per port) run none: each would run every job again; `stopcsam
            # scheduling_worker` runs them (deploy/stopcsam-worker.service).
            for starter in settings.STOPCSAM_EMBEDDED_WORKERS:
                import_string(starter)()
        uvicorn.run(
            "stopcsam.asgi:application",
            host=options["host"],
            port=options["port"],
            workers=processes,
            access_log=False,
            log_config=None,
            proxy_headers=False,
            server_header=False,
            lifespan="off",
            # The Sans-I/O websockets protocol rather than uvicorn's default, which is built on
            # the legacy websockets API that websockets deprecates: the bench's bare uvicorn
            # relay at 2,000 sessions cost 116-120 instead of 169-192 us of CPU per message, and
            # its p99 stayed at 3 ms instead of reaching 220-290 ms in two runs out of three.
            ws="websockets-sansio",
            # Chat frames are small and their bodies sensitive: compressing them costs more CPU
            # than it saves bytes (15% of the server's time, bench/chat.py), and compression
            # beside secret content is what CRIME/BREACH-style attacks feed on.
            ws_per_message_deflate=False,
            # The protocol refuses a frame over CHAT_MAX_FRAME_BYTES with a localised error;
            # uvicorn would otherwise buffer a frame of up to 16 MiB before the chat sees it.
            # Far larger frames than the protocol allows close the connection (1009).
            ws_max_size=settings.CHAT_MAX_FRAME_BYTES * 4,
            ws_ping_interval=settings.CHAT_PING_SECONDS,
            ws_ping_timeout=settings.CHAT_PING_SECONDS,
        )

    def _refuse_unsupported_scale_out(self, processes: int) -> None:
        """The check of STOPCSAM_PROCESSES, for the count given here: the system checks before
        handle() saw only the setting, and a refused worker would be restarted over and over."""
        problems = scale_out_problems(processes=processes, given_as=f"--processes {processes}")
        problems = [p for p in problems if not p.is_silenced()]
        if problems:
            issues = "\n".join(self.style.ERROR(str(p)) for p in problems)
            raise SystemCheckError(
                self.style.ERROR("SystemCheckError: System check identified some issues:\n")
                + f"\nERRORS:\n{issues}\n"
            )
