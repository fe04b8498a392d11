"""Forwards sent as an attachment: a whole message attached as a message/rfc822 part.

Outlook's, Apple Mail's and Thunderbird's "Forward as attachment" (and a dragged-in .eml file)
put the forwarded mail in its own part instead of below the sender's words. `mime.body_text`
already leaves such parts out, so their words are never read as the sender's answer; this
module finds them so that the reviewer can be shown what was forwarded, and so that their
subject (repeated in the sender's "FW: …") is not read either.

Reports also carry an attached message: a delivery-status report (bounce) or a read receipt
returns our invitation, an ARF abuse report the reported mail, and Hotmail's complaint feedback
loop (JMRP) sends the reported mail alone in a multipart/mixed. Those are not forwards and are
never treated as one, whatever they contain: they are read exactly as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from workflows.understand import mime
from workflows.understand import subject as subject_line

# Opens each attached message in reply_text, in the style of an inline forward's opening line,
# so that the reviewer can tell it was an attachment and where it starts.
ATTACHED_MESSAGE_LINE = "-------- Attached message --------"
# A person forwards one message, or a few; more is no reply, and describing each (HTML to
# text) would only make a hostile message slow to read.
MAX_DESCRIBED = 5

# Parts only a machine-written report has (RFC 3462 / 3464 / 3798 / 5965).
_REPORT_TYPES = frozenset(
    {
        "multipart/report",
        "message/delivery-status",
        "message/disposition-notification",
        "message/feedback-report",
        "text/rfc822-headers",
    }
)
# Hotmail's JMRP complaint: subject "complaint about message from 192.0.2.1", and the reported
# mail carries X-HmXmrOriginalRecipient. It has no report part to tell it by.
_JMRP_SUBJECT_RE = re.compile(r"^\s*complaint\s+about\s+message\s+from\b", re.IGNORECASE)
_JMRP_HEADER = "X-HmXmrOriginalRecipient"
_BRACKETS_RE = re.compile(r"[\[\]]")
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class AttachedMessage:
    """What the reviewer needs to see of one attached message; never read for intent."""

    sender: str
    date: str
    subject: str
    text: str

    def rendered(self) -> str:
        head = [ATTACHED_MESSAGE_LINE]
        for label, value in (("From", self.sender), ("Date", self.date), ("Subject", self.subject)):
            if value:
                head.append(f"{label}: {value}")
        return "\n".join(head) + (f"\n\n{self.text.strip()}" if self.text.strip() else "")


def attached_messages(msg: Message) -> tuple[AttachedMessage, ...]:
    """The messages attached whole to `msg` (not those inside another attached message);
    none when `msg` is a report, whose attached message is the original it reports on."""
    if _is_report(msg) or _JMRP_SUBJECT_RE.match(mime.header(msg, "Subject")):
        return ()
    found: list[Message] = []
    for part, _depth, attached in mime.walk(msg):
        if attached or mime.content_type(part) != "message/rfc822":
            continue
        inner = _inner_message(part)
        if inner is not None:
            found.append(inner)
    if any(mime.header(inner, _JMRP_HEADER) for inner in found):
        return ()
    return tuple(_describe(inner) for inner in found[:MAX_DESCRIBED])


def rendered(messages: tuple[AttachedMessage, ...]) -> str:
    """The attached messages as the reviewer sees them, one after the other."""
    return "\n\n".join(m.rendered() for m in messages)


def repeats_attached_subject(subject: str, messages: tuple[AttachedMessage, ...]) -> bool:
    """Whether the subject is (or contains) an attached message's subject: clients fill it in
    as "FW: <subject>", "[Fwd: <subject>]" or the bare subject, and then it is not the
    sender's own words."""
    own = _comparable(subject)
    if not own:
        return False
    return any(theirs and theirs in own for theirs in (_comparable(m.subject) for m in messages))


def _is_report(msg: Message) -> bool:
    return any(
        not attached and mime.content_type(part) in _REPORT_TYPES
        for part, _depth, attached in mime.walk(msg)
    )


def _inner_message(part: Message) -> Message | None:
    try:
        payload = part.get_payload()
    except Exception:
        return None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _describe(inner: Message) -> AttachedMessage:
    return AttachedMessage(
        sender=mime.header(inner, "From"),
        date=mime.header(inner, "Date"),
        subject=mime.header(inner, "Subject"),
        text=mime.body_text(inner),
    )


def _comparable(subject: str) -> str:
    """A subject without reply/forward prefixes, brackets, case and spacing differences."""
    text = subject_line.strip_prefixes(_BRACKETS_RE.sub(" ", subject))
    return _SPACE_RE.sub(" ", text).strip().casefold()
