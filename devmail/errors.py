"""Exceptions raised by devmail."""

from __future__ import annotations


class DevmailError(RuntimeError):
    """The local mail stack could not be installed, started or used."""


class DeliveryError(DevmailError):
    """Dovecot LMTP refused a message for one recipient."""

    def __init__(self, recipient: str, code: int, message: str) -> None:
        super().__init__(f"LMTP delivery to {recipient} failed: {code} {message}")
        self.recipient = recipient
        self.code = code
        self.message = message
