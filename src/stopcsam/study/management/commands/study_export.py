from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stopcsam.core.audit import audit_record
from stopcsam.study.exceptions import NoActiveProtocolError
from stopcsam.study.export import codebook, codebook_csv, export_csv
from stopcsam.study.selectors import active_protocol_version


class Command(BaseCommand):
    help = "Write the pseudonymised export (data.csv, codebook.json, codebook.csv) to a folder."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument(
            "--free-text",
            action="store_true",
            help="Include free-text answers (only if the ethics approval allows).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"]
        try:
            version = active_protocol_version()
        except NoActiveProtocolError:
            raise CommandError("No protocol is active: there is nothing to export.") from None
        folder.mkdir(parents=True, exist_ok=True)
        free_text = options["free_text"]
        with (folder / "data.csv").open("w", encoding="utf-8", newline="") as out:
            for line in export_csv(version, include_free_text=free_text):
                out.write(line)
        book = codebook(version, include_free_text=free_text)
        (folder / "codebook.json").write_text(
            json.dumps(book, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        with (folder / "codebook.csv").open("w", encoding="utf-8", newline="") as out:
            out.writelines(codebook_csv(book))
        audit_record(
            actor="system",
            action="study.exported",
            subject=str(version),
            detail={"free_text": free_text},
        )
        self.stdout.write(f"Exported {version} to {folder}")
