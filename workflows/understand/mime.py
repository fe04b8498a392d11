"""Safe reading of a raw message: parse, walk, decode, headers, HTML → text.

Everything here must survive hostile or broken input (bad charsets, truncated base64, deeply
nested multiparts), because one unreadable reply must never stop the inbox from being read.
Decoding problems are replaced, never raised.
"""

from __future__ import annotations

import codecs
import email
import email.header
import email.parser
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses, parseaddr
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any
from weakref import WeakKeyDictionary

# Bounds that keep a pathological message cheap to read.
MAX_DEPTH = 20
MAX_PARTS = 200
MAX_TEXT_CHARS = 200_000  # of body text kept per part; replies are short
HEADER_SCAN_BYTES = 256_000  # how much of an oversized message we read for its headers
# The stdlib parser pushes every body line through one generator per open multipart level, so
# its cost is lines × nesting; more boundaries than this is no reply a person wrote.
MAX_BOUNDARIES = 50
# Decoded bytes needed for MAX_TEXT_CHARS characters (UTF-8 takes at most 4 bytes a character).
MAX_TEXT_BYTES = MAX_TEXT_CHARS * 4

# Charsets that mail clients declare but do not mean: Outlook writes windows-1252 bytes under
# an iso-8859-1 label, and a few clients send made-up names.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "unknown-8bit": "cp1252",
    "x-unknown": "cp1252",
    "utf8": "utf-8",
}


def parse(raw: bytes) -> Message:
    """Parse bytes into a compat32 Message (the API flufl.bounce expects)."""
    # compat32 keeps headers as raw strings: no lazy header parsing that could raise later.
    return email.message_from_bytes(raw, policy=email.policy.compat32)


_BOUNDARY_PARAM_RE = re.compile(rb"boundary\s*=", re.IGNORECASE)


def too_many_boundaries(raw: bytes) -> bool:
    """Whether the parser would have to track more multipart levels than a reply has
    (counted over the raw bytes, in any letter case, stopping once past the limit)."""
    found = _BOUNDARY_PARAM_RE.finditer(raw)
    return any(seen > MAX_BOUNDARIES for seen, _ in enumerate(found, 1))


def parse_headers_only(raw: bytes) -> Message:
    """The headers of a message too large to parse whole."""
    head = raw[:HEADER_SCAN_BYTES]
    end = re.search(rb"\r?\n\r?\n", head)
    if end:
        head = head[: end.start()]
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    return parser.parsebytes(head + b"\n\n")


# --- per-message memos -----------------------------------------------------------------------
#
# One reading asks the same message for the same headers, parts and content types many times
# (envelope, auto-reply signs, bounce signs, calendar, token), and the stdlib answers every
# `get` by scanning all headers again. A parsed message is never changed while it is read, so
# each answer is worked out once per message. The memo is keyed weakly: it lives exactly as
# long as its message.


@dataclass
class _Memo:
    raw_headers: dict[str, list[tuple[str, Any]]]
    first_header: dict[str, str] = field(default_factory=dict)
    every_header: dict[str, list[str]] = field(default_factory=dict)
    single_address: dict[str, str | None] = field(default_factory=dict)
    content_type: str | None = None
    parts: list[tuple[Message, int, bool]] | None = None


_MEMOS: WeakKeyDictionary[Message, _Memo] = WeakKeyDictionary()


def _memo(msg: Message) -> _Memo:
    memo = _MEMOS.get(msg)
    if memo is None:
        index: dict[str, list[tuple[str, Any]]] = {}
        for key, value in msg.raw_items():
            index.setdefault(key.lower(), []).append((key, value))
        memo = _Memo(index)
        _MEMOS[msg] = memo
    return memo


def _header_values(msg: Message, name: str) -> list[Any]:
    """What `msg.get_all(name)` gives (values as the policy hands them out, in order), or []."""
    pairs = _memo(msg).raw_headers.get(name.lower(), [])
    return [msg.policy.header_fetch_parse(key, value) for key, value in pairs]


def header(msg: Message, name: str) -> str:
    """One header (the first of that name), RFC 2047-decoded, unfolded; "" when missing or
    unreadable."""
    try:
        memo = _memo(msg)
        key = name.lower()
        known = memo.first_header.get(key)
        if known is not None:
            return known
        pairs = memo.raw_headers.get(key)
        value = msg.policy.header_fetch_parse(*pairs[0]) if pairs else None
    except Exception:
        return ""
    text = decode_header_value(value)
    memo.first_header[key] = text
    return text


def all_headers(msg: Message, name: str) -> list[str]:
    try:
        memo = _memo(msg)
        key = name.lower()
        known = memo.every_header.get(key)
        if known is not None:
            return list(known)
        values = _header_values(msg, name)
    except Exception:
        return []
    texts = [decode_header_value(v) for v in values]
    memo.every_header[key] = texts
    return list(texts)


def decode_header_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        value = _raw_header_text(value)
    text = _undo_surrogates(str(value))
    if "=?" not in text:
        return _unfold(text)
    try:
        chunks = email.header.decode_header(text)
    except Exception:
        return _unfold(text)
    try:
        return _unfold(str(email.header.make_header(chunks)))
    except Exception:
        pass
    out: list[str] = []
    for chunk, charset in chunks:
        out.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return _unfold(" ".join(out))


def _raw_header_text(value: email.header.Header) -> str:
    """compat32 hands over raw 8-bit header bytes as a Header of charset "unknown-8bit";
    str() of it would turn every such byte into U+FFFD. Such bytes are UTF-8 nowadays
    (RFC 6532), else most likely cp1252."""
    try:
        chunks = email.header.decode_header(value)
    except Exception:
        return str(value)
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            declared = None if (charset or "").lower() == "unknown-8bit" else charset
            out.append(decode_bytes(chunk, declared))
        else:
            out.append(chunk)
    return "".join(out)


_SURROGATE_RE = re.compile("[\udc80-\udcff]")


def _undo_surrogates(text: str) -> str:
    """Raw 8-bit header bytes (RFC 6532 UTF-8 headers, or a client that did not encode) reach
    us as surrogate escapes; decode them as the bytes they were."""
    if not _SURROGATE_RE.search(text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8")


def _unfold(text: str) -> str:
    r"""Line breaks (and the white space around them) become one space.

    Split and strip, not a regex: ``\s*\r?\n`` backtracks over every run of spaces without
    a line break, which is quadratic on a hostile 50 KB header.
    """
    if "\n" not in text:
        return text.strip()
    return " ".join(piece for piece in (ln.strip() for ln in text.split("\n")) if piece)


def address(msg: Message, name: str) -> str | None:
    """The lowercased address in a single-address header (From, Sender, Return-Path)."""
    known = _memo(msg).single_address
    key = name.lower()
    if key not in known:
        known[key] = _single_address(header(msg, name))
    return known[key]


def _single_address(value: str) -> str | None:
    if not value:
        return None
    _, addr = parseaddr(value)
    addr = addr.strip().strip("<>").lower()
    return addr if "@" in addr else None


def addresses(msg: Message, *names: str) -> list[str]:
    values: list[str] = []
    for name in names:
        values.extend(all_headers(msg, name))
    try:
        pairs = getaddresses(values)
    except Exception:
        return []
    return [a.lower() for _, a in pairs if "@" in a]


def message_ids(value: str) -> list[str]:
    """Message ids as written in In-Reply-To / References, angle brackets kept."""
    ids = re.findall(r"<[^<>\s]+>", value)
    if not ids and value.strip() and " " not in value.strip():
        ids = [f"<{value.strip().strip('<>')}>"]
    return ids


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, falling back to UTF-8 then cp1252; never raise."""
    name = (charset or "").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    candidates = [name] if name else []
    candidates += ["utf-8", "cp1252"]
    for cand in candidates:
        try:
            codecs.lookup(cand)
        except LookupError:
            continue
        try:
            return data.decode(cand)
        except (UnicodeDecodeError, ValueError, LookupError):
            # LookupError: a binary codec used as a charset ("base64", "zlib", "rot13")
            # passes codecs.lookup but is not a text encoding.
            continue
    return data.decode("utf-8", errors="replace")


def walk(msg: Message) -> Iterator[tuple[Message, int, bool]]:
    """Parts depth-first as (part, depth, inside_attached_message), bounded in depth and count.

    `inside_attached_message` is true below a message/rfc822 part (or another message/* part
    named as a saved mail): a forwarded or returned original, not what the sender wrote now.
    """
    memo = _memo(msg)
    if memo.parts is None:
        memo.parts = list(_walk(msg))
    return iter(memo.parts)


def _walk(msg: Message) -> Iterator[tuple[Message, int, bool]]:
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth, attached = stack.pop()
        seen += 1
        yield part, depth, attached
        if depth >= MAX_DEPTH:
            continue
        try:
            payload = part.get_payload()
        except Exception:
            continue
        if not isinstance(payload, list):
            continue
        ctype = content_type(part)
        below_attached = attached or ctype == "message/rfc822"
        if not below_attached and ctype.startswith("message/") and is_mail_file(part):
            below_attached = True  # a saved mail under another message/* label ("x.eml")
        children = [p for p in payload if isinstance(p, Message)]
        for child in reversed(children[:MAX_PARTS]):
            stack.append((child, depth + 1, below_attached))


def content_type(part: Message) -> str:
    memo = _memo(part)
    if memo.content_type is None:
        try:
            memo.content_type = part.get_content_type().lower()
        except Exception:
            memo.content_type = "text/plain"
    return memo.content_type


# A part under one of these names is a mail saved as a file (an attached .eml, an Outlook .msg):
# someone else's words, never the sender's own text, whatever its content type says.
_MAIL_FILE_SUFFIXES = (".eml", ".msg")


def filename(part: Message) -> str:
    """The part's file name (Content-Disposition filename, else Content-Type name), RFC 2231 /
    2047-decoded; "" when it has none or it is unreadable."""
    try:
        name = part.get_filename()
    except Exception:
        return ""
    return decode_header_value(name) if name else ""


def is_mail_file(part: Message) -> bool:
    """Whether the part is named as a saved mail (.eml, .msg); attached.py reads it."""
    return filename(part).casefold().endswith(_MAIL_FILE_SUFFIXES)


def is_attachment(part: Message) -> bool:
    try:
        pairs = _memo(part).raw_headers.get("content-disposition")
        value = part.policy.header_fetch_parse(*pairs[0]) if pairs else None
        disposition = (value or "").lower()
    except Exception:
        return False
    return disposition.strip().startswith("attachment")


def part_text(part: Message) -> str:
    """The decoded text of one leaf part; "" when it has none.

    Only the start of the encoded payload is decoded (`encoded_prefix`): a 9 MB attachment
    declared as text would otherwise be decoded whole just to keep its first characters.
    """
    try:
        data = _decode_prefix(part)
    except Exception:
        data = None
    if data is None:
        try:
            payload = part.get_payload()
        except Exception:
            return ""
        return payload[:MAX_TEXT_CHARS] if isinstance(payload, str) else ""
    if not isinstance(data, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data[:MAX_TEXT_BYTES], charset)[:MAX_TEXT_CHARS]


def encoded_prefix(payload: str, transfer_encoding: str) -> str:
    """The part of an encoded payload that can hold the first MAX_TEXT_BYTES decoded bytes.

    base64: four characters per three bytes, line breaks allowed for (cut at a four-character
    boundary, so the decoded bytes are exact); quoted-printable: at most three characters per
    byte (cut at a line end, so no "=XX" is split); anything else: one character per byte.
    """
    cte = transfer_encoding.strip().lower()
    if cte == "base64":
        window = payload[: MAX_TEXT_BYTES * 2]  # generous room for line breaks
        if len(window) == len(payload):
            return payload
        letters = "".join(window.split())[: (MAX_TEXT_BYTES // 3 + 1) * 4]
        return letters[: len(letters) - len(letters) % 4]
    if cte == "quoted-printable" or cte in ("x-uuencode", "uuencode", "uue", "x-uue"):
        window = payload[: MAX_TEXT_BYTES * 3 + 3]
        if len(window) == len(payload):
            return payload
        line_end = window.rfind("\n")
        return window[: line_end + 1] if line_end > 0 else window
    return payload[:MAX_TEXT_BYTES]


def payload_prefix(part: Message) -> bytes:
    """The decoded payload of a leaf part, at least its first MAX_TEXT_BYTES bytes (the same
    bounded decoding as `part_text`, without a charset); b"" for a multipart or when
    unreadable."""
    try:
        data = _decode_prefix(part)
    except Exception:
        return b""
    return data or b""


def _decode_prefix(part: Message) -> bytes | None:
    """`part.get_payload(decode=True)` of the payload's `encoded_prefix`, decoded by the
    stdlib itself (same defect handling); None for a multipart."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None
    cte = str(part.get("Content-Transfer-Encoding", ""))
    prefix = encoded_prefix(payload, cte)
    if prefix is payload:
        data = part.get_payload(decode=True)
    else:
        view = Message(policy=email.policy.compat32)
        view["Content-Transfer-Encoding"] = cte
        view.set_payload(prefix)
        data = view.get_payload(decode=True)
    return data if isinstance(data, bytes) else None


def body_text(msg: Message) -> str:
    """What the sender wrote in this message: the first inline text/plain, else HTML as text.

    Parts below an attached message/rfc822 are skipped (those are the quoted original), and
    so is a text part named as a saved mail (an inline "x.eml": a message/rfc822 mislabelled).
    The HTML part is decoded only when the plain part turns out empty: most clients send both.
    """
    plain: str | None = None
    html_part: Message | None = None
    for part, _depth, attached in walk(msg):
        if attached or is_attachment(part):
            continue
        ctype = content_type(part)
        wanted = (ctype == "text/plain" and plain is None) or (
            ctype == "text/html" and html_part is None
        )
        if not wanted or is_mail_file(part):
            continue
        if ctype == "text/plain":
            plain = part_text(part)
        else:
            html_part = part
    if plain is not None and plain.strip():
        return normalise_text(plain)
    if html_part is not None:
        return normalise_text(html_to_text(part_text(html_part)))
    return normalise_text(plain or "")


def all_text(msg: Message, *, include_attached: bool = True) -> str:
    """Every text part (HTML as text) and delivery-status part, used to find tokens and read
    bounces, never intent. `include_attached=False` leaves out returned/forwarded originals."""
    texts: list[str] = []
    for part, _depth, attached in walk(msg):
        if attached and not include_attached:
            continue
        ctype = content_type(part)
        if ctype == "text/html":
            texts.append(html_to_text(part_text(part)))
        elif ctype.startswith("text/"):
            if ctype == "text/rfc822-headers" and not include_attached:
                continue
            texts.append(part_text(part))
        elif ctype == "message/delivery-status":
            texts.append(_delivery_status_text(part))
    return normalise_text("\n".join(texts))


def _delivery_status_text(part: Message) -> str:
    try:
        payload = part.get_payload()
    except Exception:
        return ""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, list):
        blocks = []
        for sub in payload:
            if isinstance(sub, Message):
                blocks.append("\n".join(f"{k}: {decode_header_value(v)}" for k, v in sub.items()))
        return "\n\n".join(blocks)
    return ""


def nested_headers(msg: Message) -> str:
    """The headers of attached messages (a returned original names its Reply-To there)."""
    lines: list[str] = []
    for part, depth, attached in walk(msg):
        if depth == 0 or not attached or content_type(part) == "message/rfc822":
            continue
        try:
            items = part.items()
        except Exception:
            continue
        for key, value in items[:200]:
            if key.lower() in ("reply-to", "from", "to", "cc", "subject", "message-id", "sender"):
                lines.append(f"{key}: {decode_header_value(value)}")
    return "\n".join(lines)


def normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Non-breaking and zero-width spaces are common in Outlook HTML; they break word rules.
    text = text.replace("\xa0", " ").replace("\u200b", "").replace("\ufeff", "")
    return text


# --- HTML → text ----------------------------------------------------------------------------

_BLOCK_TAGS = {
    "p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "pre", "section", "article", "header", "footer", "address", "dd", "dt", "blockquote",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "head", "title", "xml", "template", "object", "iframe"}
_VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr"}


class _TextExtractor(HTMLParser):
    """Block structure to lines; <blockquote> content to "> " lines so quotes can be cut.

    Nothing is fetched or rendered: only text nodes are kept.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip = 0
        self.quote = 0
        self.stack: list[str] = []

    def _flush(self) -> None:
        line = re.sub(r"[ \t\r\n]+", " ", "".join(self.current)).strip()
        self.current = []
        prefix = "> " * self.quote
        self.lines.append((prefix + line) if line or not prefix else prefix.rstrip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag in _SKIP_TAGS:
            self.skip += 1
        if tag in _BLOCK_TAGS:
            self._flush()
        if tag == "blockquote":
            self.quote += 1
        if tag == "td" and self.current:
            self.current.append(" ")
        if tag not in _VOID_TAGS:
            self.stack.append(tag)
            if len(self.stack) > 2000:  # absurd nesting: stop tracking, keep text
                self.stack = self.stack[-1000:]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.lower() in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _SKIP_TAGS and self.skip:
            self.skip -= 1
        if tag in _BLOCK_TAGS:
            self._flush()
        if tag == "blockquote" and self.quote:
            self.quote -= 1
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.current.append(data)


@lru_cache(maxsize=8)
def html_to_text(html: str) -> str:
    """HTML as lines of text. Cached: one reading asks for the same part's text several times
    (body, own text, token search), and HTMLParser is the slowest step of a reading."""
    parser = _TextExtractor()
    try:
        parser.feed(html[: MAX_TEXT_CHARS * 4])
        parser.close()
    except Exception:
        # HTMLParser is lenient, but keep whatever it had read if it does give up.
        pass
    parser._flush()
    text = "\n".join(parser.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
