from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from stopcsam.core.audit import audit_verify
from stopcsam.core.models import AuditEvent


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exit non-zero at the first break."

    def handle(self, *args: Any, **options: Any) -> None:
        broken = audit_verify()
        if broken is not None:
            raise CommandError(f"Audit chain broken at entry {broken.seq}: {broken.reason}")
        self.stdout.write(f"Audit chain intact: {AuditEvent.objects.count()} entries.")
