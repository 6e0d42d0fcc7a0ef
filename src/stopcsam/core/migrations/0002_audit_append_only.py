"""Make the audit log append-only in the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

from django.conf import settings
from django.db import migrations

from stopcsam.core.migrations._append_only_sql import backward_statements, forward_statements


def forward(apps, schema_editor):
    # The test settings turn this off because Django's test isolation empties every table;
    # a test installs these same statements inside its own transaction and checks them.
    if not getattr(settings, "AUDIT_DB_TRIGGERS", True):
        return
    for statement in forward_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    for statement in backward_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
