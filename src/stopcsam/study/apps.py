from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class StudyConfig(AppConfig):
    name = "stopcsam.study"
    label = "study"

    def ready(self) -> None:
        from stopcsam.core.signals import participant_erasing, session_outcome

        session_outcome.connect(_count_session_outcome, dispatch_uid="study.session_outcome")
        participant_erasing.connect(_count_erasure, dispatch_uid="study.participant_erasing")


def _count_session_outcome(
    sender: Any, *, participant_id: int, outcome: str, **kwargs: Any
) -> None:
    from stopcsam.study.services import session_outcome_count

    session_outcome_count(participant_id=participant_id, outcome=outcome)


def _count_erasure(sender: Any, *, participant_id: int, **kwargs: Any) -> None:
    from stopcsam.study.services import withdrawal_on_account_deletion

    withdrawal_on_account_deletion(participant_id=participant_id)
