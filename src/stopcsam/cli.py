"""The ``stopcsam`` command: Django management with this project's settings.

``stopcsam demo`` turns on demo mode before settings load; everything else is a normal
management command (``serve``, ``migrate``, ``createstaff``, ``check --deploy`` ...).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv if argv is None else argv)
    if len(args) > 1 and args[1] == "demo":
        os.environ.setdefault("STOPCSAM_DEMO", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stopcsam.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["stopcsam", *args[1:]])


if __name__ == "__main__":
    main()
