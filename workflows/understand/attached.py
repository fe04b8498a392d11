"""Forwards sent as an attachment: a whole message attached as a message/rfc822 part, as a
saved .eml file, or as an Outlook .msg item.

Outlook's, Apple Mail's and Thunderbird's "Forward as attachment" (and a dragged-in .eml file)
put the forwarded mail in its own part instead of below the sender's words. `mime.body_text`
already leaves such parts out, so their words are never read as the sender's answer; this
module finds them so that the reviewer can be shown what was forwarded, and so that their
subject (repeated in the sender's "FW: …") is not read either.

A mail attached as a file is the same forward under another label: a part named "*.eml" (any
content type: application/octet-stream, or message/rfc822 mislabelled as text/plain) whose
bytes start with a mail's header block is read like a message/rfc822 part. An Outlook .msg (a
binary OLE file) cannot be read without a heavy dependency, so the reviewer is only told it is
there; since its subject is unknown, the sender's subject beside it is taken for its subject.

Reports also carry an attached message: a delivery-status report (bounce) or a read receipt
returns our invitation, an ARF abuse report the reported mail, and Hotmail's complaint feedback
loop (JMRP) sends the reported mail alone in a multipart/mixed. Those are not forwards and are
never treated as one, whatever they contain: they are read exactly as before.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass
from email.message import Message

from workflows.understand import mime
from workflows.understand import subject as subject_line

# Opens each attached message in reply_text, in the style of an inline forward's opening line,
# so that the reviewer can tell it was an attachment and where it starts.
ATTACHED_MESSAGE_LINE = "-------- Attached message --------"
# Stands for an attached Outlook .msg, which is not read: the reviewer has to open the original.
OUTLOOK_ITEM_LINE = (
    "-------- Attached Outlook item: {name} (not readable here; open the original mail) --------"
)
# A person forwards one message, or a few; more is no reply, and describing each (HTML to
# text) would only make a hostile message slow to read. Also the most .eml files parsed.
MAX_DESCRIBED = 5
# Of an attached .eml, the decoded bytes parsed (a forwarded mail's text is at its start;
# the rest is its attachments) and the bytes its header block must end within.
MAX_EML_BYTES = mime.MAX_TEXT_BYTES
_EML_HEADER_BYTES = 64_000
_OUTLOOK_TYPES = frozenset({"application/vnd.ms-outlook", "application/x-msg"})
# Headers a mail has and a text file that merely starts with "Subject:" has not: an attached
# .eml counts as a mail when it has From or Subject and at least one more of these.
_MAIL_HEADERS = frozenset(
    {
        "from", "subject", "date", "to", "cc", "message-id", "mime-version", "received",
        "return-path", "reply-to", "sender", "in-reply-to", "references", "content-type",
        "delivered-to", "thread-topic", "thread-index", "x-mailer", "user-agent",
    }
)  # fmt: skip
_HEADER_LINE_RE = re.compile(rb"([!-9;-~]{1,76}):")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")

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
    # The file name of an attached Outlook .msg, which is not read (sender, date, subject and
    # text stay empty); None for a message that was read.
    outlook_item: str | None = None

    def rendered(self) -> str:
        if self.outlook_item is not None:
            return OUTLOOK_ITEM_LINE.format(name=self.outlook_item or "(no file name)")
        head = [ATTACHED_MESSAGE_LINE]
        for label, value in (("From", self.sender), ("Date", self.date), ("Subject", self.subject)):
            if value:
                head.append(f"{label}: {value}")
        return "\n".join(head) + (f"\n\n{self.text.strip()}" if self.text.strip() else "")


def attached_messages(msg: Message) -> tuple[AttachedMessage, ...]:
    """The messages attached whole to `msg` (not those inside another attached message), in
    order: message/rfc822 parts, .eml files that hold a mail, and Outlook .msg items; none
    when `msg` is a report, whose attached message is the original it reports on."""
    if _is_report(msg) or _JMRP_SUBJECT_RE.match(mime.header(msg, "Subject")):
        return ()
    found: list[Message | str] = []  # a message read, or an Outlook item's file name
    files_read = 0
    for part, _depth, attached in mime.walk(msg):
        if attached:
            continue
        ctype = mime.content_type(part)
        # Each file costs a decoding and maybe a parse: only as many as can be shown are read.
        may_read = files_read < MAX_DESCRIBED and len(found) < MAX_DESCRIBED
        if ctype == "message/rfc822":
            inner = _inner_message(part)
            if inner is not None and may_read and _sent_encoded(part, inner):
                files_read += 1
                inner = _mail_file(inner, part) or inner
            if inner is not None:
                found.append(inner)
            continue
        if len(found) >= MAX_DESCRIBED:
            continue
        name = mime.filename(part)
        lowered = name.casefold().rstrip()
        is_outlook = lowered.endswith(".msg") or ctype in _OUTLOOK_TYPES
        if not is_outlook and not lowered.endswith(".eml"):
            continue
        mail = None
        if may_read:
            files_read += 1
            mail = _saved_mail(part)
        if mail is not None:
            found.append(mail)
        elif is_outlook:
            found.append(_shown_name(name))
    if any(isinstance(inner, Message) and mime.header(inner, _JMRP_HEADER) for inner in found):
        return ()
    return tuple(_describe(inner) for inner in found[:MAX_DESCRIBED])


def rendered(messages: tuple[AttachedMessage, ...]) -> str:
    """The attached messages as the reviewer sees them, one after the other."""
    return "\n\n".join(m.rendered() for m in messages)


def repeats_attached_subject(subject: str, messages: tuple[AttachedMessage, ...]) -> bool:
    """Whether the subject is (or contains) an attached message's subject: clients fill it in
    as "FW: <subject>", "[Fwd: <subject>]" or the bare subject, and then it is not the
    sender's own words. Beside an Outlook item, whose subject is unknown, any subject may be
    its subject."""
    own = _comparable(subject)
    if not own:
        return False
    if any(m.outlook_item is not None for m in messages):
        return True
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


def _saved_mail(part: Message) -> Message | None:
    """The mail in a part named as a saved mail (an .eml, or a .msg that is really one);
    None when it holds none (a binary Outlook .msg, a text file, anything else)."""
    if not part.is_multipart():
        return _mail_file(part)
    inner = _inner_message(part)  # under another message/* label ("message/x-eml")
    if inner is None:
        return None
    if _sent_encoded(part, inner):
        return _mail_file(inner, part)
    has_head = mime.header(inner, "From") or mime.header(inner, "Subject")
    return inner if has_head else None


def _sent_encoded(part: Message, inner: Message) -> bool:
    """Whether a message/* part came base64-encoded (against RFC 2046, but clients do): the
    stdlib then parses the encoded text as a message without headers."""
    cte = mime.header(part, "Content-Transfer-Encoding").strip().lower()
    return cte == "base64" and not inner.keys() and not inner.is_multipart()


def _mail_file(part: Message, encoded_as: Message | None = None) -> Message | None:
    """The mail saved in a leaf part's bytes, parsed from its first MAX_EML_BYTES bytes; None
    when the bytes are no mail. `encoded_as`: the part whose Content-Transfer-Encoding the
    payload is in, when not `part`'s own. Never raises."""
    if encoded_as is not None:
        view = Message(policy=email.policy.compat32)
        view["Content-Transfer-Encoding"] = mime.header(encoded_as, "Content-Transfer-Encoding")
        try:
            view.set_payload(part.get_payload())
        except Exception:
            return None
        part = view
    data = _mail_bytes(mime.payload_prefix(part))
    if data is None:
        return None
    data = data[:MAX_EML_BYTES]
    if not mime.too_many_boundaries(data):
        try:
            return mime.parse(data)
        except Exception:  # RecursionError: message/rfc822 nested thousands deep
            pass
    try:
        return mime.parse_headers_only(data)
    except Exception:
        return None


def _mail_bytes(data: bytes) -> bytes | None:
    """`data` from its header block on when it starts like a mail (RFC 5322): an unbroken
    block of header lines, ending in a blank line within _EML_HEADER_BYTES (or at the end of
    a short file), with From or Subject and at least one more header a mail has. None when
    it does not (binary data, a text file)."""
    data = data.removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n")
    if data.startswith(b"From "):  # an mbox separator line, as some tools save mail
        data = data.partition(b"\n")[2]
    head = data[:_EML_HEADER_BYTES]
    end = re.search(rb"\r?\n\r?\n", head)
    if end is not None:
        head = head[: end.start()]
    elif len(data) > len(head):
        return None
    names: set[str] = set()
    for line in head.splitlines():
        if b"\x00" in line:
            return None
        if line[:1] in (b" ", b"\t") and names:
            continue  # a folded header line
        field = _HEADER_LINE_RE.match(line)
        if field is None:
            return None
        names.add(field.group(1).decode("ascii").lower())
    known = names & _MAIL_HEADERS
    if not known & {"from", "subject"} or len(known) < 2:
        return None
    return data


def _shown_name(name: str) -> str:
    """A file name as one safe line for the reviewer."""
    return _SPACE_RE.sub(" ", _CONTROL_RE.sub(" ", name)).strip()[:200]


def _describe(inner: Message | str) -> AttachedMessage:
    if isinstance(inner, str):
        return AttachedMessage(sender="", date="", subject="", text="", outlook_item=inner)
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
