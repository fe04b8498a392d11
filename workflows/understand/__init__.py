"""Understanding one reply to an invitation: pure functions, no IO.

    understand(raw_bytes, sessions) -> Understanding

Order of reading (first match decides the kind):

1. Too large (> max_bytes) → ``unclear``; only the headers are read (envelope, token).
2. Bounce: a delivery-status report, flufl.bounce, or a daemon/"Onbestelbaar" text → ``bounce``
   with ``bounced_recipients`` and ``bounce_permanent`` ("delayed"/4.x.x is not permanent).
   A DSN that reports success is ``auto_reply``. An empty Return-Path alone is not a bounce.
   Bounce wording in a subject or body counts only in machine-sent mail (a daemon sender,
   Auto-Submitted, an empty Return-Path, X-Failed-Recipients, …): a person replying to our
   bounce notice, which quotes the server, is not a bounce; a person forwarding a bounce with
   nothing of their own above it is.
   Abuse reports (ARF) → ``unclear`` (a human should see them). Amazon SES notices sent as
   JSON through an SNS e-mail subscription (ses.py), read first: a Bounce → ``bounce`` with its
   bouncedRecipients, permanent only for bounceType "Permanent"; a Complaint (a spam report)
   → ``unclear`` like ARF; a Delivery → ``auto_reply``.
3. Calendar REPLY (METHOD:REPLY): PARTSTAT ACCEPTED/DECLINED/TENTATIVE decides; DELEGATED is a
   decline with the delegate as substitute. The COMMENT (Google) or the typed body (Outlook)
   adds session, companions, dietary; a comment that says the opposite → ``unclear``.
4. Auto-reply: RFC 3834 Auto-Submitted (≠ no), X-Autoreply/X-Autorespond, Precedence:
   auto_reply, Exchange's inbox-rule loop header, an empty Return-Path, or an out-of-office
   subject/body in Dutch or English → ``auto_reply``, whatever words ("ja", "aanwezig") it has.
   Before that: a List-Unsubscribe mailto message (subject "unsubscribe", body empty,
   "unsubscribe" or the client's "automatically generated" line, e.g. Gmail's one-click
   unsubscribe) → ``unclear`` with ``wants_unsubscribe``; the client wrote it for the person.
   A forward with nothing of the sender's own (only blank lines or a signature above the
   forwarded message: a secretary forwarding the wethouder's answer, or someone forwarding the
   invitation) → ``unclear``, checked after the header signs but before the out-of-office
   words, which would be the forwarded writer's. Its words are someone else's, so nothing is
   read from them and not from the subject either ("FW: Ja, ik kom" is the forwarded
   subject): a human decides. ``reply_text`` is ``FORWARD_MARKER`` followed by the forwarded
   text (from its "Forwarded message" / "Begin doorgestuurd bericht:" / "Van: … Verzonden:"
   line on), so the reviewer sees what was forwarded instead of nothing. Outlook's bare
   "Van:/Verzonden:" block counts as a forward only under a forward subject ("FW:", "Fwd:",
   "Doorst:"); under "RE:" it is an empty reply, unclear with an empty ``reply_text`` as
   before. Words typed above a forward are the answer, read as in 5; when they only point at
   it ("Zie hieronder.") and so read unclear, ``reply_text`` adds ``FORWARD_BELOW_MARKER`` and
   the forwarded text after them, again only for the reviewer's eyes.
   A forward sent as an attachment (a message/rfc822 part: "Forward as attachment" in
   Outlook, Apple Mail, Thunderbird; or a file named .eml holding a mail, whatever its content
   type; attached.py) is read the same way:
   the sender's own text part is the answer, and the attached message's words and subject are
   never read ("FW: …", "[Fwd: …]" or a subject that repeats the attached one is its
   subject). With nothing of the sender's own (no text part, blank, a signature) → ``unclear``
   with ``FORWARD_MARKER``; beside words that only point at it ("Zie bijlage.", "See
   attached") → ``FORWARD_BELOW_MARKER``. Either marker is followed by each attached message
   under ``ATTACHED_MESSAGE_LINE`` with its From/Date/Subject and its text (HTML as text), so
   the reviewer sees it was attached and what it says; an inline forward, if any, comes first.
   An Outlook .msg cannot be read here: ``OUTLOOK_ITEM_LINE`` tells the reviewer it is there,
   and since its subject is unknown, the subject beside it is never read as an answer.
   An out-of-office forwarded as an attachment is not the sender's auto-reply. Reports are no
   forwards: a DSN, read receipt or ARF report (any report part) and Hotmail's complaint loop
   keep their returned or reported original to themselves and are read as in 2.
5. Free text, after removing quotes and signatures (strip.py; a "PS" below the signature is
   kept), read by text.py: ``accept`` / ``decline`` / ``tentative`` / ``question`` /
   ``unclear``. When the body says nothing to act on (empty, "Zie onderwerp"), the sender's
   own words in the subject are read with it (subject.py: "Ja, ik kom", "RE: Uitnodiging … —
   ja"); the subject we sent ("Uw afmelding is verwerkt", "Komt u ook?") never counts, nor
   does a forwarded one ("FW: …").

Policy choices:
- A *substitute* ("ik kan niet, collega Jansen komt in mijn plaats") makes the kind
  ``decline`` with ``substitute`` set: the invitee declines for themself and the rules decide
  what to do with the named substitute. A session named with a substitute is the substitute's.
- A *companion* ("ik kom met mijn collega Karin Smit") keeps the invitee's own kind; an unnamed
  companion ("ik kom niet alleen") has name "". "Mijn collega X komt ook mee" implies the
  writer comes (accept). A first name alone counts only after a role ("met collega Karin");
  a bare "met Karin" is not read as a companion. Names keep their particles ("Jan de Boer",
  "Sanne van 't Hof", "collega De Vries").
- A secretary answering for the invitee ("Namens wethouder De Vries laat ik u weten dat zij
  graag komt") answers for the invitee.
- ``unclear`` whenever the text contradicts itself, hedges a decline ("waarschijnlijk niet"),
  or gives no answer: unclear mail goes to a human, and a wrong accept or decline costs more
  than a human look. A bare unsubscribe request is ``unclear`` with ``wants_unsubscribe``.
- A cancellation ("ik moet mij helaas afmelden") is a ``decline`` with
  ``mentions_cancellation``.
- ``is_automatic`` is true for anything that must never be answered (RFC 3834, lists,
  daemons, empty Return-Path, and every bounce and auto-reply).
- ``message_id`` and ``references`` keep their angle brackets ("<id@host>"), as sent.

`understand` never raises: any failure inside gives ``unclear`` with a note.
"""

from __future__ import annotations

from collections.abc import Sequence

from workflows.event_config import SessionSpec
from workflows.understand.pipeline import read_message
from workflows.understand.strip import strip_reply
from workflows.understanding import PersonMention, ReplyKind, Understanding

__all__ = ["PersonMention", "ReplyKind", "Understanding", "strip_reply", "understand"]


def understand(
    raw: bytes,
    sessions: Sequence[SessionSpec],
    *,
    default_language: str = "nl",
    max_bytes: int = 10_000_000,
) -> Understanding:
    """Read one raw inbound message; never raises."""
    try:
        data = bytes(raw) if not isinstance(raw, bytes) else raw
    except Exception:
        data = str(raw).encode("utf-8", "replace")
    try:
        return read_message(data, sessions, default_language, max_bytes)
    except RecursionError:
        return Understanding(
            kind=ReplyKind.UNCLEAR,
            language=default_language,
            notes=("message structure too deeply nested to read",),
        )
    except Exception as exc:  # never let one message stop the inbox
        return Understanding(
            kind=ReplyKind.UNCLEAR,
            language=default_language,
            notes=(f"could not read message: {type(exc).__name__}: {str(exc)[:200]}",),
        )
