"""Finding the deelsessie a reply chooses: by key, title, alias or a clear misspelling.

Session words are also ordinary words ("werk", "wonen", "veilig"), so a mention only counts
when the sentence is about choosing (a cue such as "deelsessie", "graag", "voor", "liefst"
shortly before it) or the sentence is a bare choice ("Wonen."). Possessives and articles right
before it ("mijn werk", "het werk") make it an ordinary noun. Misspellings are accepted only
for longer words (edit distance 1 from five letters, 2 from eight) and only with a cue.

No mention counts in a sentence that says the writer has not chosen yet ("ik twijfel tussen
wonen en werk", "ik weet nog niet welke"), nor after a negation in its own clause ("maar niet
naar de deelsessie veiligheid"): a wrong session is worse than none. (Indifference is not
doubt: "werk of wonen, maakt me niet uit" takes the first, which the writer is content with.)

A simple inflection of a one-word key, alias or title word counts too: plural or verb "-en",
"-s", "-e" ("fiets" → "fietsen"; not a derived word such as "fietsers"), with Dutch spelling
("bus" → "bussen", "school" → "scholen", "huis" → "huizen", "brief" → "brieven"), English
"-es"/"-ies", and the stem of a plural alias ("woningen" → "woning"). Such a word is often an
ordinary verb or noun ("Wij fietsen graag"), so it counts only in a clause that is nothing but
the choice ("Fietsen graag.", "Ja, ik kom, fietsen graag", "Deelsessie: fietsen", "Ik kies
fietsen") or right after a session word ("deelsessie fietsen"). A form that belongs to two
sessions, or to one while a misspelling points at another, or that is a common word
("werken", "zorgen"), counts for none. Misspellings that point at more than one session count
for none either.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from workflows.event_config import SessionSpec

_CUES = frozenset(
    [
        "deelsessie",
        "deelsessies",
        "sessie",
        "sessies",
        "workshop",
        "thema",
        "track",
        "voorkeur",
        "voorkeuren",
        "kies",
        "kiezen",
        "keuze",
        "kieze",
        "liefst",
        "liever",
        "graag",
        "voor",
        "naar",
        "bij",
        "of",
        "en",
        "anders",
        "eventueel",
        "dan",
        "eerste",
        "tweede",
        "session",
        "sessions",
        "prefer",
        "preference",
        "choose",
        "choice",
        "option",
        "topic",
        "first",
        "second",
        "otherwise",
        "or",
        "and",
        "to",
        "for",
        "the",
        "rather",
        "ideally",
        "gekozen",
        "kiest",
        "ga",
        "gaan",
        "wil",
    ]
)
_ORDINARY = frozenset(
    [
        "het",
        "mijn",
        "zijn",
        "haar",
        "ons",
        "onze",
        "je",
        "uw",
        "jouw",
        "hun",
        "aan",
        "at",
        "my",
        "his",
        "her",
        "our",
        "your",
    ]
)
_AFTER_CUES = frozenset(
    ["of", "en", "or", "and", "graag", "please", "heeft", "has", "sessie", "deelsessie", "session"]
)
_NEGATORS = frozenset(["niet", "geen", "not", "no"])
# A sentence saying the writer has not chosen yet: its session words are options, not a choice.
_UNDECIDED = re.compile(
    r"\btwijfel|\bweet\s+(?:ik\s+)?(?:\w+\s+){0,2}?niet\s+(?:welke|wat)\b"
    r"|\bkan\s+(?:\w+\s+)?niet\s+kiezen\b|\bbeslis\s+ik\s+(?:nog|later)\b|\bkies\s+ik\s+later\b"
    r"|\bundecided\b|\bnot\s+sure\s+which\b|\bcan'?t\s+decide\b|\bhaven'?t\s+decided\b",
    re.IGNORECASE,
)
# Where a clause starts, for the negation check: "Niet wonen maar liever werk" negates wonen.
_CLAUSE_START = re.compile(r"[,:]|\b(?:maar|but|wel|anders|dan|liever|rather)\b")
# "Doe mij maar onderwijs", "doe maar werk": a choice in spoken Dutch.
_DOE_MAAR = re.compile(r"\bdoe\s+(?:mij\s+|me\s+|ons\s+)?maar\s*$", re.IGNORECASE)
# Common misspellings of the cue "deelsessie" ("deelsesie", "deelssessie").
_CUE_TYPO = re.compile(r"^d[ea]{1,2}l+s+e+s+i+e*s?$")
_WORD_RE = re.compile(r"[a-zà-ÿ0-9]+(?:-[a-zà-ÿ0-9]+)*")


@dataclass(frozen=True)
class SessionMention:
    key: str
    start: int  # offset in the text
    end: int
    exact: bool


@dataclass(frozen=True)
class _Term:
    key: str
    words: tuple[str, ...]
    fuzzy: bool  # single long word: misspellings allowed


class _Index:
    """The terms of one set of sessions, and which of them each word is a misspelling of.

    Built once per set (keyed by the tuple of SessionSpecs, which are frozen): every reply to
    an event asks about the same sessions, and the fuzzy comparison of every word against
    every term was the slowest step of reading a reply.
    """

    _MAX_WORDS = 20_000  # fuzzy answers remembered per set; words repeat, this is plenty

    def __init__(self, sessions: tuple[SessionSpec, ...]) -> None:
        self.terms = _build_terms(sessions)
        self.fuzzy = [t for t in self.terms if t.fuzzy]
        self.inflected = _inflections(self.terms)
        # Exact matches start with their first word; same (longest first) order as `terms`.
        self.starting_with: dict[str, list[_Term]] = {}
        for term in self.terms:
            self.starting_with.setdefault(term.words[0], []).append(term)
        self._fuzzy_by_word: dict[str, list[_Term]] = {}

    @staticmethod
    def of(sessions: Sequence[SessionSpec]) -> _Index:
        return _index(tuple(sessions))

    def fuzzy_terms(self, word: str) -> list[_Term]:
        found = self._fuzzy_by_word.get(word)
        if found is None:
            found = _fuzzy_terms(word, self.fuzzy)
            if len(self._fuzzy_by_word) >= self._MAX_WORDS:
                self._fuzzy_by_word.clear()
            self._fuzzy_by_word[word] = found
        return found


@lru_cache(maxsize=32)
def _index(sessions: tuple[SessionSpec, ...]) -> _Index:
    return _Index(sessions)


def _build_terms(sessions: Sequence[SessionSpec]) -> list[_Term]:
    terms: list[_Term] = []
    for s in sessions:
        names = {s.key.lower(), s.title.lower(), s.title.split(":")[0].lower()}
        names.update(a.lower() for a in s.aliases)
        for name in names:
            words = tuple(_WORD_RE.findall(name))
            if words:
                terms.append(_Term(s.key, words, len(words) == 1 and len(words[0]) >= 5))
    # Longer terms first so "werk en inkomen" wins over "werk".
    return sorted(terms, key=lambda t: -len(t.words))


# Common words an inflection could spell: never read as a session ("ik wil graag werken aan …").
_COMMON_FORMS = frozenset(
    [
        "werken", "wonen", "zorgen", "komen", "gaan", "zijn", "doen", "maken", "nemen", "geven",
        "staan", "zien", "weten", "willen", "kunnen", "moeten", "mogen", "houden", "vinden",
        "lopen", "leren", "delen", "spelen", "praten", "helpen", "werkt", "woont", "zorgt",
        "leert", "speelt", "helpt", "mensen", "dingen", "zaken", "jaren", "dagen", "uren",
        "vragen", "antwoorden", "groeten", "wijken", "works", "jobs", "lives", "things", "times",
        "years", "days", "needs", "helps", "plans", "talks", "meetings", "thanks", "regards",
        "sessies", "sessions", "themas", "topics", "tracks", "workshops",
    ]
)  # fmt: skip
_VOWELS = "aeiou"


def _forms(word: str) -> set[str]:
    """Plural and verb forms of one session word, and the stem of a plural one."""
    forms = {word + "en", word + "s", word + "e"}
    if word.endswith("e"):
        forms.add(word + "n")
    if word.endswith(("s", "x", "ch", "sh")):
        forms.add(word + "es")
    if len(word) > 3 and word.endswith("y") and word[-2] not in _VOWELS:
        forms.add(word[:-1] + "ies")
    if re.search(r"(?:^|[^aeiou])[aeiou][bdfgklmnprt]$", word):
        forms.add(word + word[-1] + "en")  # "bus" → "bussen", "kanon" → "kanonnen"
    if re.search(r"(aa|ee|oo|uu)[^aeiouy]$", word):
        forms.add(word[:-2] + word[-1] + "en")  # "school" → "scholen"
    if re.search(r"[aeiouy]f$", word):
        forms.add(word[:-1] + "ven")  # "brief" → "brieven"
    if re.search(r"(?:ui|ij|ei|au|ou|aa|ee|oo|uu)s$", word):
        forms.add(word[:-1] + "zen")  # "huis" → "huizen"
    for ending in ("en", "s"):
        stem = word[: -len(ending)]
        if word.endswith(ending) and len(stem) >= 4:
            forms.add(stem)  # "woningen" → "woning", "jobs" no: too short
    forms.discard(word)
    return forms


def _inflections(terms: list[_Term]) -> dict[str, list[_Term]]:
    """Each inflected form of a one-word term (four letters or more) that is no term itself
    nor a common word, with the terms it is a form of (of more than one session: ambiguous)."""
    exact = {t.words[0] for t in terms if len(t.words) == 1}
    found: dict[str, list[_Term]] = {}
    for term in terms:
        if len(term.words) != 1 or len(term.words[0]) < 4 or not term.words[0].isalpha():
            continue
        for form in _forms(term.words[0]):
            if form not in exact and form not in _COMMON_FORMS:
                found.setdefault(form, []).append(term)
    return found


def _norm(word: str) -> str:
    # Dutch "ij" is often typed "y"; compare them as equal.
    return word.replace("ij", "y")


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, stopping early past `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def _fuzzy_equal(word: str, target: str) -> bool:
    a, b = _norm(word), _norm(target)
    if a == b:
        return True
    if len(b) < 5 or len(a) < 4:
        return False
    limit = 2 if len(b) >= 8 else 1
    # Keep the first letter: "wonen" and "bonen" are different words.
    return a[0] == b[0] and _distance(a, b, limit) <= limit


def find_sessions(text: str, sessions: Sequence[SessionSpec]) -> list[SessionMention]:
    """Session mentions in reading order; `text` should be one reply without quotes."""
    lowered = text.lower()
    tokens = [(m.group(0), m.start(), m.end()) for m in _WORD_RE.finditer(lowered)]
    index = _Index.of(sessions)
    no_terms: list[_Term] = []
    mentions: list[SessionMention] = []
    i = 0
    while i < len(tokens):
        word = tokens[i][0]
        terms = index.starting_with.get(word, no_terms)
        inflected = index.inflected.get(word, no_terms)
        hit = _match_at(tokens, i, terms, index.fuzzy_terms(word), inflected)
        if hit is not None:
            term, how = hit
            exact = how == "exact"
            j = i + (len(term.words) if exact else 1)
            if (
                _counts_inflected(lowered, tokens, i)
                if how == "inflected"
                else _counts(lowered, tokens, i, j, exact or len(term.words) > 1)
            ):
                mentions.append(SessionMention(term.key, tokens[i][1], tokens[j - 1][2], exact))
                i = j
                continue
        i += 1
    return mentions


def _fuzzy_terms(word: str, terms: list[_Term]) -> list[_Term]:
    return [t for t in terms if t.fuzzy and _fuzzy_equal(word, t.words[0])]


def _match_at(
    tokens: list[tuple[str, int, int]],
    i: int,
    terms: list[_Term],
    fuzzy: list[_Term],
    inflected: list[_Term] | None = None,
) -> tuple[_Term, str] | None:
    """The longest term starting at token i, and how it matched: "exact", "inflected" (a
    plural or verb form of a one-word term) or "fuzzy" (a misspelling). A word that could be
    either of two sessions is neither."""
    for term in terms:
        n = len(term.words)
        if i + n > len(tokens) or tokens[i][0] != term.words[0]:
            continue
        if all(tokens[i + k][0] == term.words[k] for k in range(1, n)):
            return term, "exact"
    keys = {t.key for t in (*fuzzy, *(inflected or ()))}
    if len(keys) != 1:
        return None  # none, or a form or misspelling of two sessions
    if inflected:
        return inflected[0], "inflected"
    return fuzzy[0], "fuzzy"


def _counts(text: str, tokens: list[tuple[str, int, int]], i: int, j: int, exact: bool) -> bool:
    """Whether the words tokens[i:j] are a session choice in their sentence."""
    start = tokens[i][1]
    sent_start = max(text.rfind(c, 0, start) for c in ".!?;\n") + 1
    sent_end_candidates = [p for p in (text.find(c, tokens[j - 1][2]) for c in ".!?;\n") if p >= 0]
    sent_end = min(sent_end_candidates) if sent_end_candidates else len(text)
    before = [t[0] for t in tokens[:i] if t[1] >= sent_start][-4:]
    sentence_tokens = [t for t in tokens if sent_start <= t[1] < sent_end]
    if before and before[-1] in _ORDINARY:
        return False
    if any(w in _NEGATORS for w in before[-2:]):
        return False
    # "…, maar niet naar de deelsessie veiligheid": a negation earlier in the same clause.
    # (windows of a few hundred characters: a sentence, and a hostile reply stays fast)
    near = max(sent_start, start - 80)
    clause_start = max([near, *(m.end() for m in _CLAUSE_START.finditer(text, near, start))])
    if any(
        w in _NEGATORS for w in (t[0] for t in tokens[max(0, i - 4) : i] if t[1] >= clause_start)
    ):
        return False
    if _UNDECIDED.search(text, max(sent_start, start - 300), min(sent_end, start + 300)):
        return False
    # A bare choice: "Wonen." / "Deelsessie: wonen" / a list item.
    if len(sentence_tokens) <= (j - i) + 2:
        return True
    # "wonen graag", "werk of wonen"; not across a comma ("Ik kom met de fiets, deelsessie
    # wonen": the next word starts another clause).
    after = [t for t in tokens[j : j + 1] if t[1] < sent_end]
    if (
        after
        and after[0][0] in _AFTER_CUES
        and not re.search(r"[,:()]", text[tokens[j - 1][2] : after[0][1]])
    ):
        return True
    prefix = text[sent_start:start]
    if re.search(r"[:\-–(]\s*$", prefix) or _DOE_MAAR.search(prefix):
        return True
    return any(w in _CUES or _CUE_TYPO.match(w) for w in before) and (exact or len(before) > 0)


# Words that may stand beside an inflected session word in a clause that only chooses it.
_CHOICE_WORDS = frozenset(
    [
        "graag", "please", "deelsessie", "deelsessies", "sessie", "session", "workshop", "thema",
        "track", "topic", "voorkeur", "preference", "liefst", "bij", "de", "het", "the", "voor",
        "for", "keuze", "choice", "optie", "option", "ja", "yes", "dan", "then",
        "wordt", "is", "kies", "gekozen", "choose", "prefer",
    ]
)  # fmt: skip
# With one of these "ik/I" may stand there too: "Ik kies fietsen", "I prefer cycling".
_CHOOSING = frozenset(["kies", "choose", "prefer", "gekozen"])
_SESSION_NOUN = re.compile(r"^(?:deelsessie|sessie|session|workshop|thema|track|topic)$")


def _counts_inflected(text: str, tokens: list[tuple[str, int, int]], i: int) -> bool:
    """Whether the inflected session word tokens[i] is a choice: right after a session word
    ("deelsessie fietsen"), or in a clause with nothing but choosing words ("Fietsen graag.",
    "Ik kies fietsen"). The negation and "not chosen yet" checks of `_counts` apply first."""
    start, end = tokens[i][1], tokens[i][2]
    sent_start = max(text.rfind(c, 0, start) for c in ".!?;\n") + 1
    sent_ends = [p for p in (text.find(c, end) for c in ".!?;\n") if p >= 0]
    sent_end = min(sent_ends) if sent_ends else len(text)
    if _UNDECIDED.search(text, max(sent_start, start - 300), min(sent_end, start + 300)):
        return False
    clause_start = max(text.rfind(c, 0, start) for c in ".!?;\n,:()") + 1
    clause_ends = [p for p in (text.find(c, end) for c in ".!?;\n,()") if p >= 0]
    clause_end = min(clause_ends) if clause_ends else len(text)
    before = [t[0] for t in tokens[max(0, i - 4) : i] if t[1] >= clause_start]
    if any(w in _NEGATORS for w in before):
        return False
    if before and (_SESSION_NOUN.match(before[-1]) or _CUE_TYPO.match(before[-1])):
        return True
    others = {t[0] for t in tokens if clause_start <= t[1] < clause_end} - {tokens[i][0]}
    if others <= _CHOICE_WORDS:
        return True
    return others <= _CHOICE_WORDS | {"ik", "i"} and bool(others & _CHOOSING)


def first_session(text: str, sessions: Sequence[SessionSpec]) -> str | None:
    found = find_sessions(text, sessions)
    return found[0].key if found else None
