"""The order in which a message is read; see the package docstring for the rules."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from email.message import Message
from functools import cache, partial

from workflows import tokens
from workflows.event_config import SessionSpec
from workflows.understand import attached, automatic, bounce, calendar, mime, ses
from workflows.understand import subject as subject_line
from workflows.understand.language import detect_language
from workflows.understand.strip import forwarded_part as strip_forwarded
from workflows.understand.strip import strip_reply
from workflows.understand.text import TextReading, read_text
from workflows.understanding import PersonMention, ReplyKind, Understanding

_PARTSTAT_KIND = {
    "ACCEPTED": ReplyKind.ACCEPT,
    "DECLINED": ReplyKind.DECLINE,
    "TENTATIVE": ReplyKind.TENTATIVE,
}
# A reply's own words are short (a long formal letter is ~3,000 characters); reading costs
# more than linearly in the length of unpunctuated text, so a wall of text is read only this
# far (and noted) rather than stalling the reader for seconds.
_MAX_READ_CHARS = 8_000
# What the reviewer is shown of a forward (only shown, never read).
_MAX_SHOWN_CHARS = 20_000
# Opens reply_text of a forward the sender added nothing to: what follows is not theirs.
FORWARD_MARKER = "[Forwarded message; the sender wrote nothing of their own. It reads:]"
# Follows the sender's own words when those only point at the forward below them ("Zie
# hieronder."): the reviewer needs the forwarded text to decide; it was not read.
FORWARD_BELOW_MARKER = "[Forwarded message below the sender's words; not read. It reads:]"
_DEFINITE = (ReplyKind.ACCEPT, ReplyKind.DECLINE)
# Google Calendar's notification text repeats the event (and its description); not the
# invitee's words.
_CALENDAR_BOILERPLATE = re.compile(
    r"google\s+(?:calendar|agenda)|invitation\s+from|uitnodiging\s+van\s+google|"
    r"heeft\s+(?:deze\s+uitnodiging\s+)?(?:geaccepteerd|afgewezen|voorlopig)|has\s+(?:accepted|declined|"
    r"tentatively)",
    re.IGNORECASE,
)


def read_message(
    raw: bytes, sessions: Sequence[SessionSpec], default_language: str, max_bytes: int
) -> Understanding:
    if len(raw) > max_bytes:
        note = f"message too large ({len(raw)} bytes > {max_bytes}); not read"
        return _headers_only(raw, default_language, note)
    if mime.too_many_boundaries(raw):
        note = f"more than {mime.MAX_BOUNDARIES} MIME boundaries (nested too deep to read)"
        return _headers_only(raw, default_language, note)
    msg = mime.parse(raw)
    envelope = _envelope(msg, default_language)
    subject = mime.header(msg, "Subject")
    sender = envelope.sender
    body = mime.body_text(msg)
    cal = calendar.find_calendar(msg, sender)
    token = _find_token(msg, subject, cal)
    base = replace(
        envelope,
        token=token,
        calendar_uid=cal.uid if cal else None,
        calendar_attendee=cal.attendee if cal else None,
    )

    notice = ses.read_notice(body)
    if notice is not None:
        return _ses_result(base, notice)
    own_text = cache(partial(mime.all_text, msg, include_attached=False))
    failure = bounce.detect_bounce(msg, subject, sender, own_text)
    if failure is not None:
        return _bounce_result(base, failure)
    if _is_feedback_report(msg):
        return replace(base, kind=ReplyKind.UNCLEAR, is_automatic=True,
                       notes=("abuse/feedback report (ARF): for a human",))  # fmt: skip

    if (
        cal is not None
        and cal.method == "REPLY"
        and cal.partstat in _PARTSTAT_KIND | {"DELEGATED": ReplyKind.DECLINE}
    ):
        return _calendar_result(base, cal, body, sessions, default_language)

    stripped = strip_reply(body)
    if subject_line.is_unsubscribe_request(subject, stripped):
        # Checked before the auto-reply signs: the client wrote it, but for the person.
        return replace(
            base, kind=ReplyKind.UNCLEAR, wants_unsubscribe=True, reply_text=stripped,
            notes=("List-Unsubscribe request (subject 'unsubscribe')",),
        )  # fmt: skip
    header_auto = automatic.header_reason(msg)
    attachments = attached.attached_messages(msg)
    forwarded_subject = subject_line.is_forward(subject) or attached.repeats_attached_subject(
        subject, attachments
    )
    if not stripped and header_auto is None and not base.is_automatic:
        forwarded = _forwarded_only(base, body, subject, attachments, default_language)
        if forwarded is not None:
            return forwarded
    # Under an attached forward, "FW: Automatisch antwoord: …" is the attached message's
    # subject: an out-of-office someone forwards is not one the sender sends.
    auto_subject = "" if attachments and forwarded_subject else subject
    auto = header_auto or automatic.text_reason(auto_subject, stripped or body)
    if auto is not None:
        return replace(
            base, kind=ReplyKind.AUTO_REPLY, is_automatic=True, reply_text=stripped,
            language=detect_language(stripped, default_language), notes=(f"auto-reply: {auto}",),
        )  # fmt: skip

    if base.is_automatic:
        # No-reply senders, lists and bulk mail: machine-written, whatever its words say.
        return replace(
            base, kind=ReplyKind.AUTO_REPLY, reply_text=stripped,
            notes=("automatic sender or list/bulk headers",),
        )  # fmt: skip

    notes: list[str] = []
    if len(stripped) > _MAX_READ_CHARS:
        # A reply's own words are short; a wall of text is for a human, and reading it all
        # would only make the rules slow.
        stripped = stripped[:_MAX_READ_CHARS]
        notes.append(f"text cut to its first {_MAX_READ_CHARS} characters")
    if cal is not None and cal.method and cal.method != "REPLY":
        notes.append(f"calendar {cal.method} ignored")
    if not stripped:
        notes.append("no text of its own (only quotes or a signature)")
    reading = read_text(stripped, sessions)
    if reading.says_nothing and not forwarded_subject:
        # "FW: Ja, ik kom" (or an attached message's subject) is someone else's subject.
        stripped, reading = _read_subject_too(subject, stripped, reading, sessions, notes)
    result = _with_reading(base, reading, stripped, default_language, notes)
    return _showing_the_forward(result, reading, body, subject, attachments)


_FROM_SUBJECT = (ReplyKind.ACCEPT, ReplyKind.DECLINE, ReplyKind.TENTATIVE)


def _read_subject_too(
    subject: str,
    text: str,
    reading: TextReading,
    sessions: Sequence[SessionSpec],
    notes: list[str],
) -> tuple[str, TextReading]:
    """The body says nothing to act on: the answer may be in the subject ("Ja, ik kom",
    "RE: Uitnodiging … — ja"). Read the sender's subject words together with the body, and
    keep that reading only when it gives an answer (or, for an empty body, a question)."""
    words = subject_line.own_words(subject)
    if not words:
        return text, reading
    combined_text = f"{words}\n{text}" if text else words
    combined = read_text(combined_text, sessions)
    usable = combined.kind in _FROM_SUBJECT or combined.wants_unsubscribe
    if not text and combined.kind is ReplyKind.QUESTION:
        usable = True
    if not usable:
        return text, reading
    notes.append(f"read the subject too: {words[:80]!r}")
    return combined_text, combined


def _forwarded_text(
    body: str, subject: str, attachments: tuple[attached.AttachedMessage, ...]
) -> str | None:
    """What the sender forwarded, for the reviewer's eyes only: the forward in the body (from
    its opening line on), then every message attached whole; None when there is neither."""
    pieces: list[str] = []
    inline = strip_forwarded(body, forward_subject=subject_line.is_forward(subject))
    if inline is not None:
        pieces.append(inline)
    if attachments:
        pieces.append(attached.rendered(attachments))
    return "\n\n".join(pieces)[:_MAX_SHOWN_CHARS] if pieces else None


def _forwarded_only(
    base: Understanding,
    body: str,
    subject: str,
    attachments: tuple[attached.AttachedMessage, ...],
    default_language: str,
) -> Understanding | None:
    """A forward with nothing of the sender's own, in the body or attached: not read at all
    (the words are someone else's, maybe our own invitation), but kept whole in reply_text
    for the reviewer."""
    forwarded = _forwarded_text(body, subject, attachments)
    if forwarded is None:
        return None
    return replace(
        base,
        kind=ReplyKind.UNCLEAR,
        reply_text=f"{FORWARD_MARKER}\n\n{forwarded}",
        language=detect_language(forwarded, default_language),
        notes=("forwarded message with no words of the sender's own: for a human",),
    )


def _showing_the_forward(
    result: Understanding,
    reading: TextReading,
    body: str,
    subject: str,
    attachments: tuple[attached.AttachedMessage, ...],
) -> Understanding:
    """Words that say nothing above a forward ("Zie hieronder.", "See below") or beside an
    attached one ("Zie bijlage.", "See attached") point at it.

    The reply stays unclear and the forward stays unread (its words are someone else's);
    only reply_text changes, so that the reviewer sees what the sender pointed at: their own
    words, then FORWARD_BELOW_MARKER and the forwarded text, as for a forward with nothing
    above it. Words that answer or ask something are the reply and shown alone, as before.
    """
    if result.kind is not ReplyKind.UNCLEAR or not reading.says_nothing or not result.reply_text:
        return result
    forwarded = _forwarded_text(body, subject, attachments)
    if forwarded is None:
        return result
    shown = f"{result.reply_text}\n\n{FORWARD_BELOW_MARKER}\n\n{forwarded}"
    return replace(result, reply_text=shown)


def _ses_result(base: Understanding, notice: ses.SesNotice) -> Understanding:
    listed = ", ".join(notice.recipients) or "no recipient named"
    if notice.kind == ses.BOUNCE:
        return replace(
            base, kind=ReplyKind.BOUNCE, bounce_permanent=notice.permanent,
            bounced_recipients=notice.recipients, is_automatic=True,
            notes=(f"bounce: Amazon SES notice ({notice.detail})",),
        )  # fmt: skip
    if notice.kind == ses.COMPLAINT:
        # A spam complaint, like an ARF abuse report: for a human.
        return replace(
            base, kind=ReplyKind.UNCLEAR, is_automatic=True,
            notes=(f"Amazon SES complaint ({notice.detail}) from {listed}: for a human",),
        )  # fmt: skip
    return replace(
        base, kind=ReplyKind.AUTO_REPLY, is_automatic=True,
        notes=(f"Amazon SES notice: {notice.kind} ({listed})",),
    )  # fmt: skip


def _envelope(msg: Message, default_language: str) -> Understanding:
    sender = (
        mime.address(msg, "From") or mime.address(msg, "Sender") or mime.address(msg, "Return-Path")
    )
    refs: list[str] = []
    for name in ("In-Reply-To", "References"):
        for mid in mime.message_ids(mime.header(msg, name)):
            if mid not in refs:
                refs.append(mid)
    message_id = mime.header(msg, "Message-ID").strip() or None
    return Understanding(
        kind=ReplyKind.UNCLEAR,
        language=default_language,
        message_id=message_id,
        sender=sender,
        references=tuple(refs),
        is_automatic=automatic.never_answer(msg),
    )


def _headers_only(raw: bytes, default_language: str, note: str) -> Understanding:
    """A message too costly to read whole: its envelope and token only, for a human."""
    try:
        msg = mime.parse_headers_only(raw)
        base = _envelope(msg, default_language)
        token = _token_from_headers(msg, mime.header(msg, "Subject"))
    except Exception:
        base, token = Understanding(kind=ReplyKind.UNCLEAR, language=default_language), None
    return replace(base, kind=ReplyKind.UNCLEAR, token=token, notes=(note,))


def _token_from_headers(msg: Message, subject: str) -> str | None:
    for addr in mime.addresses(msg, "To", "Delivered-To", "X-Original-To", "Envelope-To", "Cc"):
        found = tokens.find_in_address(addr)
        if found:
            return found
    return tokens.find_in_text(subject)


def _find_token(msg: Message, subject: str, cal: calendar.CalendarReply | None) -> str | None:
    """Address first (hardest to mangle), then subject, calendar UID, any text, attached
    originals (a bounce returns our invitation with its Reply-To and marker)."""
    found = _token_from_headers(msg, subject)
    if found:
        return found
    if cal and cal.uid:
        found = tokens.find_in_uid(cal.uid)
        if found:
            return found
    text = mime.all_text(msg)
    found = tokens.find_in_text(text) or tokens.find_in_uid(text)
    if found:
        return found
    nested = mime.nested_headers(msg)
    return (
        tokens.find_in_address(nested)
        or tokens.find_in_text(nested)
        or tokens.find_in_address(text)
    )


def _bounce_result(base: Understanding, failure: bounce.BounceResult) -> Understanding:
    if failure.delivered_only:
        return replace(base, kind=ReplyKind.AUTO_REPLY, is_automatic=True, notes=(failure.reason,))
    return replace(
        base,
        kind=ReplyKind.BOUNCE,
        bounce_permanent=failure.permanent,
        bounced_recipients=failure.recipients,
        is_automatic=True,
        notes=(f"bounce: {failure.reason}",),
    )


def _is_feedback_report(msg: Message) -> bool:
    if mime.content_type(msg) != "multipart/report":
        return False
    return any(mime.content_type(p) == "message/feedback-report" for p, _, _ in mime.walk(msg))


def _calendar_result(
    base: Understanding,
    cal: calendar.CalendarReply,
    body: str,
    sessions: Sequence[SessionSpec],
    default_language: str,
) -> Understanding:
    """PARTSTAT decides; the COMMENT (and an Outlook body) add details."""
    kind = _PARTSTAT_KIND.get(cal.partstat or "", ReplyKind.DECLINE)
    stripped = strip_reply(body)
    if _CALENDAR_BOILERPLATE.search(stripped):
        stripped = ""
    words = "\n".join(t for t in (cal.comment, stripped) if t.strip())
    reading = read_text(words, sessions)
    notes = [f"calendar reply PARTSTAT={cal.partstat}"]
    if reading.kind in _DEFINITE and kind in _DEFINITE and reading.kind is not kind:
        notes.append(f"comment says {reading.kind.value}, calendar says {kind.value}")
        kind = ReplyKind.UNCLEAR
    result = _with_reading(base, reading, words, default_language, notes)
    substitute = result.substitute
    if cal.partstat == "DELEGATED" and cal.delegated_to and substitute is None:
        substitute = PersonMention(name="", email=cal.delegated_to)
    return replace(result, kind=kind, substitute=substitute)


def _with_reading(
    base: Understanding,
    reading: TextReading,
    text: str,
    default_language: str,
    notes: list[str],
) -> Understanding:
    return replace(
        base,
        kind=reading.kind,
        session=reading.session,
        companions=reading.companions,
        substitute=reading.substitute,
        dietary=reading.dietary,
        has_question=reading.has_question,
        mentions_cancellation=reading.mentions_cancellation,
        wants_unsubscribe=reading.wants_unsubscribe,
        language=detect_language(text, default_language),
        reply_text=text,
        notes=tuple(notes) + reading.notes,
    )
