"""Amazon SES notices: bounces and complaints sent as JSON through an SNS e-mail subscription.

An organiser who sends through Amazon SES can have its bounce and complaint notifications
mailed to the reply address. They carry no DSN and no bounce wording: the body is JSON, either
the SES notification itself (SNS protocol "email") or the SNS envelope with the notification
as a JSON string in "Message" (protocol "email-json"), followed by SNS's unsubscribe footer:

    {"notificationType":"Bounce","bounce":{"bounceType":"Permanent",
     "bouncedRecipients":[{"emailAddress":"a@b.nl",…}],…},"mail":{…}}

SES event publishing writes "eventType" where notifications write "notificationType"; both are
read. What each type means here:

- Bounce: the bounced recipients; permanent only when bounceType is "Permanent" ("Transient"
  and "Undetermined" may still deliver later, and a permanent bounce marks the invitation
  undeliverable).
- Complaint: the recipient reported our mail as spam. Like an ARF abuse report it is for a
  human, and never an answer.
- Delivery: delivered, not a failure.

Mail servers wrap the long JSON line: sendmail breaks it with "!", a newline and a space. The
JSON is read as sent first, and only when that fails with those breaks undone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

BOUNCE = "Bounce"
COMPLAINT = "Complaint"
DELIVERY = "Delivery"

# A notice is one JSON object; anything much larger is not one (and not worth decoding).
_MAX_JSON_CHARS = 200_000
# What sendmail puts where it breaks a line longer than the SMTP limit.
_SENDMAIL_BREAK_RE = re.compile(r"!\n ")
_DECODER = json.JSONDecoder(strict=False)  # a wrapped line leaves raw newlines inside strings


@dataclass(frozen=True)
class SesNotice:
    kind: str  # "Bounce", "Complaint", "Delivery" or another SES type
    recipients: tuple[str, ...]  # bounced, complained or delivered addresses, lowercased
    permanent: bool  # a Bounce with bounceType "Permanent"
    detail: str  # bounce type and subtype, or complaint feedback type, for the notes


def might_be_notice(body: str) -> bool:
    """A cheap first look: does the body open with a JSON object naming an SES type?"""
    head = body[:4000].lstrip()
    return head.startswith("{") and ("notificationType" in head or "eventType" in head)


def read_notice(body: str) -> SesNotice | None:
    """The SES notice in a message body, or None when the body is not one."""
    if not might_be_notice(body):
        return None
    data = _notification(_json_object(body.lstrip()[:_MAX_JSON_CHARS]))
    if data is None:
        return None
    kind = data.get("notificationType") or data.get("eventType")
    if not isinstance(kind, str) or not isinstance(data.get("mail"), dict):
        return None
    if kind == BOUNCE:
        return _bounce(data.get("bounce"))
    if kind == COMPLAINT:
        return _complaint(data.get("complaint"))
    if kind == DELIVERY:
        delivery = data.get("delivery")
        recipients = delivery.get("recipients") if isinstance(delivery, dict) else None
        return SesNotice(DELIVERY, _addresses(recipients), False, "delivered")
    return SesNotice(kind, (), False, kind)


def _json_object(text: str) -> Any:
    """The first JSON value in `text` (SNS adds a footer after it), or None."""
    for candidate in (text, _SENDMAIL_BREAK_RE.sub("", text)):
        try:
            value, _end = _DECODER.raw_decode(candidate)
        except ValueError:
            continue
        return value
    return None


def _notification(value: Any) -> dict[str, Any] | None:
    """The SES notification itself, unwrapped from an SNS envelope when there is one."""
    if not isinstance(value, dict):
        return None
    message = value.get("Message")
    if value.get("Type") == "Notification" and isinstance(message, str):
        value = _json_object(message.strip())
    return value if isinstance(value, dict) else None


def _bounce(bounce: Any) -> SesNotice | None:
    if not isinstance(bounce, dict):
        return None
    recipients = _recipient_rows(bounce.get("bouncedRecipients"))
    bounce_type = str(bounce.get("bounceType", ""))
    detail = f"{bounce_type or '?'}/{bounce.get('bounceSubType', '?')}"
    return SesNotice(BOUNCE, recipients, bounce_type == "Permanent", detail)


def _complaint(complaint: Any) -> SesNotice | None:
    if not isinstance(complaint, dict):
        return None
    recipients = _recipient_rows(complaint.get("complainedRecipients"))
    detail = str(complaint.get("complaintFeedbackType") or "complaint")
    return SesNotice(COMPLAINT, recipients, False, detail)


def _recipient_rows(rows: Any) -> tuple[str, ...]:
    """The addresses of [{"emailAddress": …}, …]."""
    if not isinstance(rows, list):
        return ()
    return _addresses([row.get("emailAddress") for row in rows if isinstance(row, dict)])


def _addresses(values: Any) -> tuple[str, ...]:
    """Lowercased addresses, in order, once each; SES may write "Name <a@b>"."""
    if not isinstance(values, list):
        return ()
    found: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        addr = (parseaddr(value)[1] or value).strip().strip("<>").lower()
        if "@" in addr and addr not in found:
            found.append(addr)
    return tuple(found)
