from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stopcsam.outreach import services
from stopcsam.outreach.models import CAMPAIGN_CODE_PATTERN, ApiKey, Partner

RATE_MAX = 2**31 - 1  # the largest a PositiveIntegerField holds on every database


class Command(BaseCommand):
    help = "Create or revoke a partner's deterrence API key. The key is printed only once."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key (and the partner, if new)")
        create.add_argument("--partner", required=True)
        create.add_argument("--campaign", help="campaign code for a new partner")
        create.add_argument("--label", default="")
        create.add_argument("--rate", type=int, default=settings.OUTREACH_DEFAULT_RATE_PER_MINUTE)
        revoke = sub.add_parser("revoke", help="revoke a key by its prefix")
        revoke.add_argument("prefix")
        sub.add_parser("list", help="list keys (prefixes only)")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        # Everything checked before the partner is created: with --rate 0 the partner was
        # created (and audited), then the key refused.
        if not 1 <= options["rate"] <= RATE_MAX:
            # Past the column's range it was a traceback, or a number stored out of range.
            raise CommandError(f"--rate must be from 1 to {RATE_MAX} requests per minute.")
        for option, field in (("partner", Partner.name), ("label", ApiKey.label)):
            limit = field.field.max_length
            if limit is not None and len(options[option]) > limit:
                # A DataError on PostgreSQL; SQLite stored it whole.
                raise CommandError(f"--{option} may have at most {limit} characters.")
        partner = Partner.objects.filter(name=options["partner"]).first()
        if partner is None:
            if not options["campaign"]:
                raise CommandError("A new partner needs --campaign CODE.")
            # A code outside the pattern was stored, and the landing page, which accepts only
            # the pattern, counted every help click of the partner as "no campaign".
            if not re.fullmatch(CAMPAIGN_CODE_PATTERN, options["campaign"]):
                raise CommandError(
                    "--campaign must be a campaign code: 1 to 32 lower-case letters, digits "
                    "or dashes, starting with a letter or digit."
                )
            partner = services.partner_create(
                name=options["partner"], campaign_code=options["campaign"]
            )
        _api_key, key = services.api_key_create(
            partner=partner, label=options["label"], rate_per_minute=options["rate"]
        )
        self.stdout.write(key)

    def _revoke(self, options: dict[str, Any]) -> None:
        api_key = ApiKey.objects.filter(prefix=options["prefix"]).first()
        if api_key is None:
            raise CommandError(f"No key with prefix {options['prefix']!r}.")
        services.api_key_revoke(api_key=api_key)
        self.stdout.write(f"Revoked {api_key.prefix}.")

    def _list(self, options: dict[str, Any]) -> None:
        for api_key in ApiKey.objects.select_related("partner"):
            state = f"revoked {api_key.revoked_at:%Y-%m-%d}" if api_key.revoked_at else "active"
            self.stdout.write(f"{api_key.prefix}\t{api_key.partner.name}\t{state}")
