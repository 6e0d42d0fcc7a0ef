"""Domain errors of the study. Views turn each into one clear, localised message."""

from __future__ import annotations


class StudyError(Exception):
    pass


class ProtocolError(StudyError):
    """The protocol definition cannot be used; the message says where and why."""


class NoActiveProtocolError(StudyError):
    pass


class NotEligibleError(StudyError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


class ConsentIncompleteError(StudyError):
    """Not every consent item was ticked."""


class ConsentChangedError(StudyError):
    """The consent text changed after the page that was agreed to was shown."""


class StepOutOfOrderError(StudyError):
    """The participant tried a step of the journey before its predecessor."""


class QuestionnaireNotDueError(StudyError):
    pass


class AlreadyRandomizedError(StudyError):
    pass
