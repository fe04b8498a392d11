"""Authentication-Results (RFC 8601): what our own receiving server said about a message.

Pure functions over header values. The receiving server (Postfix with OpenDKIM/OpenDMARC,
rspamd, Microsoft 365, Google) checks SPF, DKIM and DMARC and records the outcome in an
``Authentication-Results`` header that starts with its *authserv-id*::

    Authentication-Results: mx.wijkwijzer.example;
        dkim=pass (2048-bit key) header.d=rotterdam.nl header.i=@rotterdam.nl;
        spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=wethouder@rotterdam.nl;
        dmarc=fail (p=reject dis=none) header.from=rotterdam.nl

Anyone can put such a header in a message before sending it, so only headers whose
authserv-id the organiser listed (``[trust] trusted_authserv_ids``: their own receiving
server, which by RFC 8601 §5 removes forged headers carrying its id) are believed; all others
are ignored. A verdict is only ever a reason to *distrust* (send to review), never a reason
to trust more: a message without any trusted header is judged as before.

The parser is lenient the way receivers are: comments (nested, with quoted pairs) anywhere,
any letter case, quoted strings, folded lines, several headers, a missing ``;`` between two
results, and unknown methods or properties. What it cannot read it skips; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

HEADER_NAME = "Authentication-Results"
# Longer values are not real Authentication-Results; reading them costs time for nothing.
MAX_VALUE_CHARS = 16_000
# Properties that tell a reviewer nothing (a signature's bytes).
_NOISE = frozenset({"header.b", "header.bh"})


@dataclass(frozen=True)
class MethodResult:
    """One ``method=result`` of a header, e.g. ``dkim=fail`` with its properties."""

    method: str  # lowercase: "dkim", "spf", "dmarc", "arc", "auth", ...
    result: str  # lowercase: "pass", "fail", "softfail", "none", "neutral", ...
    reason: str = ""
    properties: tuple[tuple[str, str], ...] = ()  # (("header.d", "rotterdam.nl"), ...)

    def prop(self, name: str) -> str:
        """A property's value by its ``ptype.property`` name (case-insensitive), or ""."""
        wanted = name.lower()
        return next((value for key, value in self.properties if key == wanted), "")

    def describe(self) -> str:
        """``dkim=fail (header.d=rotterdam.nl)``: enough for a human reviewing the message."""
        shown = [f"{k}={v}" for k, v in self.properties if v and k not in _NOISE]
        if self.reason:
            shown.insert(0, f"reason: {self.reason}")
        details = ", ".join(item[:120] for item in shown[:6])
        text = f"{self.method}={self.result}"
        return f"{text} ({details})" if details else text


@dataclass(frozen=True)
class AuthenticationResults:
    """One parsed header: who wrote it and what they found."""

    authserv_id: str  # lowercase
    results: tuple[MethodResult, ...] = ()
    version: int | None = None


# --------------------------------------------------------------------------- lexing


def _strip_comments(value: str) -> str:
    """The value without RFC 5322 comments; quoted strings are kept as they are.

    An unbalanced ``(`` swallows the rest (as a receiver would), a stray ``)`` is dropped.
    """
    out: list[str] = []
    depth = 0
    in_quotes = False
    escaped = False
    for ch in value:
        if escaped:
            if depth == 0:
                out.append(ch)
            escaped = False
            continue
        if ch == "\\" and (in_quotes or depth):
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if in_quotes:
            out.append(ch)
            if ch == '"':
                in_quotes = False
            continue
        if ch == "(":
            depth += 1
            out.append(" ")
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
            if ch == '"':
                in_quotes = True
    return "".join(out)


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and in_quotes:
            current.append(ch)
            escaped = True
        elif ch == '"':
            current.append(ch)
            in_quotes = not in_quotes
        elif ch == separator and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


_QUOTED_RE = re.compile(r'("(?:[^"\\]|\\.)*"?)')


def _words(text: str) -> list[str]:
    """White-space separated words, with the optional space around ``=``, ``/`` and ``.``
    removed first (``dkim = pass`` → ``dkim=pass``) and quoted strings kept whole.

    Splitting on white space rather than on ``=`` keeps values such as a base64 signature
    (``header.b=Ab/cD=``) in one piece.
    """
    chunks = _QUOTED_RE.split(text)
    glued = "".join(
        chunk if chunk.startswith('"') else re.sub(r"\s*([=/.])\s*", r"\1", chunk)
        for chunk in chunks
    )
    words: list[str] = []
    current: list[str] = []
    in_quotes = escaped = False
    for ch in glued:
        if escaped:
            escaped = False
        elif ch == "\\" and in_quotes:
            escaped = True
        elif ch == '"':
            in_quotes = not in_quotes
        elif ch.isspace() and not in_quotes:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(ch)
    if current:
        words.append("".join(current))
    return words


def _unquote(token: str) -> str:
    if token.startswith('"'):
        inner = token[1:-1] if len(token) > 1 and token.endswith('"') else token[1:]
        return re.sub(r"\\(.)", r"\1", inner)
    return token


# --------------------------------------------------------------------------- parsing


def parse(value: str) -> AuthenticationResults | None:
    """One ``Authentication-Results`` value; None when it has no readable authserv-id."""
    try:
        return _parse(value)
    except Exception:  # a header must never stop a message from being read
        return None


def _parse(value: str) -> AuthenticationResults | None:
    text = re.sub(r"\r?\n[ \t]*", " ", str(value)[:MAX_VALUE_CHARS])
    segments = _split_outside_quotes(_strip_comments(text), ";")
    head = _words(segments[0])
    if not head:
        return None
    authserv_id = _unquote(head[0]).strip().lower()
    if not authserv_id or "=" in authserv_id:
        return None  # "spf=pass; ..." without an id: nobody to trust
    version = int(head[1]) if len(head) > 1 and head[1].isdigit() else None
    results: list[MethodResult] = []
    for segment in segments[1:]:
        results.extend(_results_in(segment))
    return AuthenticationResults(authserv_id, tuple(results), version)


def _results_in(segment: str) -> list[MethodResult]:
    """The results in one ``;``-separated segment (usually one; more if a ``;`` is missing).

    ``none`` (no-result) gives nothing. A ``name=value`` whose name has no dot and is not
    ``reason`` starts a new result: that is how a forgotten ``;`` is recognised. Properties
    and reasons before any result are dropped.
    """
    found: list[MethodResult] = []
    current: dict[str, Any] | None = None
    for word in _words(segment):
        name, equals, raw_value = word.partition("=")
        if not equals or not name or name.startswith('"'):
            continue
        key = name.lower()
        value = _unquote(raw_value).strip()
        if key == "reason":
            if current is not None:
                current["reason"] = value
        elif "." in key:
            if current is not None:
                current["properties"].append((key, value))
        elif value:
            if current is not None:
                found.append(_result(current))
            method = key.partition("/")[0]  # "dkim/1=pass": a method version
            current = {"method": method, "result": value.lower(), "reason": "", "properties": []}
    if current is not None:
        found.append(_result(current))
    return found


def _result(data: dict[str, Any]) -> MethodResult:
    return MethodResult(
        method=data["method"],
        result=data["result"],
        reason=data["reason"],
        properties=tuple(data["properties"]),
    )


# --------------------------------------------------------------------------- judging


def trusted_results(
    values: Iterable[str], trusted_authserv_ids: Collection[str]
) -> list[AuthenticationResults]:
    """The parsed headers whose authserv-id is trusted (case-insensitive); others ignored."""
    trusted = {a.strip().lower() for a in trusted_authserv_ids if a.strip()}
    if not trusted:
        return []
    parsed = (parse(v) for v in values)
    return [p for p in parsed if p is not None and p.authserv_id in trusted]


def failure(headers: Sequence[AuthenticationResults]) -> str | None:
    """Why the trusted headers say the sender is not who the From: claims, or None.

    ``dmarc=fail`` and ``spf=fail`` count on their own; ``dkim=fail`` only when no DKIM
    signature passed (a message may carry several signatures, and a mailing list or a
    forwarder often breaks one of them while another still holds). ``softfail``,
    ``neutral``, ``none``, ``temperror`` and ``permerror`` are not failures: they say nothing
    certain, and sending every such reply to review would bury the real cases.
    """
    results = [r for h in headers for r in h.results]
    problems: list[str] = []
    for method in ("dmarc", "spf"):
        problems += [r.describe() for r in results if r.method == method and r.result == "fail"]
    dkim = [r for r in results if r.method == "dkim"]
    if not any(r.result == "pass" for r in dkim):
        problems += [r.describe() for r in dkim if r.result == "fail"]
    if not problems:
        return None
    servers = ", ".join(sorted({h.authserv_id for h in headers}))
    return f"sender authentication failed at {servers}: {'; '.join(problems)}"


def authentication_failure(
    values: Iterable[str], trusted_authserv_ids: Collection[str]
) -> str | None:
    """`failure` of the trusted ones among raw header values: the one call the rules need."""
    return failure(trusted_results(values, trusted_authserv_ids))


__all__ = [
    "HEADER_NAME",
    "AuthenticationResults",
    "MethodResult",
    "authentication_failure",
    "failure",
    "parse",
    "trusted_results",
]
