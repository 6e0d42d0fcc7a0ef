"""Domain errors of accounts. Views turn them into one friendly, localised message each."""

from __future__ import annotations


class AccountsError(Exception):
    pass


class CodenameTooLongError(AccountsError):
    """Refused before any hashing, so a huge input costs us nothing."""


class InvalidCodenameError(AccountsError):
    """No participant holds this codename. Deliberately says nothing more."""


class StaffLoginFailedError(AccountsError):
    """Wrong username, password or code, an inactive account, or a locked one."""


class StaffAccountLockedError(StaffLoginFailedError):
    pass


class StaffEnrolmentNeededError(AccountsError):
    """Password right, and no authenticator: its two-factor login was reset."""

    def __init__(self, user_id: int, role: str) -> None:
        super().__init__(user_id)
        self.user_id = user_id
        self.role = role


class TwoFactorCodeError(AccountsError):
    """The code from the newly set up authenticator app did not match."""


class InvitationInvalidError(AccountsError):
    """The invitation is unknown, used or expired."""


class InvitationCodeError(AccountsError):
    """The one-time code from the authenticator app did not match."""


class UsernameTakenError(AccountsError):
    pass
