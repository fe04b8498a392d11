"""Reading the invitee's own words (quotes already removed): intent and the details.

Intent rules, in order (see also the package docstring):
1. Questions ("…?") are read for `has_question` only; their words never count as an answer
   ("Kan ik ook komen als …?" is not an acceptance). Earlier clauses of the same sentence
   still count ("Ja, ik kom graag, is er parkeergelegenheid?").
2. Neutral phrases are blanked first ("niet alleen", "geen probleem", "misschien een
   volgende keer", "als ik kom"), so their "niet"/"misschien" is not read as an answer.
3. Strong signals are first-person statements; a strong accept with "niet/not" right after
   it is a decline ("ik kom helaas niet"). An accept followed by "maar/but" and a decline in
   the same sentence is politeness ("ik zou graag komen, maar ik kan niet") and drops out.
4. Decide: substitute → decline; accept+decline → unclear; tentative+decline → unclear
   ("waarschijnlijk niet" is for a human); tentative → tentative; "Nee, ik kom graag" (weak no +
   strong yes) → unclear; "Ja, helaas kan ik niet" (weak yes + softener + decline) → decline;
   bare "Ja"/"Nee" → accept/decline; only a question → question; nothing → unclear.
5. Unclear, whatever else was read: a double negation ("ik kan niet niet komen"); an accept
   whose "niet" is about a part or the manner ("ik kom niet met de auto maar met de trein",
   "niet naar de borrel, wel …"); an accept followed by "maar helaas/but unfortunately"; an
   accept beside a hedge adverb in another clause ("ik kom, maar misschien iets later": the
   hedge may be about a detail; in the accept's own clause it is tentative); a colleague who
   comes or chooses a session ("…, maar mijn collega Ans de Wit wil graag komen") without being
   read as a companion or the substitute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from workflows.event_config import SessionSpec
from workflows.understand import lexicon, people
from workflows.understand.sessions import SessionMention, find_sessions
from workflows.understanding import PersonMention, ReplyKind

# A negation shortly after an accept phrase negates it ("ik kom helaas niet"), but not across a
# conjunction that starts another clause ("Ik kom graag maar mijn collega niet").
_NEGATION_AFTER = re.compile(
    r"^(?:(?!\b(?:maar|but|en|and|want|omdat|because|terwijl|while|behalve|except)\b)"
    r"[^,.;:!?\n]){0,40}?\b(?:niet|geen|nooit|not|never)\b",
    re.IGNORECASE,
)
# After "ik kom … niet": words saying the negation is about a part or the manner of coming,
# not about coming ("ik kom niet met de auto maar met de trein", "ik kom niet naar de borrel,
# wel naar het programma", "ik kan niet de hele middag"). Neither yes nor no: a human reads it.
_PARTIAL_NEGATION = re.compile(
    r"^\s+(?:met|per|zonder|with|by|the\s+whole|de\s+hele|het\s+hele|heel\s+lang|lang|op\s+tijd|"
    r"tot\s+het\s+(?:einde|eind)|(?:naar|voor|bij|to|for)\s+(?:de\s+|het\s+|the\s+)?"
    r"(?:borrel|lunch|inloop|opening|plenair\w*|netwerk\w*|diner|drinks?|reception|"
    r"deelsessie\w*|sessie\w*|sessions?|workshop\w*|presentatie\w*|eerste|tweede|laatste|"
    r"first|second|last|start|begin|afsluiting|terugkoppeling))\b"
    # or a contrast: "niet <something>, maar/wel <something else>"
    # (not when the words after "niet" complete the no: "ik ben er niet bij, maar …")
    r"|^\s+(?!(?:want|omdat|vanwege|door|ivm|helaas|dus|en|maar|meer|but|because|since|as|any"
    r"|anymore|bij|erbij|aanwezig|komen|zijn|deelnemen|aanschuiven|meedoen|gaan|kunnen|mee|in\s+de"
    r"\s+gelegenheid|beschikbaar|attend|come|make|be|join)\b)\w[^.;!?\n]{0,40}?\b(?:maar|wel|but)\b",
    re.IGNORECASE,
)
# "Ik kan niet niet komen", "ik zie geen reden om niet te komen": a double negation means yes to
# a careful reader and no to a regex; a human reads it.
_DOUBLE_NEGATION = re.compile(
    r"\bniet\s+niet\b|\bnot\s+not\b|\bgeen\s+reden\s+om\s+niet\b|\bno\s+reason\s+not\s+to\b"
    r"|\bniet\s+(?:onmogelijk|uitgesloten|ondenkbaar)\b|\bnot\s+(?:impossible|unlikely)\b",
    re.IGNORECASE,
)
# Where a clause ends inside a part: commas, semicolons, colons, a spaced dash, "maar/but".
_CLAUSE_SPLIT = re.compile(r"[,;:]|\s[-–—]\s|\b(?:maar|but)\b", re.IGNORECASE)
_SUBORDINATE = re.compile(
    r"\b(?:of|als|indien|wanneer|zodra|if|whether|when)\s+$"
    # "Ik denk niet dat ik kan komen", "I don't think I can make it": a no, not a yes.
    r"|\b(?:niet|not)\s+(?:dat|that)\s+$|\b(?:don'?t|do\s+not|doubt)\s+(?:think\s+)?(?:that\s+)?$",
    re.IGNORECASE,
)
# "I'd love to come but unfortunately …": the regret after the "but" may be a no.
_BUT_REGRET = re.compile(
    r"^[^.;!?\n]*?\b(?:maar|but)\b[^.;!?\n]*?\b(?:helaas|jammer\s+genoeg|unfortunately|sadly|"
    r"regrettably|i'?m\s+afraid)\b",
    re.IGNORECASE,
)
# An English no followed by "with …": "I will not attend with a colleague, just me".
_DECLINE_WITH = re.compile(r"\s+(?:with|together|alone|by\s+(?:car|train))\b", re.IGNORECASE)
_BUT = re.compile(r"\b(?:maar|but|however|echter|alleen)\b", re.IGNORECASE)
_THIRD_PERSON = re.compile(
    r"\b(?:hij|zij|ze|die|he|she|who|they)\b|\b(?:wil|gaat|kiest|komt|wants|will|would|goes)\b",
    re.IGNORECASE,
)


# "Wilt u mij afmelden?" is an instruction in question form, not a question.
_REQUEST = re.compile(
    r"^\s*(?:wilt|wil|zou|zoudt|kunt|kun)\s+(?:u|je|jij|jullie)\s+(?:mij|me|ons|mijn)\b"
    r"(?!\s+(?:laten\s+weten|vertellen|informeren))"
    r"|^\s*(?:would|could|can)\s+you\s+(?:please\s+)?(?:register|unsubscribe|remove|cancel|sign)\b",
    re.IGNORECASE,
)


@dataclass
class Signals:
    accept: list[str] = field(default_factory=list)
    decline: list[str] = field(default_factory=list)
    tentative: list[str] = field(default_factory=list)
    regret: list[str] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)
    yes: list[str] = field(default_factory=list)
    no: list[str] = field(default_factory=list)
    softened: bool = False
    # Hedge adverbs standing in a clause with no accept phrase ("Ik kom graag, waarschijnlijk
    # met een collega"): they may hedge a detail, not the coming.
    stray_hedges: list[str] = field(default_factory=list)
    # Readings that make any answer unsure (double or partial negation): always unclear.
    unsure: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TextReading:
    kind: ReplyKind
    session: str | None = None
    companions: tuple[PersonMention, ...] = ()
    substitute: PersonMention | None = None
    dietary: str | None = None
    has_question: bool = False
    mentions_cancellation: bool = False
    wants_unsubscribe: bool = False
    notes: tuple[str, ...] = ()
    # No answer, no question and no unsubscribe wish: words that say nothing to act on
    # ("Zie onderwerp", a greeting), so the subject may be read instead.
    says_nothing: bool = False


@dataclass(frozen=True)
class _Sentence:
    text: str
    start: int
    question: bool


def _sentences(text: str) -> list[_Sentence]:
    out: list[_Sentence] = []
    # Split after . ! ? ; and at line breaks; keep abbreviations such as "dhr." mostly intact by
    # requiring whitespace after the stop.
    for m in re.finditer(r"[^.!?;\n]+(?:[.!?;]+(?=\s|$)|[.!?;]+|\n|$)", text):
        chunk = m.group(0)
        if chunk.strip():
            question = "?" in chunk and not _url_question(chunk) and not _REQUEST.match(chunk)
            out.append(_Sentence(chunk, m.start(), question))
    return out


def _url_question(chunk: str) -> bool:
    return all(re.search(r"\S*\?\S+", chunk[max(0, i - 40) : i + 2]) for i in _indices(chunk, "?"))


def _indices(s: str, ch: str) -> list[int]:
    return [i for i, c in enumerate(s) if c == ch]


# Clause breaks inside a sentence: commas and a spaced dash ("I'm vegan - will there be …?").
_CLAUSE_BREAK = re.compile(r",|\s[-–—]\s")


def _statement_spans(sentence: _Sentence) -> list[tuple[int, int]]:
    """(start, end) offsets within the sentence of the parts that state something: all of
    it, or for a question the clauses before the one that asks ("Ja, ik kom, is er …?")."""
    if not sentence.question:
        return [(0, len(sentence.text))]
    head = sentence.text.split("?")[0]
    spans: list[tuple[int, int]] = []
    start = 0
    for brk in _CLAUSE_BREAK.finditer(head):
        clause = head[start : brk.start()]
        words = re.findall(r"[a-zà-ÿ']+", clause.lower())
        if words and words[0] in lexicon.QUESTION_STARTERS:
            break
        spans.append((start, brk.start()))
        start = brk.end()
    return spans


def _statement_parts(sentence: _Sentence) -> list[str]:
    """The parts of a sentence that state something (not the question at its end)."""
    return [sentence.text[a:b] for a, b in _statement_spans(sentence)]


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def _take(text: str, pattern: re.Pattern[str], found: list[str]) -> str:
    """Add every match of `pattern` to `found` and return the text with them blanked: one scan
    where `finditer` then `_blank` would take two (sub and finditer see the same matches)."""
    pieces: list[str] = []
    end = 0
    for m in pattern.finditer(text):
        found.append(m.group(0))
        pieces += (text[end : m.start()], " " * (m.end() - m.start()))
        end = m.end()
    if not pieces:
        return text
    pieces.append(text[end:])
    return "".join(pieces)


# "Hij kan helaas niet", "she is unable to attend": someone (a secretary, a colleague) answers
# no for a third person. Whether that person is the invitee or a colleague mentioned in
# passing is for a human to tell; beside a hedge ("… maar misschien komt er iemand anders") it
# must not turn into the invitee's tentative either.
_THIRD_PERSON_NO = re.compile(
    r"\b(?:hij|zij|ze|mevrouw\s+\w+|meneer\s+\w+|he|she)\s+(?:"
    r"(?:kan|komt|zal|can|will)\s+(?:\w+\s+){0,2}?(?:niet|not)"
    r"|is\s+(?:\w+\s+){0,2}?(?:verhinderd|unable|niet\s+aanwezig|er\s+niet\s+bij|not\s+able|"
    r"not\s+available)"
    r"|(?:can't|cannot|won't|isn't\s+able))\b"
)

# "Namens wethouder De Groot: zij is verhinderd": the secretary says whom "zij" is.
_ON_BEHALF = re.compile(r"\bnamens\b|\bon\s+behalf\s+of\b")


def collect_signals(text: str) -> Signals:
    sig = Signals()
    for sentence in _sentences(text):
        for part in _statement_parts(sentence):
            _part_signals(part, sig)
    low = text.lower()
    third = _THIRD_PERSON_NO.search(low)
    if third and not _ON_BEHALF.search(low):
        sig.unsure.append(f"third-person answer: {third.group(0)!r} (for a human)")
    sig.softened = bool(lexicon.SOFTENER.search(text))
    return sig


def _part_signals(part: str, sig: Signals) -> None:
    low = _blank(part.lower(), lexicon.NEUTRAL)
    low = _blank(low, lexicon.UNSUBSCRIBE)
    low = _take(low, lexicon.REGRET, sig.regret)
    low = _take(low, lexicon.CANCEL, sig.cancel)
    double = _DOUBLE_NEGATION.search(low)
    if double:
        sig.unsure.append(f"double negation: {double.group(0)!r}")
        low = _blank(low, _DOUBLE_NEGATION)
    hedges = [
        (m.start(), m.group(0))
        for m in lexicon.TENTATIVE.finditer(low)
        if lexicon.HEDGE_ADVERB.match(m.group(0))
    ]
    low = _take(low, lexicon.TENTATIVE, sig.tentative)
    accept_at: list[int] = []
    declines = [(m.start(), m.group(0)) for m in lexicon.DECLINE.finditer(low)]
    for m in lexicon.DECLINE.finditer(low):
        if _DECLINE_WITH.match(low, m.end()):
            sig.unsure.append(f"{m.group(0)} … (a part negated)")
    sig.decline.extend(d for _, d in declines)
    for m in lexicon.ACCEPT.finditer(low):
        phrase = m.group(0)
        if _SUBORDINATE.search(low[max(0, m.start() - 60) : m.start()]):
            # "ik weet niet of ik kan komen", "if I can come": not a statement of coming.
            continue
        after = low[m.end() :]
        negation = _NEGATION_AFTER.match(after)
        if negation and _PARTIAL_NEGATION.match(after[negation.end() :]):
            sig.unsure.append(
                f"{phrase}{after[: negation.end()]} … (a part negated, or a contrast)"
            )
            continue
        if negation or re.search(r"\b(?:niet|not|geen)\b", phrase):
            sig.decline.append(phrase + " (negated)")
            continue
        # "Ik zou graag komen, maar ik kan niet": the accept is politeness before a "but".
        but = _BUT.search(low, m.end())
        if but and any(pos > but.start() for pos, _ in declines):
            sig.regret.append(phrase + " (…but)")
            continue
        if _BUT_REGRET.match(after[:300]):
            # "I'd love to come but unfortunately I have a council meeting": likely a no, but
            # "ik kom graag, maar helaas pas om 14:00" is a yes; a human reads it.
            sig.unsure.append(f"{phrase} … but with regret")
            continue
        sig.accept.append(phrase)
        accept_at.append(m.start())
    for pos, hedge in hedges:
        if not any(_same_clause(low, pos, a) for a in accept_at):
            sig.stray_hedges.append(hedge)
    if not sig.accept:
        for m in lexicon.ACCEPT_IMPLIED.finditer(low):
            if not re.search(r"\b(?:niet|not|geen|no)\b", m.group(0)) and not _NEGATION_AFTER.match(
                low[m.end() :]
            ):
                sig.accept.append(m.group(0))
    first_clause = re.split(r"[,:;!.]", low, maxsplit=1)[0] + ("," if "," in low else "")
    # Also on the words as written: "Graag afmelden" has its "afmelden" blanked by now.
    if lexicon.YES.match(low) and lexicon.YES.match(part.lower()):
        sig.yes.append(first_clause.strip())
    elif lexicon.NO.match(low):
        sig.no.append(first_clause.strip())
    correction = lexicon.SELF_CORRECTION.search(low)
    if correction and sig.yes:
        sig.no.append(correction.group(0).strip())


def _same_clause(text: str, a: int, b: int) -> bool:
    lo, hi = min(a, b), max(a, b)
    return not _CLAUSE_SPLIT.search(text, lo, hi)


def decide(
    sig: Signals, *, has_question: bool, substitute: bool, unsubscribe: bool = False
) -> tuple[ReplyKind, str]:
    """The kind and a short reason (for the notes)."""
    accept, decline = bool(sig.accept), bool(sig.decline or sig.cancel)
    if unsubscribe and not (accept or decline or sig.tentative):
        return ReplyKind.UNCLEAR, "an unsubscribe request, no answer"
    if sig.unsure:
        return ReplyKind.UNCLEAR, sig.unsure[0]
    if substitute:
        # "Wethouder Bos komt in mijn plaats" is about the substitute, not the invitee.
        accept = any(not a.startswith(("wethouder", "de wethouder")) for a in sig.accept)
        if accept and not decline:
            return ReplyKind.UNCLEAR, "substitute named but the invitee also says they come"
        return ReplyKind.DECLINE, "a substitute comes instead"
    if accept and decline:
        return (
            ReplyKind.UNCLEAR,
            f"contradiction: {sig.accept[0]!r} vs {(sig.decline + sig.cancel)[0]!r}",
        )
    if sig.tentative and decline:
        return ReplyKind.UNCLEAR, f"hedged decline: {sig.tentative[0]!r}"
    if sig.tentative and accept and len(sig.stray_hedges) >= len(sig.tentative):
        # "Ik kom, maar misschien iets later", "I'll be there, probably the work session": the
        # hedge may be about a detail; neither a firm yes nor a tentative one.
        return ReplyKind.UNCLEAR, f"acceptance beside a hedge: {sig.stray_hedges[0]!r}"
    if sig.tentative:
        if sig.no and not accept:
            return ReplyKind.UNCLEAR, "hedged no"
        return ReplyKind.TENTATIVE, f"hedge: {sig.tentative[0]!r}"
    if accept:
        if sig.no:
            return ReplyKind.UNCLEAR, f"'no' and {sig.accept[0]!r} together"
        if sig.regret:
            return ReplyKind.UNCLEAR, f"regret and {sig.accept[0]!r} together"
        return ReplyKind.ACCEPT, f"accept: {sig.accept[0]!r}"
    if decline:
        if sig.yes and not sig.softened:
            return ReplyKind.UNCLEAR, f"'yes' and {(sig.decline + sig.cancel)[0]!r} together"
        return ReplyKind.DECLINE, f"decline: {(sig.cancel + sig.decline)[0]!r}"
    if sig.regret:
        if sig.yes:
            return ReplyKind.UNCLEAR, "'yes' and regret together"
        return ReplyKind.DECLINE, f"regret: {sig.regret[0]!r}"
    if sig.yes and sig.no:
        return ReplyKind.UNCLEAR, "both yes and no"
    if sig.yes:
        return ReplyKind.ACCEPT, f"yes: {sig.yes[0]!r}"
    if sig.no:
        return ReplyKind.DECLINE, f"no: {sig.no[0]!r}"
    if has_question:
        return ReplyKind.QUESTION, "a question without an answer"
    return ReplyKind.UNCLEAR, "no answer found"


def find_question(text: str) -> bool:
    if any(s.question for s in _sentences(text)):
        return True
    return bool(lexicon.QUESTION_PHRASE.search(text))


def find_dietary(text: str) -> str | None:
    phrases: list[str] = []
    low = text.lower()
    for m in lexicon.DIETARY.finditer(low):
        phrase = m.group(0).strip()
        if not phrase.startswith(("geen ", "no ")) and lexicon.DIETARY_NEGATION.search(
            low[max(0, m.start() - 20) : m.start()]
        ):
            continue
        if phrase not in phrases:
            phrases.append(phrase)
    return ", ".join(phrases) if phrases else None


def _statement_text(text: str) -> str:
    """The text with the asking part of question sentences blanked (same length, so offsets
    still match): "Ik ben vegan - is er een vegan lunch?" keeps "Ik ben vegan"."""
    chars = list(text)
    for s in _sentences(text):
        if not s.question:
            continue
        keep: set[int] = set()
        for a, b in _statement_spans(s):
            keep.update(range(s.start + a, s.start + b))
        for i in range(s.start, s.start + len(s.text)):
            if chars[i] != "\n" and i not in keep:
                chars[i] = " "
    return "".join(chars)


def _assign_sessions(
    text: str, mentions: list[SessionMention], companions: list[people.Person]
) -> tuple[str | None, dict[int, str]]:
    """The invitee's session and each companion's (by index) when the text gives one."""
    own: str | None = None
    theirs: dict[int, str] = {}
    for mention in mentions:
        idx = _companion_owning(text, mention, companions)
        if idx is not None and (
            own is not None or _explicitly_theirs(text, mention, companions[idx])
        ):
            theirs.setdefault(idx, mention.key)
        elif own is None:
            own = mention.key
    return own, theirs


def _companion_owning(
    text: str, mention: SessionMention, companions: list[people.Person]
) -> int | None:
    """The companion named earlier in the same sentence as `mention` (or in the sentence just
    before, when this one starts with "hij/zij/he/she")."""
    sent_start = max(text.rfind(c, 0, mention.start) for c in ".!?;\n") + 1
    best: int | None = None
    for i, person in enumerate(companions):
        if sent_start <= person.end <= mention.start:
            best = i
    if best is None:
        head = text[sent_start : mention.start].strip().lower()
        clause = re.split(r"[,:]", head)[-1].strip()
        if re.match(r"^(?:en\s+)?(?:ik|i|ikzelf|zelf|myself)\b", clause):
            return None  # "Hij wil naar veiligheid, ik naar wonen": this one is the writer's
        named = [i for i, p in enumerate(companions) if p.name and head.startswith(p.name.lower())]
        if named:
            return named[0]  # "… met collega Karin Smit. Karin Smit gaat naar werk"
        if re.match(r"^(?:hij|zij|ze|he|she)\b", head) and companions:
            prev = [i for i, p in enumerate(companions) if p.end <= sent_start]
            best = prev[-1] if prev else None
    return best


def _explicitly_theirs(text: str, mention: SessionMention, person: people.Person) -> bool:
    between = text[person.end : mention.start]
    sent_start = max(text.rfind(c, 0, mention.start) for c in ".!?;\n") + 1
    if person.end <= sent_start:  # "… Karin Smit. Zij kiest werk."
        return True
    # "met Karin Smit, die graag naar werk wil" / "Karin gaat naar werk";
    # not "met Karin naar wonen".
    return bool(_THIRD_PERSON.search(between)) and not re.search(r"\b(?:ik|i)\b", between, re.I)


# "Mijn collega Jan Bos wil naar werk": someone chooses a session in their own clause.
_CHOOSES = re.compile(
    r"(?P<who>.+?)\s+(?:wil|wilt|gaat|kiest|komt|zou|wants|will|would|goes|chooses|prefers)\b"
    r"(?:\s+[\w'-]+){0,4}\s*$",
    re.IGNORECASE,
)
# The invitee named by a secretary ("Wethouder Bos … kiest voor wonen") is no colleague.
_INVITEE_ROLE = re.compile(
    r"^(?:de\s+)?(?:wethouder|burgemeester|gedeputeerde|alderman|mayor)\b", re.IGNORECASE
)


def _colleague_choosing(
    text: str,
    mention: SessionMention,
    companions: list[people.Person],
    substitute: people.Person | None,
) -> people.Person | None:
    """A colleague named as the one who chooses `mention`, when they are neither a companion
    nor the substitute: "Ik kom, deelsessie onderwijs. Mijn collega Jan Bos wil naar werk." The
    writer says Jan Bos comes too, but not as one of the phrases a companion is read from; taking
    only the writer's own answer would drop him, so the reply goes to a human."""
    # (at most 160 characters back: a clause, and a hostile reply stays fast)
    clause_start = max(
        text.rfind(c, max(0, mention.start - 160), mention.start) for c in ",;:.!?\n"
    )
    clause_start = max(clause_start + 1, mention.start - 160)
    m = _CHOOSES.match(text, clause_start, mention.start)
    if m is None:
        return None
    who = people.find_subject(text, clause_start, m.end("who"))
    if who is None or not _unknown(text, who, companions, substitute):
        return None
    return who


# "…, maar mijn collega Ans de Wit wil graag komen", "mijn collega wel": someone else comes.
_COMES = re.compile(
    r"(?P<who>.+?)\s+(?:"
    r"(?:wil|zal|gaat|kan)\s+(?:(?:graag|wel|ook|zeker|dan)\s+)*(?:komen|aanwezig\s+zijn|erbij\s+zijn|"
    r"deelnemen|aanschuiven)"
    r"|(?:komt|is|gaat)\s+(?:(?:graag|wel|ook|zeker|dan)\s+)*(?:er\s+)?(?:aanwezig|erbij|bij)?"
    r"|wel"
    r"|(?:will|would\s+like\s+to|wants\s+to|is\s+happy\s+to|is)\s+(?:(?:gladly|also)\s+)?"
    r"(?:attend|attending|come|coming|join|joining|be\s+there))"
    r"\s*[.!]*\s*",
    re.IGNORECASE,
)


def _colleague_coming(
    text: str, companions: list[people.Person], substitute: people.Person | None
) -> people.Person | None:
    """A colleague said to come ("Ik meld mij af, maar mijn collega Ans de Wit wil graag
    komen") who was not read as a companion or the substitute: reading only the writer's answer
    would drop them, so a human reads it."""
    for clause in re.finditer(r"[^,;:.!?\n]{1,300}", text):
        m = _COMES.fullmatch(clause.group(0))
        if m is None or re.search(r"\b(?:niet|not|geen|nooit|never)\b", clause.group(0), re.I):
            continue
        who = people.find_subject(text, clause.start(), clause.start() + m.end("who"))
        if who is not None and _unknown(text, who, companions, substitute):
            return who
    return None


def _unknown(
    text: str, who: people.Person, companions: list[people.Person], substitute: people.Person | None
) -> bool:
    """Neither the invitee named by a secretary, a companion nor the substitute."""
    if _INVITEE_ROLE.match(text[who.start : who.end].lstrip()):
        return False
    for known in (*companions, *([substitute] if substitute else [])):
        if (who.start < known.end and known.start < who.end) or (
            who.name and who.name == known.name
        ):
            return False
    return True


def read_text(text: str, sessions: Sequence[SessionSpec]) -> TextReading:
    statements = _statement_text(text)
    has_question = find_question(text)
    substitute = people.find_substitute(statements)
    companions = people.find_companions(statements, substitute)
    sig = collect_signals(text)
    unsubscribe = bool(lexicon.UNSUBSCRIBE.search(statements.lower()))
    kind, reason = decide(
        sig, has_question=has_question, substitute=substitute is not None, unsubscribe=unsubscribe
    )
    notes = [reason]
    mentions = find_sessions(statements, sessions)
    own, theirs = _assign_sessions(statements, mentions, companions)
    chosen = [
        (mention, who)
        for mention in mentions
        if (who := _colleague_choosing(statements, mention, companions, substitute))
    ]
    coming = _colleague_coming(statements, companions, substitute)
    doubt = people.pairing_doubt(statements, companions, substitute)
    if doubt is not None and kind is not ReplyKind.UNCLEAR:
        # Who comes with which address is not clear: a wrong pairing would register one
        # person's address under another's name.
        kind, notes = ReplyKind.UNCLEAR, [doubt]
    if coming is not None and kind is not ReplyKind.UNCLEAR:
        kind = ReplyKind.UNCLEAR
        notes = [f"a colleague ({coming.name or 'unnamed'}) comes but is not read as a companion"]
    if chosen:
        # The colleague's session is not the writer's (an unclear reply with a session still
        # sets the session of someone already registered).
        taken = {c[0] for c in chosen}
        theirs_only = [m for m in mentions if m not in taken]
        own, theirs = _assign_sessions(statements, theirs_only, companions)
        chooser = chosen[0][1]
        kind = ReplyKind.UNCLEAR
        named = chooser.name or "unnamed"
        notes = [f"a colleague ({named}) chooses a session but is not read as a companion"]
    sub_session: str | None = None
    if substitute is not None and own is not None and not theirs:
        # "Collega Jansen komt in mijn plaats, deelsessie wonen": the choice is the substitute's,
        # the invitee (who declines) has none.
        sub_session, own = own, None
    unsure_around = _any_signal(sig) or coming or chosen or doubt
    if own is not None and kind is ReplyKind.UNCLEAR and unsure_around:
        # An unclear reply with a session sets the session of someone already registered
        # ("wonen graag" after registering). That is only safe when the session is all it
        # says; beside a contradictory or hedged answer the session is as unsure as the rest.
        own = None
        notes.append("session not taken: the answer around it is unsure")
    cancel = bool(sig.cancel)
    return TextReading(
        kind=kind,
        session=own,
        companions=tuple(
            PersonMention(p.name, p.email, theirs.get(i)) for i, p in enumerate(companions)
        ),
        substitute=(
            PersonMention(substitute.name, substitute.email, sub_session) if substitute else None
        ),
        dietary=find_dietary(statements),
        has_question=has_question,
        mentions_cancellation=cancel,
        wants_unsubscribe=unsubscribe,
        notes=tuple(notes),
        says_nothing=not (_any_signal(sig) or has_question or unsubscribe or substitute),
    )


def _any_signal(sig: Signals) -> bool:
    return bool(
        sig.accept or sig.decline or sig.tentative or sig.regret or sig.cancel or sig.yes or sig.no
    )
