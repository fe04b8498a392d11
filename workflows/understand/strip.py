"""Remove quoted text, forwarded headers and signatures so only the new words remain.

Replies quote the invitation, which says "aanmelden", "deelsessie", "ja/nee" and every session
name; none of that may count as the invitee's answer. Rules, in order:

1. Cut at the first *quote header*: "Op … schreef …:", "On … wrote:", Apple's "Op … heeft …
   het volgende geschreven:", Outlook's "Van:/Verzonden:/Aan:/Onderwerp:" (or
   "From:/Sent:/To:/Subject:") block, "-----Oorspronkelijk bericht-----" and its kin.
2. Cut at the first *signature start*: a sign-off ("Met vriendelijke groet", "Mvg", "Kind
   regards" …), "-- ", "Verstuurd vanaf mijn iPhone", or the Dutch government disclaimer.
3. Drop every "> " line that is left (interleaved answers keep the lines between quotes).
4. If nothing was cut, ask quotequail as a second opinion (it knows a few more clients).

The signature block itself is dropped (function titles, "Gemeente Wonen en Werken"-style
department names would otherwise leak session words), but a "PS"/"P.S."/"NB" paragraph below
it and above the quote is the writer's own afterthought and is kept, without its label.

A line is only the first half of a wrapped attribution when no blank line follows it and the
next line does not start an attribution of its own: "…met Karin Smit (k.smit@x.nl)" right
above "Op … schreef …:" contains an address but is the writer's text.
"""

from __future__ import annotations

import re

import quotequail

_ATTRIBUTION_WORDS = (
    r"schreef|wrote|geschreven|schrieb|a\s+écrit|escribió|scrisse|skrev|napisał|написал|"
    r"het\s+volgende"
)
# "Op wo 11 jan. 2023 om 10:12 schreef Jan <jan@x.nl>:", "On Wed, … wrote:", Apple's
# "Op 11 jan. 2023, om 10:12 heeft Jan het volgende geschreven:", German/French kin.
_ATTRIBUTION_RE = re.compile(
    rf"^[\s>-]*(?:op|on|am|le|el|il|den|dnia|w\s+dniu)\b.{{0,300}}?\b(?:{_ATTRIBUTION_WORDS})\b"
    r".{0,200}?:?\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION_WORD_RE = re.compile(rf"\b(?:{_ATTRIBUTION_WORDS})\b", re.IGNORECASE)
# Attribution lines without a leading "On/Op": "Jan Jansen <jan@x.nl> schreef op 11-1-2023:".
_ATTRIBUTION_TAIL_RE = re.compile(
    r"^.{0,200}(?:<[^>@\s]+@[^>\s]+>|\S+@\S+\.\w+).{0,120}\b(?:schreef|wrote|schrieb)\b.{0,80}:\s*$",
    re.IGNORECASE,
)
_SEPARATOR_RE = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:oorspronkelijk\s+bericht|original\s+message|doorgestuurd\s+bericht|"
    r"forwarded\s+message|begin\s+forwarded\s+message|ursprüngliche\s+nachricht|"
    r"message\s+d'origine|oorspronkelijke\s+bericht|reply\s+message)\s*[-_=*]{0,}\s*$",
    re.IGNORECASE,
)
_FORWARD_INTRO_RE = re.compile(
    r"^\s*(?:begin\s+forwarded\s+message|begin\s+doorgestuurd\s+bericht|doorgestuurd\s+bericht)"
    r"\s*:?\s*$",
    re.IGNORECASE,
)
# The line that opens a forwarded message: Gmail's "---------- Forwarded message ---------",
# Thunderbird's "-------- Doorgestuurd bericht --------", old Outlook's "-----Doorgestuurd
# bericht-----" (Apple's "Begin doorgestuurd bericht:" is _FORWARD_INTRO_RE).
_FORWARD_SEPARATOR_RE = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:doorgestuurd\s+bericht|forwarded\s+message|begin\s+forwarded\s+message|"
    r"weitergeleitete\s+nachricht|message\s+transféré)\s*:?\s*[-_=*]*\s*$",
    re.IGNORECASE,
)
# Outlook header block lines, possibly bold (*Van:*) from an HTML conversion.
_HEADER_LINE_RE = re.compile(
    r"^\s*(?:>\s*)?\*?(van|from|verzonden|sent|datum|date|aan|to|cc|onderwerp|subject|"
    r"von|gesendet|an|betreff|de|envoyé|objet|à|da|data|a|oggetto|risposta|från|skickat|till|"
    r"ämne|para|enviado|asunto|assunto|od|wysłano|temat|от|отправлено|кому|тема|fra|sendt|"
    r"emne)\*?\s*:\*?\s",
    re.IGNORECASE,
)
_HEADER_FROM = {"van", "from", "von", "de", "da", "från", "od", "от", "fra"}
_RULE_RE = re.compile(r"^\s*[-_=~*#+]{2,}\s*$")

_SIGNOFF_RE = re.compile(
    r"^\s*(?:"
    r"(?:met\s+)?(?:vriendelijke|hartelijke|collegiale|beste|warme|zonnige)\s+groet(?:en|jes)?"
    r"|m\.?\s?v\.?\s?g\.?|mvgr\.?|groet(?:en|jes)?|hartelijke\s+dank\s+en\s+groet(?:en)?"
    r"|(?:kind|best|warm|warmest|many\s+thanks\s+and\s+kind)\s+regards|regards|cheers"
    r"|with\s+(?:kind|best)\s+regards|yours\s+(?:sincerely|faithfully)|sincerely"
    r"|met\s+hartelijke\s+groet|hoogachtend|vr(?:iendelijke)?\.?\s+gr(?:oet)?\.?"
    r")\s*[.!]?(?:\s*,\s*\S.{0,50})?\s*,?\s*$",
    re.IGNORECASE,
)
_SIGNATURE_RE = re.compile(
    r"^\s*(?:"
    r"--\s*"  # RFC 3676 signature separator ("-- "), and a bare "--"
    r"|(?:verstuurd|verzonden|gestuurd)\s+(?:vanaf|vanuit|via|met)\s+(?:mijn|een)?\s*\S.*"
    r"|sent\s+(?:from|via|with)\s+\S.*"
    r"|get\s+outlook\s+for\s+\S.*|download\s+outlook\s+for\s+\S.*"
    r"|von\s+meinem\s+\S.*\s+gesendet.*|envoyé\s+de\s+mon\s+\S.*"
    r"|(?:sendt\s+fra|skickat\s+från|enviado\s+(?:desde|do)|inviato\s+da|wysłane\s+z)\s+(?:min|mi|mio|mój|meu)?\s*\S.*"
    r"|<<\s*sent\s+by\s+.*>>|\(sent\s+from\s+.*\)"
    r")$",
    re.IGNORECASE,
)
# The standard disclaimer under mail from Dutch government organisations, and English kin.
_DISCLAIMER_RE = re.compile(
    r"dit\s+(?:e-?mail)?bericht\s+kan\s+informatie\s+bevatten|"
    r"dit\s+bericht\s+is\s+uitsluitend\s+bestemd|"
    r"aan\s+dit\s+bericht\s+kunnen\s+geen\s+rechten|"
    r"this\s+(?:e-?mail|message)\s+may\s+contain\s+information|"
    r"the\s+information\s+(?:contained\s+)?in\s+this\s+(?:e-?mail|message)\s+is\s+(?:confidential|intended)|"
    r"this\s+(?:e-?mail|message)\s+(?:and\s+any\s+attachments\s+)?(?:is|are)\s+(?:confidential|intended\s+solely)",
    re.IGNORECASE,
)


def strip_reply(text: str, *, use_quotequail: bool = True) -> str:
    """The new text of a reply: quotes, forwarded headers and signatures removed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut, attributions = _first_cut(lines)
    kept = [
        ln
        for i, ln in enumerate(lines[:cut])
        if i not in attributions and not ln.lstrip().startswith(">")
    ]
    if cut < len(lines) and _starts_signature(lines[cut]):
        kept.extend(_postscript(lines, cut + 1))
    result = _tidy("\n".join(kept))
    if cut == len(lines) and use_quotequail and result:
        result = _quotequail_opinion(result)
    return result


def forwarded_part(text: str, *, forward_subject: bool) -> str | None:
    """The forwarded message in a body, from the line that opens it; None when the first
    quoted material is no forward. Above it are the sender's own words (those `strip_reply`
    keeps, possibly none), a signature or "Verstuurd vanaf mijn iPhone".

    An explicit forward line ("Forwarded message", "Begin doorgestuurd bericht:") always opens
    one. Outlook writes the same "Van:/Verzonden:/Aan:/Onderwerp:" block (or "Original
    message" line) for a reply as for a forward, so that counts only when the subject says
    forward (`forward_subject`, "FW: …"); so does a "> " quote.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if _FORWARD_SEPARATOR_RE.match(line) or _FORWARD_INTRO_RE.match(line):
            return _tidy("\n".join(lines[i:]))
        if line.lstrip().startswith(">") or _starts_quote(lines, i):
            return _tidy("\n".join(lines[i:])) if forward_subject else None
    return None


def _first_cut(lines: list[str]) -> tuple[int, set[int]]:
    """Index of the first line that starts quoted material or a signature (len if none), and
    the attribution lines above "> " quotes, which are dropped without cutting: a bottom-posted
    or interleaved answer continues below the quote."""
    attributions: set[int] = set()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(">"):
            continue
        if _introduces_quote(lines, i):
            # "At 6/16/2016 08:32 PM, you wrote:" / "2017-02-05 … <\naddr>:" right above "> ".
            attributions.add(i)
            # Its first half may sit on the line above; not when this line is whole already
            # (the line above is then the writer's, even with an address in it).
            above = lines[i - 1] if i > 0 else ""
            if (
                above.strip()
                and re.search(r"[\d@<]", above)
                and not _ATTRIBUTION_RE.match(line.strip())
                and not _is_attribution_free(above.strip())
            ):
                attributions.add(i - 1)
            continue
        if _starts_quote(lines, i):
            nxt = _next_nonblank(lines, i + 1)
            if (
                _is_attribution(line.strip())
                and nxt < len(lines)
                and lines[nxt].lstrip().startswith(">")
            ):
                attributions.add(i)
                continue
            if i + 1 < len(lines) and _is_attribution(f"{line.strip()} {lines[i + 1].strip()}"):
                nxt2 = _next_nonblank(lines, i + 2)
                if nxt2 < len(lines) and lines[nxt2].lstrip().startswith(">"):
                    attributions.update((i, i + 1))
                    continue
            return i, attributions
        if _starts_signature(line):
            return i, attributions
    return len(lines), attributions


_PS_RE = re.compile(r"^\s*(?:p\.?\s?s\.?|n\.?\s?b\.?)(?:\s*[:.,-]\s*|\s+)(?=\S)", re.IGNORECASE)
_PS_SEARCH_LINES = 40  # a signature with a disclaimer is long; a PS sits right below it


def _postscript(lines: list[str], start: int) -> list[str]:
    """A "PS" paragraph below the signature (and above any quote), without its "PS" label:
    "PS Mijn collega Karin Smit komt ook mee" is the writer's own word, added last."""
    window = range(start, min(len(lines), start + _PS_SEARCH_LINES))
    found = next(((i, m) for i in window if (m := _PS_RE.match(lines[i]))), None)
    if found is None:  # the common case: no PS at all, so no quote checks either
        return []
    i, m = found
    if any(lines[j].lstrip().startswith(">") or _starts_quote(lines, j) for j in range(start, i)):
        return []  # the "PS" belongs to quoted mail
    end = i + 1
    while end < len(lines) and not _ends_postscript(lines, end):
        end += 1
    return ["", lines[i][m.end() :], *lines[i + 1 : end]]


def _ends_postscript(lines: list[str], i: int) -> bool:
    line = lines[i]
    return (
        not line.strip()
        or line.lstrip().startswith(">")
        or _starts_quote(lines, i)
        or _starts_signature(line)
    )


def _introduces_quote(lines: list[str], i: int) -> bool:
    """A short line ending in ":" with a "> " quote right below it (any language)."""
    line = lines[i].strip()
    if not line.endswith(":") or len(line) > 200:
        return False
    nxt = _next_nonblank(lines, i + 1)
    return nxt < len(lines) and nxt - i <= 2 and lines[nxt].lstrip().startswith(">")


def _starts_quote(lines: list[str], i: int) -> bool:
    line = lines[i]
    stripped = line.strip()
    if not stripped:
        return False
    if _SEPARATOR_RE.match(line) or _FORWARD_INTRO_RE.match(line):
        return True
    if _is_attribution(stripped):
        return True
    if _wrapped_attribution(lines, i):
        return True
    if _RULE_RE.match(line) and _header_block_at(lines, _next_nonblank(lines, i + 1)):
        return True
    return _header_block_at(lines, i)


def _wrapped_attribution(lines: list[str], i: int) -> bool:
    """An attribution wrapped over up to four lines ("… schreef "x" <a@b> het\nvolgende
    geschreven:") that starts at line i.

    A wrapped attribution has no blank line inside, and when a later line starts one of its
    own, line i is the writer's text: "…met Karin Smit (k.smit@x.nl)" right above "Op … schreef
    …:" must not be cut because it happens to contain an address.
    """
    if not _may_open_attribution(lines[i].strip()):
        return False
    joined = lines[i].strip()
    for k in range(i + 1, min(i + 4, len(lines))):
        nxt = lines[k].strip()
        if not nxt or nxt.startswith(">"):
            return False
        joined = f"{joined} {nxt}"
        if len(joined) < 400 and _is_attribution(joined):
            return not any(_joins_to_attribution(lines, j, k) for j in range(i + 1, k + 1))
    return False


def _may_open_attribution(stripped: str) -> bool:
    return not _is_attribution_free(stripped) and bool(
        re.search(
            rf"^[\s>-]*(?:op|on|am|le)\b|{_ATTRIBUTION_WORDS}|@|\b(?:19|20)\d\d\b", stripped, re.I
        )
    )


def _joins_to_attribution(lines: list[str], start: int, end: int) -> bool:
    """Lines start..end (inclusive) alone already make an attribution."""
    if start < end and not _may_open_attribution(lines[start].strip()):
        return False
    joined = " ".join(ln.strip() for ln in lines[start : end + 1])
    return len(joined) < 400 and _is_attribution(joined)


def _is_attribution(text: str) -> bool:
    # Both patterns need an attribution word; looking for the word alone is a fast, linear
    # scan, where the patterns backtrack over every start of their bounded wildcards.
    if len(text) > 500 or not _ATTRIBUTION_WORD_RE.search(text):
        return False
    if _ATTRIBUTION_RE.match(text):
        # Must end with ":" or contain an address/date: "Op zich schreef ik al dat …" is prose.
        return text.rstrip().endswith(":") or bool(
            re.search(r"@|\d{1,2}[:.]\d{2}|\b(?:19|20)\d{2}\b", text)
        )
    return bool(_ATTRIBUTION_TAIL_RE.match(text))


def _is_attribution_free(text: str) -> bool:
    """A line that already ends a sentence is prose, not the first half of an attribution."""
    return bool(re.search(r"(?<!\d)[.!?]$", text.rstrip()))


def _next_nonblank(lines: list[str], i: int) -> int:
    # Linear overall: it is only called from a non-blank line, so every run of blank lines
    # is scanned from the one line above it.
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _header_block_at(lines: list[str], i: int) -> bool:
    """A From/Van line followed closely by at least one more mail header line."""
    if i >= len(lines):
        return False
    m = _HEADER_LINE_RE.match(lines[i])
    if not m or m.group(1).lower() not in _HEADER_FROM:
        return False
    found = 0
    for nxt in lines[i + 1 : i + 8]:
        if _HEADER_LINE_RE.match(nxt):
            found += 1
    return found >= 1


def _starts_signature(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if stripped == "--" or line.rstrip("\n") == "-- ":
        return True
    if len(stripped) <= 80 and (_SIGNOFF_RE.match(stripped) or _SIGNATURE_RE.match(stripped)):
        return True
    return bool(_DISCLAIMER_RE.search(stripped))


def _tidy(text: str) -> str:
    lines = [ln.rstrip() for ln in text.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and (not lines[-1].strip() or _RULE_RE.match(lines[-1])):
        lines.pop()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


# quotequail joins up to MAX_WRAP_LINES lines at every line it checks and tries all its
# patterns on each join: about 0.4 ms a line, 0.8 s on a long message. A reply's own words are
# at the top, so the attribution it could find is there too.
QUOTEQUAIL_MAX_LINES = 300


def quotequail_input(text: str) -> str:
    """The part of `text` quotequail is asked about: its first QUOTEQUAIL_MAX_LINES lines."""
    end = -1
    for _ in range(QUOTEQUAIL_MAX_LINES):
        end = text.find("\n", end + 1)
        if end < 0:
            return text
    return text[:end]


def _quotequail_opinion(text: str) -> str:
    """Second opinion for clients our rules do not know; only ever shortens the text."""
    head = quotequail_input(text)
    try:
        # limit above the head's length: with no quote found, quotequail must not invent one
        # at the limit line.
        chunks = quotequail.quote(head, limit=QUOTEQUAIL_MAX_LINES + 1)
    except Exception:
        return text
    if len(chunks) < 2 or not chunks[0][0]:
        return text
    own = chunks[0][1]
    return _tidy(own) if own.strip() else text
