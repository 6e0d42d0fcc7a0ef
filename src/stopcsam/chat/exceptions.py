"""Domain errors of the chat. Each carries a stable code (for the socket) and a user message."""

from __future__ import annotations

import traceback

from django.utils.translation import gettext_lazy as _


class ChatError(Exception):
    code = "error"
    message = _("Something went wrong. Please try again.")


class SessionNotFoundError(ChatError):
    """No such session for this person: a stranger's session looks exactly like none."""

    code = "not_found"
    message = _("This chat session does not exist or is not yours.")


class ReadAlongOverError(SessionNotFoundError):
    """A supervisor of the site may read along only while the session runs: a finished
    transcript is a staff read that needs a reason of its own (an open escalation). For the
    socket it is a session like none; the console page says why."""

    message = _(
        "This session is over, and so is reading along with it. A supervisor can open a "
        "finished session only while an escalation about it is open."
    )


class SessionNotOpenError(ChatError):
    code = "not_open"
    message = _("This session is not open yet.")


class SessionNotLiveError(ChatError):
    code = "not_live"
    message = _("Messages can be sent only while the session is in progress.")


class SessionAlreadyLiveError(ChatError):
    """``admit`` of a session in progress: the participant is in already."""

    code = "admitted"
    message = _("The participant has already been admitted.")


class SessionEndedError(ChatError):
    code = "ended"
    message = _("This session has ended.")


class SessionShreddedError(ChatError):
    code = "shredded"
    message = _("This session's transcript and notes have been deleted (retention).")


class SessionErasedError(ChatError):
    code = "erased"
    message = _("This session has been erased with the participant's data.")


class NoteChangedError(ChatError):
    """The notes were saved elsewhere (another tab) after the form was filled from them."""

    code = "note_changed"
    message = _(
        "These notes were saved in another window or tab after this page was loaded. What you "
        "wrote is kept in the form below and is not saved yet; the notes saved meanwhile are "
        "shown above it. Save again to replace them."
    )

    def __init__(self, note: object = None) -> None:
        super().__init__()
        self.note = note  # the notes as saved meanwhile, to be shown beside the form


class InvalidMessageError(ChatError):
    code = "invalid"
    message = _("This message cannot be sent: it is empty or too long.")


class NotAllowedError(ChatError):
    code = "forbidden"
    message = _("You are not allowed to do this in this session.")


class SendingTooFastError(ChatError):
    code = "rate_limited"
    message = _("You are sending very quickly. Please wait a moment, then send again.")


class StorageUnavailableError(ChatError):
    code = "unavailable"
    message = _("The message could not be saved. It was not sent; please try again.")


def fault_summary(fault: BaseException) -> str:
    """A fault of ours, for the log: its kind and place, never its text, which may quote a
    message."""
    frames = traceback.extract_tb(fault.__traceback__)
    place = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(fault).__name__}{place}"
