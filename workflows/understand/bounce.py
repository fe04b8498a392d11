"""Delivery failures: which addresses bounced, and whether for good.

Three readers, most reliable first:
1. our own reading of RFC 3464 delivery-status parts (Action + Status per recipient), because
   it tells a "delayed" warning from a real failure;
2. flufl.bounce's detectors for the many non-standard formats (it also splits temporary and
   permanent failures);
3. a last heuristic for what both miss (qmail-style text, Dutch Exchange "Onbestelbaar"),
   only when the message already looks like a bounce.

None of them runs unless the message looks like a bounce (`looks_like_bounce`), and a bounce
is written by a machine. Certain by themselves: a multipart/report delivery report, a daemon
sender (MAILER-DAEMON, postmaster, "<>"), a delivery-status part of the message's own. Words
("Undeliverable", "User unknown", "Onbestelbaar") count only in a message that is otherwise
machine-sent (`machine_sent`: RFC 3834 / list / no-reply / empty Return-Path signs, Exim's
X-Failed-Recipients, Exchange's X-MS-Exchange-Message-Is-Ndr, a "Mail Delivery" From). A person
who answers or forwards a bounce, or one of our "E-mail niet afgeleverd" notices, quotes those
words with their own ("Dank, het juiste adres is …"): reading that as a bounce would drop the
person's message unseen and mark the new address as bounced. So a person's message is a bounce
only when it passes one on without a word of its own ("Fwd: Returned mail" with "FYI" above a
forwarded MAILER-DAEMON message, or a DSN attached with nothing said); a reply ("RE: …") never
is. What is left goes on to be read as a reply, and at worst a human reads it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

from workflows.understand import automatic, mime, strip
from workflows.understand import subject as subject_line


class _QuietDetectorFailures(logging.Filter):
    """flufl.bounce logs a full traceback at ERROR whenever one of its detectors trips over
    a message it does not understand ("Exception in detector: …"), which hostile or merely
    odd mail does all the time; we then read the message ourselves (`_read_text`). Keep the
    line, at DEBUG and without the traceback. Only that logger, only that message: every
    other record (and every error of our own) passes untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Exception in detector"):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info, record.exc_text = None, None
        # The logger's level check ran before the demotion; repeat it for DEBUG.
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_FLUFL_LOG = logging.getLogger("flufl.bounce")
if not any(isinstance(f, _QuietDetectorFailures) for f in _FLUFL_LOG.filters):
    _FLUFL_LOG.addFilter(_QuietDetectorFailures())

_BOUNCE_SUBJECT_RE = re.compile(
    r"undeliver(?:able|ed)|returned\s+mail|return(?:ed)?\s+to\s+sender|delivery\s+(?:status\s+"
    r"notification|failure|failed|has\s+failed|problem|report|notification)|failure\s+notice|"
    r"mail\s+delivery\s+(?:failed|failure|system)|non-?deliver|could\s+not\s+be\s+delivered|"
    r"not\s+delivered|mail\s+system\s+error|message\s+(?:not\s+delivered|delayed|rejected)|"
    r"warning:\s+could\s+not\s+send|delayed\s+mail|mail\s+failure|returned\s+message|"
    r"onbestelbaar|niet\s+bezorgd|kan\s+niet\s+worden\s+bezorgd|bezorging\s+(?:is\s+)?mislukt|"
    r"niet\s+afgeleverd|vertraagd|unzustellbar|nicht\s+zustellbar|non\s+remis|"
    r"delivery\s+delayed|rejected|nondeliverable|bounce",
    re.IGNORECASE,
)
_BOUNCE_SENDER_RE = re.compile(
    r"^(?:mailer-daemon|mailer_daemon|postmaster|mail-daemon|mdaemon|bounce[s]?|"
    r"microsoftexchange[0-9a-f]*|mail\.?delivery)@",
    re.IGNORECASE,
)
_BOUNCE_BODY_RE = re.compile(
    r"(?:could\s+not|couldn't|was\s+not|wasn't|cannot|can't|unable\s+to)\s+(?:be\s+)?deliver|"
    r"delivery\s+(?:has\s+)?failed|permanent\s+(?:error|failure)|user\s+unknown|"
    r"no\s+such\s+(?:user|mailbox)|mailbox\s+(?:unavailable|not\s+found|full|is\s+full)|"
    r"recipient\s+(?:address\s+)?rejected|address\s+rejected|"
    r"kan\s+niet\s+worden\s+bezorgd|kon\s+niet\s+worden\s+bezorgd|is\s+niet\s+bezorgd|"
    r"levering\s+is\s+mislukt|bezorging\s+(?:is\s+)?mislukt|onbestelbaar|niet\s+afgeleverd|"
    r"nicht\s+zugestellt|unzustellbar",
    re.IGNORECASE,
)
_TEMPORARY_RE = re.compile(
    r"\bdelayed\b|\bdelay\b|will\s+(?:continue\s+to\s+|be\s+)?retr(?:y|ied)|still\s+trying|"
    r"not\s+yet\s+been\s+delivered|has\s+not\s+yet|temporar(?:y|ily)|vertraagd|"
    r"nog\s+niet\s+(?:bezorgd|afgeleverd)|opnieuw\s+proberen|warning:",
    re.IGNORECASE,
)
# Where the returned original starts in a plain-text bounce.
_ORIGINAL_RE = re.compile(
    r"^(?:-{2,}.*(?:copy|original|below|oorspronkelijk|headers).*|.*below\s+this\s+line.*|"
    r"original\s+message\s+headers:?|return-path:.*|received:.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_LOCAL_CHARS = r"[\w.!#$%&'*+/=?^`{|}~-]"
# Linear by construction: an address starts only where a run of local-part characters starts
# (the lookbehind), and its parts are bounded (RFC 5321: 64 for the local part, 63 a label).
# The old `[…]+@` tried every position of a long run of letters and scanned each to the run's
# end looking for an "@": quadratic, 0.8 s on a 20 KB run.
_ADDRESS_RE = re.compile(
    rf"(?<!{_LOCAL_CHARS}){_LOCAL_CHARS}{{1,64}}@[\w-]{{1,63}}(?:\.[\w-]{{1,63}}){{1,10}}(?![\w-])",
    re.UNICODE,
)


@dataclass(frozen=True)
class BounceResult:
    recipients: tuple[str, ...]
    permanent: bool
    reason: str
    delivered_only: bool = False  # a DSN that reports success: not a failure at all


def looks_like_bounce(
    msg: Message, subject: str, sender: str | None, own_text: Callable[[], str]
) -> bool:
    """`own_text` is asked for only when a header or the subject already points at a bounce:
    turning every part (HTML too) into text costs more than all the header checks together."""
    if _is_delivery_report(msg):
        return True
    if sender and _BOUNCE_SENDER_RE.match(sender):
        return True
    if _daemon_from(mime.header(msg, "From")):
        return True
    machine = machine_sent(msg)
    dsn_parts = [
        attached
        for p, _, attached in mime.walk(msg)
        if mime.content_type(p) == "message/delivery-status"
    ]
    if dsn_parts and (machine or not all(dsn_parts)):
        return True
    if not machine:
        # A person wrote this. Their quote of a bounce or of our notice about one is no
        # bounce; only passing one on without a word of their own is.
        return _passes_on_bounce(subject, own_text, attached_dsn=bool(dsn_parts))
    if _BOUNCE_SUBJECT_RE.search(subject or "") and _BOUNCE_BODY_RE.search(own_text()[:5000]):
        return True
    from_header = mime.header(msg, "From").lower()
    if "mail delivery" in from_header and _BOUNCE_BODY_RE.search(own_text()[:5000]):
        return True
    return _empty_return_path(msg) and bool(
        _BOUNCE_SUBJECT_RE.search(subject or "") or _BOUNCE_BODY_RE.search(own_text()[:5000])
    )


# Headers only mail servers put on a delivery failure (Exim, Exchange).
_NDR_HEADERS = ("X-Failed-Recipients", "X-MS-Exchange-Message-Is-Ndr")


def machine_sent(msg: Message) -> bool:
    """Signs that a program, not a person, sent this message: RFC 3834 and list headers, a
    daemon or no-reply sender, an empty Return-Path (automatic.never_answer), a mail server's
    delivery-failure header, or a "Mail Delivery …" From."""
    if automatic.never_answer(msg):
        return True
    if any(msg.get(name) is not None for name in _NDR_HEADERS):  # (its value may be empty)
        return True
    return "mail delivery" in mime.header(msg, "From").lower()


# What people type above a message they only pass on: "FYI", "Zie hieronder", "Forward the
# message", a greeting, thanks; and a name on its own line. Anything else is their own word.
_PASS_ON_RE = re.compile(
    r"(?:fyi|f\.y\.i\.?|ter\s+info(?:rmatie)?|ter\s+kennisname|ter\s+attentie|"
    r"zie\s+(?:hier)?(?:onder|beneden)|see\s+below|below|hieronder|"
    r"(?:i\s+)?forward(?:ed|ing)?(?:\s+(?:the|this)\s+(?:message|mail|e-?mail))?|"
    r"doorgestuurd(?:\s+bericht)?|stuur\s+ik\s+(?:even\s+)?door|"
    r"hoi|hi|hallo|hello|beste|dear|groet(?:en|jes)?|regards|dank(?:je(?:wel)?)?|bedankt|"
    r"thanks|thank\s+you)",
    re.IGNORECASE,
)
_NAME_LINE_RE = re.compile(r"^(?:[A-ZÀ-Þ][\w'’.-]*\s*){1,4}$")


def _says_nothing_own(text: str) -> bool:
    """No word of the sender's own beyond passing something on ("FYI", "Zie onder. Jan")."""
    for line in text.splitlines():
        rest = _PASS_ON_RE.sub(" ", line)
        rest = re.sub(r"[\s.,:;!-]+", " ", rest).strip()
        if rest and not (len(line) <= 40 and _NAME_LINE_RE.match(rest)):
            return False
    return True


# The From line of a forwarded message's header block ("> From: MAILER-DAEMON", "Van: …").
_FORWARDED_FROM_RE = re.compile(
    r"^[ \t>]*\*?(?:from|van|von|de)\s*:\*?[ \t]*(?P<value>.+)$", re.IGNORECASE | re.MULTILINE
)


def _passes_on_bounce(subject: str, own_text: Callable[[], str], *, attached_dsn: bool) -> bool:
    """A person's message that forwards a bounce and says nothing itself: "Fwd: Returned
    mail" with a MAILER-DAEMON message below "Forward the message.", or a DSN attached. A reply
    ("RE: Undeliverable …") is an answer to it, never the bounce."""
    forward = subject_line.is_forward(subject)
    if not forward and subject_line.strip_prefixes(subject) != (subject or "").strip():
        return False  # "RE: …", "Antw: …": the person answers
    if not (forward or attached_dsn or _BOUNCE_SUBJECT_RE.search(subject or "")):
        return False  # (most replies stop here, before their text is made)
    text = own_text()[:20_000]
    if not _says_nothing_own(strip.strip_reply(text)):
        return False
    if attached_dsn:
        return True
    passed_on = strip.forwarded_part(text, forward_subject=forward)
    if passed_on is None:
        return False
    head = passed_on[:1500]
    from_line = _FORWARDED_FROM_RE.search(head)
    if from_line is None:
        return False
    value = from_line.group("value").strip()
    addrs = addresses_in(value)
    daemon = _daemon_from(value) or any(_BOUNCE_SENDER_RE.match(a) for a in addrs)
    return daemon and bool(_BOUNCE_BODY_RE.search(passed_on[:5000]))


def detect_bounce(
    msg: Message, subject: str, sender: str | None, own_text: Callable[[], str]
) -> BounceResult | None:
    """A BounceResult when the message is a delivery failure (or a DSN), else None.

    `own_text()` is the message's own text (attached originals left out); it is called lazily
    and at most a few times, so the caller should cache it."""
    if not looks_like_bounce(msg, subject, sender, own_text):
        return None
    dsn = _read_dsn(msg)
    if dsn is not None:
        return dsn
    flufl = _read_flufl(msg)
    if flufl is not None:
        return flufl
    return _read_text(msg, subject, own_text())


def _daemon_from(value: str) -> bool:
    """ "MAILER-DAEMON <>", "<>", "Mail Delivery Subsystem <MAILER-DAEMON>": no usable address."""
    low = value.strip().lower()
    return (low in ("<>", "") and bool(value)) or bool(
        re.search(r"mailer-daemon|mail\s+delivery\s+(?:subsystem|system)|postmaster", low)
    )


def _is_delivery_report(msg: Message) -> bool:
    if mime.content_type(msg) != "multipart/report":
        return False
    try:
        report_type = (msg.get_param("report-type") or "").lower()  # type: ignore[union-attr]
    except Exception:
        report_type = ""
    return report_type in ("delivery-status", "") or any(
        mime.content_type(p) == "message/delivery-status" for p, _, _ in mime.walk(msg)
    )


def _empty_return_path(msg: Message) -> bool:
    return any(v.strip() in ("<>", "") for v in mime.all_headers(msg, "Return-Path"))


def _read_dsn(msg: Message) -> BounceResult | None:
    """RFC 3464: one per-recipient block per address with Action and Status."""
    failed: list[str] = []
    permanent = False
    saw_block = False
    for part, _depth, _attached in mime.walk(msg):
        if mime.content_type(part) != "message/delivery-status":
            continue
        for block in _dsn_blocks(part):
            recipient = _dsn_recipient(block)
            action = block.get("action", "").strip().lower()
            status = block.get("status", "").strip()
            if not recipient or not action:
                continue
            saw_block = True
            if action == "failed":
                failed.append(recipient)
                if not status.startswith("4"):
                    permanent = True
            elif action == "delayed":
                failed.append(recipient)
    if failed:
        kind = "permanent" if permanent else "temporary"
        return BounceResult(tuple(dict.fromkeys(failed)), permanent, f"DSN ({kind})")
    if saw_block:
        return BounceResult((), False, "DSN reports delivery, not a failure", delivered_only=True)
    return None


def _dsn_blocks(part: Message) -> list[dict[str, str]]:
    """The header blocks of a message/delivery-status part, however the parser stored them."""
    try:
        payload = part.get_payload()
    except Exception:
        return []
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                blocks.append({k.lower(): mime.decode_header_value(v) for k, v in sub.items()})
        return blocks
    text = payload if isinstance(payload, str) else ""
    for chunk in re.split(r"\r?\n\s*\r?\n", text):
        block: dict[str, str] = {}
        key = ""
        for line in chunk.splitlines():
            if line[:1] in (" ", "\t") and key:  # a folded field goes on
                block[key] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip().lower()
                block[key] = value.strip()
        blocks.append(block)
    return blocks


def _dsn_recipient(block: dict[str, str]) -> str | None:
    found = _dsn_recipients(block)
    return found[0] if found else None


def _dsn_recipients(block: dict[str, str]) -> list[str]:
    """The block's Original- and Final-Recipient addresses, in that order."""
    found: list[str] = []
    for key in ("original-recipient", "final-recipient"):
        _, _, addr = block.get(key, "").rpartition(";")
        addr = addr.strip().strip("<>").lower()
        if "@" in addr:
            found.append(addr)
    return found


def _read_flufl(msg: Message) -> BounceResult | None:
    try:
        temporary, permanent = all_failures(msg)
    except Exception:
        return None
    perm = sorted(_as_text(a) for a in permanent)
    temp = sorted(_as_text(a) for a in temporary if a not in permanent)
    recipients = tuple(a for a in dict.fromkeys(perm + temp) if "@" in a)
    if not recipients:
        return None
    return BounceResult(recipients, bool(perm), "flufl.bounce")


def _as_text(addr: bytes | str) -> str:
    text = addr.decode("utf-8", "replace") if isinstance(addr, bytes) else addr
    return text.strip().strip("<>").lower()


def addresses_in(text: str) -> list[str]:
    """Mail addresses in `text`, in order; no "@", no regex scan at all."""
    if "@" not in text:
        return []
    return _ADDRESS_RE.findall(text)


def _read_text(msg: Message, subject: str, body: str) -> BounceResult:
    """Plain-text bounces: addresses named before the returned original, if any."""
    head = body[:20_000]
    m = _ORIGINAL_RE.search(head)
    if m and m.start() > 0:
        head = head[: m.start()]
    own = {mime.address(msg, "From") or "", mime.address(msg, "To") or ""}
    recipients = [
        a.lower().rstrip(".")
        for a in addresses_in(head)
        if a.lower() not in own and not _BOUNCE_SENDER_RE.match(a)
    ]
    temporary = bool(_TEMPORARY_RE.search(subject or "") or _TEMPORARY_RE.search(head))
    permanent_code = re.search(r"\b5\.\d{1,3}\.\d{1,3}\b|\b55\d\b", head)
    permanent = bool(permanent_code) or not temporary
    return BounceResult(tuple(dict.fromkeys(recipients)), permanent, "bounce text")


# -- what the server said, for the organiser's notice ----------------------------------

# An SMTP reply code ("550") or enhanced status code ("5.1.1") in a line of bounce text.
_SMTP_CODE_RE = re.compile(r"\b[45]\d\d\b|\b[45]\.\d{1,3}\.\d{1,3}\b")
# Amazon SES puts the receiving server's reply in the JSON of its notice.
_SES_DIAGNOSTIC_RE = re.compile(r'"diagnosticCode"\s*:\s*"((?:[^"\\]|\\.){1,2000})"')


def server_diagnostic(raw: bytes | None, address: str, *, limit: int) -> str:
    """What the receiving mail server said about `address` in a bounce, on one line of at
    most `limit` characters ("550 5.1.1 <…>: Recipient address rejected: User
    unknown"); "" when the bounce does not say.

    Read in order: the Diagnostic-Code of the DSN block for `address` (RFC 3464; the
    bounce's own report before one in a forwarded bounce), an Amazon SES notice's
    diagnosticCode, then the line of the bounce's own text (never the returned original) that
    names the address with an SMTP code, else the first line with a code.
    """
    if not raw:
        return ""
    if mime.too_many_boundaries(bytes(raw)):
        return ""
    try:
        found = _diagnostic_in(mime.parse(bytes(raw)), address.lower())
    except Exception:  # a bounce we cannot read again is still a bounce
        return ""
    text = " ".join(found.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _diagnostic_in(msg: Message, address: str) -> str:
    # The bounce's own report first, then one inside an attached message (a person who
    # forwards a bounce as an attachment).
    parts = [
        (attached, part)
        for part, _depth, attached in mime.walk(msg)
        if mime.content_type(part) == "message/delivery-status"
    ]
    blocks = [
        block
        for _attached, part in sorted(parts, key=lambda p: p[0])
        for block in _dsn_blocks(part)
    ]
    codes = [(_dsn_recipients(b), _without_type(b.get("diagnostic-code", ""))) for b in blocks]
    codes = [(who, code) for who, code in codes if code]
    for who, code in codes:
        if address in who:
            return code
    if len(codes) == 1:
        return codes[0][1]
    text = mime.all_text(msg, include_attached=False)
    ses = _SES_DIAGNOSTIC_RE.search(text)
    if ses:
        return _without_type(ses.group(1).replace('\\"', '"'))
    lines = [line.strip() for line in text.splitlines() if _SMTP_CODE_RE.search(line)]
    lines = [line for line in lines if not re.match(r"(?i)(status|action|x-[\w-]+):", line)]
    named = [line for line in lines if address and address in line.lower()]
    best = (named or lines or [""])[0]
    # "<k.smit@…>: 550 5.1.1 …" (Postfix): the address in front adds nothing.
    prefix = f"<{address}>:"
    return best[len(prefix) :].strip() if best.lower().startswith(prefix) else best


def _without_type(code: str) -> str:
    """ "smtp; 550 5.1.1 …" → "550 5.1.1 …" (the diagnostic type says nothing to a reader)."""
    kind, sep, rest = code.partition(";")
    if sep and re.fullmatch(r"\s*[\w-]{1,20}\s*", kind):
        return rest.strip()
    return code.strip()
