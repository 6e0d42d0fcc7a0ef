"""Django's database session engine, telling the other apps when a session is deleted.

A logout, a participant's "stop and erase" and the new key at every login all delete a
session row through ``delete``. Open chat sockets that were signed in with it are then closed
at once (``core.signals.sign_in_changed``), not at their next safety poll.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from stopcsam.core.signals import sign_in_changed


class SessionStore(DatabaseSessionStore):
    def delete(self, session_key: str | None = None) -> None:
        key = session_key if session_key is not None else self.session_key
        super().delete(session_key)
        if key:
            sign_in_changed.send(sender=SessionStore, session_key=key)

    async def adelete(self, session_key: str | None = None) -> None:
        key = session_key if session_key is not None else self.session_key
        await super().adelete(session_key)
        if key:
            sign_in_changed.send(sender=SessionStore, session_key=key)
