from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def refuse_broken_configuration() -> None:
    """Run the system checks; raise if any error is not silenced."""
    problems = [m for m in checks.run_checks() if m.is_serious() and not m.is_silenced()]
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start:\n" + "\n".join(f"  {m.id}: {m.msg}" for m in problems)
        )
