"""The bytes of a composed mail, exactly as the email package would write them, but quickly.

`compose.build_message()` builds an EmailMessage; for a batch of thousands of invitations its
header parsing, header folding and generator took most of the render time. The mails the
outbox stores have one of two fixed shapes:

    multipart/alternative (text/plain, text/html)
    multipart/mixed (multipart/alternative (text/plain, text/html, text/calendar), invite.ics)

so this module writes those shapes directly and asks the email package only for what is
not already known. It must produce the very same bytes (tests/test_mail_bytes.py compares
the two for every kind and for awkward names), which it gets by *reusing* the email
package's own pieces rather than re-implementing them:

* A header line is folded by the policy itself (`fold_binary` of the parsed header) and the
  result cached. Per-recipient headers would never hit that cache, so:
  - a header that carries the invitation token (Subject, Reply-To, List-Unsubscribe) is
    folded once per text-around-the-token: folding is the same for any token of the same
    length made of letters and digits (they are literal in every encoding the folder uses
    and never a place to break), so the token's characters are found by folding twice
    with two different fillers and are filled in per mail;
  - Date, Message-ID/In-Reply-To/References and a plain "Name <address>" are written
    directly when they are simple enough that folding cannot change them (short, ASCII,
    no character that needs quoting); anything else goes through the policy.
* Bodies are quoted-printable encoded by `email.quoprimime.body_encode`, one line at a time
  with a cache: it encodes each line on its own, and most lines of an invitation are the
  same for every invitee. Base64 uses the email package's own helper.
* Boundaries are drawn from `random` in the same order as the email generator does, so with
  the same seed both produce the same bytes (which is how the tests compare them).
"""

from __future__ import annotations

import random
import re
import sys
import threading
from collections.abc import Sequence
from email import quoprimime
from email.contentmanager import _encode_base64  # type: ignore[attr-defined]
from email.headerregistry import Address
from functools import lru_cache

from mail_templates.headers import SMTP_POLICY

POLICY = SMTP_POLICY
CRLF = "\r\n"
ICS_FILENAME = "invite.ics"
CALENDAR_METHOD = "REQUEST"
_MAX = POLICY.max_line_length or 78
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))
_BOUNDARY_FORMAT = f"%0{_BOUNDARY_DIGITS}d"  # as email.generator does

# What a line of each part starts with; the email package writes these the same every time.
_TEXT_HEADERS = (
    'Content-Type: text/plain; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
)
_HTML_HEADERS = (
    'Content-Type: text/html; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n\r\n"
)
_CALENDAR_HEADERS = (
    "Content-Transfer-Encoding: quoted-printable\r\n"
    f'Content-Type: text/calendar; charset="utf-8"; method="{CALENDAR_METHOD}"\r\n'
    "MIME-Version: 1.0\r\n\r\n"
)
_ICS_HEADERS = (
    "Content-Type: application/ics\r\nContent-Transfer-Encoding: base64\r\n"
    f'Content-Disposition: attachment; filename="{ICS_FILENAME}"\r\nMIME-Version: 1.0\r\n\r\n'
)

_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d\d:\d\d:\d\d [+-]\d{4}"
)
# A display name of words made of letters, digits, hyphens and apostrophes: nothing that
# str(Address) would quote and nothing the header parser would read as an encoded word.
_PLAIN_NAME_RE = re.compile(r"[A-Za-z0-9'-]+( [A-Za-z0-9'-]+)*")
_DOT_ATOM = r"[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*"
_PLAIN_ADDRESS_RE = re.compile(rf"{_DOT_ATOM}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to"})
_ID_HEADERS = frozenset({"message-id", "in-reply-to", "references"})
_MASK = "\x00"  # stands for the token in a cache key; cleaned header text never holds it


def serialize(
    headers: Sequence[tuple[str, str | Address]],
    lang: str,
    text: str,
    html: str,
    ics: bytes | None,
    *,
    token: str | None,
) -> bytes:
    """The whole message: `headers` in order, then MIME-Version, Content-Type, language."""
    # Parts in the order the email generator writes (and draws boundaries for) them.
    alternatives = [_TEXT_HEADERS + quoted_printable(text), _HTML_HEADERS + quoted_printable(html)]
    if ics is None:
        body, content_type = _multipart("alternative", alternatives)
    else:
        alternatives.append(_CALENDAR_HEADERS + quoted_printable(ics.decode("utf-8")))
        inner, inner_type = _multipart("alternative", alternatives)
        attachment = _ICS_HEADERS + _encode_base64(ics, _MAX).replace("\n", CRLF)
        body, content_type = _multipart("mixed", [inner_type + CRLF + inner, attachment])
    lines = [fold(name, value, token) for name, value in headers]
    lines.append(fold("MIME-Version", "1.0"))
    lines.append(content_type)
    lines.append(fold("Content-Language", lang))
    return ("".join(lines) + CRLF + body).encode("ascii")


def _multipart(subtype: str, parts: list[str]) -> tuple[str, str]:
    """(body, folded Content-Type line) of a multipart made of the written `parts`."""
    boundary = _boundary(CRLF.join(parts))
    body = f"--{boundary}{CRLF}" + f"{CRLF}--{boundary}{CRLF}".join(parts)
    body += f"{CRLF}--{boundary}--{CRLF}"
    digits = boundary[15 : 15 + _BOUNDARY_DIGITS]
    line = _fold_around(
        "Content-Type", f'multipart/{subtype}; boundary="{boundary}"', digits, ("0", "1")
    )
    return body, line


def _boundary(text: str) -> str:
    """email.generator.Generator._make_boundary, drawing from `random` the same way."""
    token = random.randrange(sys.maxsize)
    boundary = ("=" * 15) + (_BOUNDARY_FORMAT % token) + "=="
    candidate, counter = boundary, 0
    # The generator's test, `^--<b>(--)?$` over the parts' text, without compiling a
    # pattern for every random boundary.
    lines = f"\n{text}\n"
    while f"\n--{candidate}\n" in lines or f"\n--{candidate}--\n" in lines:
        candidate = f"{boundary}.{counter}"
        counter += 1
    return candidate


# ------------------------------------------------------------------------------- headers


def fold(name: str, value: str | Address, token: str | None = None) -> str:
    """The header line(s) the email package writes for `name: value`, CRLF included."""
    text = str(value)
    simple = _simple_line(name, text)
    if simple is not None:
        return simple
    if token and token in text:
        return _fold_around(name, text, token, ("a", "b"))
    return _exact(name, text)


def _simple_line(name: str, text: str) -> str | None:
    """The line for values folding cannot change, written without parsing; else None."""
    key = name.lower()
    if key in _ID_HEADERS:
        # Clean Message-IDs are never folded (headers.MessagePolicy); it says None otherwise.
        return POLICY._fold_ids(name, text)
    if len(name) + 2 + len(text) > _MAX:
        return None
    if key == "date" and _DATE_RE.fullmatch(text):
        return f"{name}: {text}{CRLF}"
    if key in _ADDRESS_HEADERS and _plain_mailbox(text):
        return f"{name}: {text}{CRLF}"
    return None


def _plain_mailbox(text: str) -> bool:
    """`address` or `Name <address>` with a plain name and a plain dot-atom address."""
    if _PLAIN_ADDRESS_RE.fullmatch(text):
        return True
    name, _, rest = text.partition(" <")
    return (
        rest.endswith(">")
        and _PLAIN_NAME_RE.fullmatch(name) is not None
        and _PLAIN_ADDRESS_RE.fullmatch(rest[:-1]) is not None
    )


@lru_cache(maxsize=4096)
def _exact(name: str, text: str) -> str:
    """What the generator writes for a header set to `text`: the policy folds it."""
    folded = POLICY.fold_binary(name, POLICY.header_factory(name, text))
    return folded.decode("ascii")


def _fold_around(name: str, text: str, secret: str, fillers: tuple[str, str]) -> str:
    """Fold `text` reusing the folding of the same text with other `secret`s.

    `secret` must be letters and digits only (like both `fillers`), so it is folded exactly
    as a same-length run of either filler would be.
    """
    if not secret.isascii() or not secret.isalnum():
        return _exact(name, text)
    masked = text.replace(secret, _MASK)
    layout = _layout(name, masked, len(secret), fillers)
    if layout is None:
        return _exact(name, text)
    folded, positions = layout
    chars = list(folded)
    for index, position in enumerate(positions):
        chars[position] = secret[index % len(secret)]
    return "".join(chars)


@lru_cache(maxsize=1024)
def _layout(
    name: str, masked: str, length: int, fillers: tuple[str, str]
) -> tuple[str, tuple[int, ...]] | None:
    """The folded line of `masked` and where the secret's characters land in it.

    Folds the text twice, with the secret filled in by each filler; where the two differ is
    where the secret goes. None when that is not clean (then the caller folds exactly).
    """
    first, second = (masked.replace(_MASK, filler * length) for filler in fillers)
    if any(filler * length in masked for filler in fillers):
        return None  # the filler also occurs outside the secret: positions would be ambiguous
    one, two = _exact(name, first), _exact(name, second)
    if len(one) != len(two):
        return None
    positions = tuple(i for i, (a, b) in enumerate(zip(one, two, strict=True)) if a != b)
    expected = masked.count(_MASK) * length
    if len(positions) != expected or any((one[i], two[i]) != fillers for i in positions):
        return None
    return one, positions


# --------------------------------------------------------------------------------- bodies

_qp_lock = threading.Lock()
_qp_lines: dict[bytes, str] = {}
_QP_CACHE_LINES = 20_000


def quoted_printable(text: str) -> str:
    """The quoted-printable body the email package writes for `text`, CRLF line ends.

    Same steps as email.contentmanager's text encoding (UTF-8, split into lines, each
    encoded by quoprimime.body_encode at the policy's line length), a line at a time.
    """
    encoded = []
    cache = _qp_lines
    for line in text.encode("utf-8").splitlines():
        done = cache.get(line)
        if done is None:
            done = _qp_line(line)
            with _qp_lock:
                if len(cache) >= _QP_CACHE_LINES:
                    cache.clear()
                cache[line] = done
        encoded.append(done)
    return CRLF.join(encoded) + CRLF


def _qp_line(line: bytes) -> str:
    # body_encode treats every line on its own; "\n" ends this one like in the whole body.
    encoded = quoprimime.body_encode(line.decode("latin-1") + "\n", _MAX)
    return encoded[:-1].replace("\n", CRLF)
