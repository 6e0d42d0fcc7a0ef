"""Load the front-door pages (published) and the demo resource directory shipped in content/.

Coordinators edit both in the admin afterwards; the texts were written for this project.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.db import migrations
from django.utils import timezone

CONTENT = Path(__file__).resolve().parent.parent / "content"


def load(apps: Any, schema_editor: Any) -> None:
    Page = apps.get_model("outreach", "Page")
    Resource = apps.get_model("outreach", "Resource")
    moment = timezone.now()
    pages = json.loads((CONTENT / "pages.json").read_text(encoding="utf-8"))
    for slug, languages in pages.items():
        for language, text in languages.items():
            Page.objects.get_or_create(
                slug=slug,
                language=language,
                defaults={
                    **text,
                    "status": "published",
                    "updated_at": moment,
                    "published_at": moment,
                },
            )
    resources = json.loads((CONTENT / "resources.json").read_text(encoding="utf-8"))
    for row in resources["resources"]:
        Resource.objects.get_or_create(country=row["country"], name=row["name"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("outreach", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
