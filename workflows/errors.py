"""Errors the rules raise for the caller (CLI, jobs) to report; each says what and where."""


class RsvpError(Exception):
    """Base of all expected, user-reportable errors."""


class IllegalTransition(RsvpError):
    def __init__(self, machine: str, old: str, new: str) -> None:
        super().__init__(f"{machine}: illegal transition {old} → {new}")
        self.machine, self.old, self.new = machine, old, new


class NotFound(RsvpError):
    pass


class ConcurrentChange(RsvpError):
    """Rows the caller held locked changed under it; the transaction must be rolled back."""
