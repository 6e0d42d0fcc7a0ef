"""Domain errors of the outreach app; the web layer turns them into friendly answers."""

from __future__ import annotations


class OutreachError(Exception):
    """Base class for outreach errors."""


class InvalidApiKeyError(OutreachError):
    """The key is missing, unknown or revoked. One error for all, so keys cannot be probed."""


class RateLimitedError(OutreachError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


class KeyLookupsSpentError(OutreachError):
    """This process has spent its database lookups of keys it does not remember, for now."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"key lookups spent for {retry_after} s")
        self.retry_after = retry_after


class ImportValidationError(OutreachError):
    """An import file has errors; ``problems`` lists each with its row."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class UnknownStepError(OutreachError):
    """A funnel step that is not one of FUNNEL_STEPS."""
