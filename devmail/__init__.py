"""devmail: a local, disposable mail system (Dovecot IMAP + LMTP, aiosmtpd SMTP).

Used by the integration tests and the demo::

    from devmail import MailStack

    with MailStack(base_dir=tmp_path) as stack:
        smtplib.SMTP(stack.smtp_host, stack.smtp_port).sendmail(...)
        with stack.mailbox("someone@x.example") as box:
            ...

``python -m devmail run --dir DIR`` runs one in the foreground.
"""

from __future__ import annotations

from devmail.dovecot import DEFAULT_PASSWORD, DovecotServer, ensure_dovecot
from devmail.errors import DeliveryError, DevmailError
from devmail.lmtp import LmtpClient
from devmail.smtp import AcceptedMessage, SmtpServer
from devmail.stack import MailStack

__all__ = [
    "DEFAULT_PASSWORD",
    "AcceptedMessage",
    "DeliveryError",
    "DevmailError",
    "DovecotServer",
    "LmtpClient",
    "MailStack",
    "SmtpServer",
    "ensure_dovecot",
]
