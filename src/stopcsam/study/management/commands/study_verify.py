from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from stopcsam.study.models import Enrolment, ProtocolVersion
from stopcsam.study.randomization import arm_at, seed_commitment
from stopcsam.study.selectors import parsed_protocol


class Command(BaseCommand):
    help = (
        "Verify randomization: the sealed seed matches its published commitment and every "
        "assignment equals the arm the sequence gives at its position."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = 0
        for version in ProtocolVersion.objects.all():
            if seed_commitment(version.sealed_seed) != version.seed_commitment:
                raise CommandError(f"{version}: the seed does not match its commitment.")
            protocol = parsed_protocol(version)
            base, multipliers = tuple(protocol.block_base()), protocol.block_multipliers
            assigned = Enrolment.objects.filter(protocol=version).exclude(arm="")
            for enrolment in assigned.only("pk", "arm", "stratum", "allocation_position"):
                expected = arm_at(
                    version.sealed_seed,
                    enrolment.stratum,
                    enrolment.allocation_position or 0,
                    base,
                    multipliers,
                )
                if expected != enrolment.arm:
                    problems += 1
                    self.stderr.write(
                        f"{version}: enrolment {enrolment.pk} has {enrolment.arm}, "
                        f"the sequence says {expected}"
                    )
            self.stdout.write(
                f"{version}: commitment {version.seed_commitment} ok, "
                f"{assigned.count()} assignments checked"
            )
        if problems:
            raise CommandError(f"{problems} assignments do not match the sealed sequence.")
