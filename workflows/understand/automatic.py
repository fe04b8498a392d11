"""Messages written by a machine: out-of-office answers and mail that must never be answered.

Two questions, kept apart on purpose:
- `never_answer(msg)`: RFC 3834 says an automatic message must not trigger another one, so
  any Auto-Submitted/bulk/list/daemon sign makes `is_automatic` true, whatever the kind.
- `header_reason(msg)`, `text_reason(subject, body)`: is this an out-of-office style answer
  (kind auto_reply)? Headers first; without headers (many Exchange and webmail set-ups send
  none) the subject and the first lines of the body decide, in Dutch and English; the body
  only above a quoted or forwarded message, whose words are someone else's.
"""

from __future__ import annotations

import re
from email.message import Message

from workflows.understand import mime, strip

_DAEMON_RE = re.compile(
    r"^(?:mailer-daemon|mailer_daemon|postmaster|no-?reply|do-?not-?reply|donotreply|"
    r"bounces?|mail-?daemon|automailer|autoreply|auto-reply|noreply-[\w.-]+)(?:[+@])",
    re.IGNORECASE,
)

_AUTO_SUBJECT_RE = re.compile(
    r"^\s*(?:(?:re|aw|antw|fw|fwd)\s*:\s*)*(?:"
    r"automatisch\s+antwoord|automatisch\s+bericht|automatische\s+reactie|automatic\s+reply|"
    r"auto(?:matic)?[-\s]?reply|autoreply|auto\s*:|out\s+of\s+(?:the\s+)?office|"
    r"out-of-office|ooo\b|afwezig|afwezigheid|niet\s+aanwezig|niet\s+op\s+kantoor|"
    r"vakantie|abwesenheitsnotiz|abwesend|réponse\s+automatique|absence|away\s+from|"
    r"on\s+leave|on\s+vacation|on\s+holiday|autosvar|respuesta\s+automática"
    r")",
    re.IGNORECASE,
)

# Body phrases that only an out-of-office message uses. "niet aanwezig" alone is not enough:
# "ik ben helaas niet aanwezig op 1 februari" is a human decline; the auto-reply form has a
# date range or a "back on" clause.
_AUTO_BODY_RE = re.compile(
    r"automatisch\s+(?:antwoord|gegenereerd|bericht|verzonden)|dit\s+is\s+een\s+automatisch|"
    r"afwezigheidsbericht|out[\s-]of[\s-](?:the\s+)?office|automatic\s+reply|auto-?reply|"
    r"this\s+is\s+an\s+automat(?:ic|ed)|i\s+am\s+(?:currently\s+)?(?:out\s+of|away\s+from)\s+"
    r"(?:the\s+)?office|i\s+am\s+(?:currently\s+)?(?:away|on\s+(?:leave|holiday|vacation))|"
    r"i\s+will\s+be\s+back\s+(?:on|in\s+the\s+office)|i\s+will\s+return\s+on|"
    r"(?:with\s+)?(?:limited|no)\s+access\s+to\s+(?:my\s+)?e-?mail|"
    r"ik\s+ben\s+(?:momenteel\s+|op\s+dit\s+moment\s+|vandaag\s+)?afwezig|"
    r"ik\s+ben\s+(?:van\s+|vanaf\s+)?[\w\s./-]{0,40}?\s*(?:tot\s+en\s+met|t/m|tot)\s+[\w\s./-]{1,30}?"
    r"\s*(?:afwezig|niet\s+aanwezig|niet\s+bereikbaar|met\s+vakantie|op\s+vakantie|vrij)|"
    r"(?:afwezig|niet\s+aanwezig|niet\s+bereikbaar)\s+(?:tot\s+en\s+met|t/m|tot|van|vanaf)\s+\w|"
    r"ik\s+ben\s+(?:weer|vanaf\s+\S+\s+weer)\s+(?:aanwezig|bereikbaar|op\s+kantoor|terug)|"
    r"ben\s+ik\s+weer\s+(?:aanwezig|bereikbaar|op\s+kantoor)|"
    r"beperkt\s+bereikbaar|(?:uw|je)\s+(?:e-?mail|bericht)\s+wordt\s+(?:niet\s+)?doorgestuurd|"
    r"(?:uw|je)\s+(?:e-?mail|bericht)\s+(?:wordt|zal)\s+(?:na\s+mijn\s+terugkeer|niet)\s+\w+|"
    r"ik\s+lees\s+(?:mijn\s+)?(?:e-?mail|mail)\s+(?:niet|beperkt)|"
    r"bij\s+dringende\s+zaken|for\s+urgent\s+matters|in\s+urgent\s+cases",
    re.IGNORECASE,
)


def never_answer(msg: Message) -> bool:
    """RFC 3834 and list/daemon signs: this message must not get an automatic answer."""
    auto = mime.header(msg, "Auto-Submitted").strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if mime.header(msg, "X-Autoreply") or mime.header(msg, "X-Autorespond"):
        return True
    precedence = mime.header(msg, "Precedence").strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply", "auto-reply"):
        return True
    if mime.header(msg, "List-Id") or mime.header(msg, "List-Unsubscribe-Post"):
        return True
    if empty_return_path(msg):
        return True
    if mime.header(msg, "X-MS-Exchange-Inbox-Rules-Loop"):
        return True
    sender = mime.address(msg, "From") or ""
    return bool(_DAEMON_RE.match(sender))


def empty_return_path(msg: Message) -> bool:
    values = mime.all_headers(msg, "Return-Path")
    return any(v.strip() in ("<>", "") for v in values) and bool(values)


def header_reason(msg: Message) -> str | None:
    """Why the headers say this is an automatic answer, or None."""
    auto = mime.header(msg, "Auto-Submitted").strip().lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if mime.header(msg, name):
            return f"{name} header"
    precedence = mime.header(msg, "Precedence").strip().lower()
    if precedence in ("auto_reply", "auto-reply"):
        return f"Precedence: {precedence}"
    if mime.header(msg, "X-MS-Exchange-Inbox-Rules-Loop"):
        return "Exchange inbox-rule loop header"
    if empty_return_path(msg):
        return "empty Return-Path"
    return None


def text_reason(subject: str, body: str) -> str | None:
    """Why the subject or the opening of the body reads as an out-of-office message."""
    if _AUTO_SUBJECT_RE.match(subject or ""):
        return f"subject reads as automatic: {subject[:60]!r}"
    head = _above_quote((body or "")[:1500])
    m = _AUTO_BODY_RE.search(head)
    if m:
        return f"body reads as out-of-office: {m.group(0)[:60]!r}"
    return None


def _above_quote(text: str) -> str:
    """`text` above a quoted or forwarded message ("> …", "Op … schreef …:", "Van:/Verzonden:"):
    a person's empty reply to a bounce notice quotes "This is an automatically generated
    Delivery Status Notification", which is not theirs."""
    quoted = strip.forwarded_part(text, forward_subject=True)
    if not quoted:
        return text
    first = quoted.split("\n", 1)[0].strip()
    at = text.find(first) if first else -1
    return text[:at] if at >= 0 else text
