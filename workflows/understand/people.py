"""Colleagues named in a reply: companions who come too, and a substitute who comes instead.

A trigger phrase ("met mijn collega", "neem … mee", "in mijn plaats", "on my behalf") is found
case-insensitively; the person is then read case-sensitively next to it: a role word
("collega", "beleidsadviseur") and/or a capitalised name with Dutch particles ("Karin van der
Smit", "J. de Vries", "mevrouw Bakker"), and an e-mail address in the same sentence. A role
without a name gives a person with name "" (the rules then ask for the name).

Surname particles stay part of the name ("Jan de Boer", "Sanne van 't Hof", "collega De
Vries", "mevrouw van der Meer"); a list after the trigger ("mijn collega's Karin Smit en Jan
de Boer") gives one person each. A negated "komt niet mee" names nobody, nor does a negated
trigger ("ik kom, maar niet met een collega", "without my colleague").

An address belongs to a person only when it is written right next to the name: "Naam
(adres)", "Naam <adres>", "Naam [adres]", "Naam, adres", "Naam: adres", "Naam - adres", "Naam
(e-mail: adres)", or "adres (Naam)". An address further on in the sentence is nobody's: in
"Karin Smit heeft zich afgemeld maar Ahmed Benali (a.benali@…) gaat mee" it is Ahmed's, and
Karin is no companion at all. The person before "… gaat mee" is looked for in the last part of
the clause, after "maar/but/en/and/want/omdat/…". Someone said not to come ("X heeft zich
afgemeld", "X kan niet", "X komt niet", "X can't make it", "zonder X") is never a companion,
even when named as one elsewhere in the reply. `pairing_doubt` says when the reply leaves it
unclear who comes with which address (an address next to no companion in a companion's
sentence, or a companion also said not to come): such a reply is for a human.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

_ROLE = (
    r"(?:collegawethouders|collegawethouder|collega-wethouders|collega-wethouder|collega['’]s|"
    r"collegae|collega|colleagues|beleidsmedewerker|beleidsadviseur|adviseur|"
    r"medewerker|griffier|secretaris|secretaresse|partner|vrouw|man|echtgeno(?:te|ot)|wethouder|"
    r"burgemeester|raadslid|directeur|gemeentesecretaris|projectleider|programmamanager|"
    r"ambtenaar|plaatsvervanger|vervanger|opvolger|teamleider|manager|assistent|"
    r"colleague|adviser|advisor|assistant|deputy|alderman|councillor|director|policy\s+officer|"
    r"wife|husband|husband|chief\s+of\s+staff|iemand|someone|somebody|een\s+ander)"
)
_TITLE = (
    r"(?:mevrouw|mevr\.?|mw\.?|meneer|mijnheer|dhr\.?|de\s+heer|heer|mr\.?|mrs\.?|ms\.?|drs\.?|dr\.?"
    r"|ir\.?)"
)
_CAP = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’]+(?:-[A-Za-zÀ-ÿ'’]+)*"
_PARTICLE = r"(?:van|de|der|den|ter|ten|te|het|'t|in|op|la|le|du|di|von|da|el|al|vd)"
_INITIALS = r"(?:[A-Z]\.\s?){1,4}"
_NAME = (
    rf"(?:(?i:{_TITLE})\s+)?"
    rf"(?:{_INITIALS}\s*(?:{_PARTICLE}\s+)*{_CAP}|{_CAP}(?:\s+(?:{_PARTICLE}\s+)*{_CAP}){{0,3}})"
)
# A surname that starts with its particles: "collega van der Berg", "mevrouw de Vries".
_SURNAME = rf"(?:{_PARTICLE}\s+)+{_CAP}(?:-{_CAP})?"
_NAME_RE = re.compile(_NAME)
_EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_PERSON_RE = re.compile(
    rf"(?P<det>(?i:(?:mijn|onze|een|de|het|zijn|haar|our|my|a|the)\s+))?"
    rf"(?P<role>(?i:{_ROLE})(?![\w'’]))?[ \t]*(?:(?i:wethouder|alderman)\s+)?"
    rf"(?P<name>{_NAME}|(?<=[ \t]){_SURNAME})?[ \t]*"
    rf"(?P<email>[(<\[]?\s*{_EMAIL_RE.pattern}\s*[)>\]]?)?"
)
# An address right after a name, when not in the mention itself ("Naam (adres)" and "Naam
# <adres>" are): "Naam, adres", "Naam: adres", "Naam - adres", "Naam (e-mail: adres)".
_ADDR_LABEL = r"(?:e-?mail(?:[ \t-]?ad(?:res|dress))?|mailadres|adres|address)[ \t]*:?[ \t]*"
_ADJACENT_EMAIL_RE = re.compile(
    rf"[ \t]*(?:[(<\[][ \t]*(?i:{_ADDR_LABEL})?(?P<bracketed>{_EMAIL_RE.pattern})[ \t]*[)>\]]"
    rf"|(?:[,:]|[ \t]?[-–—])[ \t]*(?i:{_ADDR_LABEL})?(?P<listed>{_EMAIL_RE.pattern}))"
)
# A name in brackets right after an address: "k.smit@gemeente.example (Karin Smit)".
_NAME_AFTER_ADDRESS_RE = re.compile(rf"[ \t]*[(\[][ \t]*(?P<name>{_NAME})[ \t]*[)\]]")
_PLURAL_ROLE_RE = re.compile(r"(?i:collega['’]s|collegae|colleagues|collega-?wethouders)")
# A further person in a list: "met mijn collega's Karin Smit en Jan de Boer".
_AND_RE = re.compile(r"[ \t]*(?:,|(?i:en|and|&))[ \t]+")
# Capitalised words that start sentences or name things, never a person.
_NOT_NAMES = frozenset(
    [
        "ik",
        "wij",
        "we",
        "zij",
        "ze",
        "hij",
        "het",
        "de",
        "een",
        "dit",
        "dat",
        "die",
        "deze",
        "graag",
        "ja",
        "nee",
        "ook",
        "en",
        "maar",
        "want",
        "dus",
        "dan",
        "deelsessie",
        "sessie",
        "gemeente",
        "wethouder",
        "burgemeester",
        "rotterdam",
        "zuid",
        "leren",
        "huis",
        "wijk",
        "ministerie",
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
        "maandag",
        "dinsdag",
        "woensdag",
        "donderdag",
        "vrijdag",
        "zaterdag",
        "zondag",
        "hartelijke",
        "vriendelijke",
        "met",
        "i",
        "he",
        "she",
        "they",
        "the",
        "a",
        "and",
        "but",
        "so",
        "we",
        "you",
        "my",
        "our",
        "yes",
        "no",
        "please",
        "thanks",
        "thank",
        "dear",
        "hi",
        "hello",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "onderwijs",
        "werk",
        "wonen",
        "veiligheid",
        "education",
        "work",
        "housing",
        "safety",
        "helaas",
        "namens",
        "in",
        "mijn",
        "plaats",
        "verder",
        "tot",
        "groet",
        "groeten",
        "mvg",
        "beste",
        "kind",
        "best",
        "regards",
        "hierbij",
        "bij",
        "zal",
        "komt",
        "gaat",
        "kan",
        "wil",
    ]
)

_SUBSTITUTE_AFTER = re.compile(  # person comes before the phrase: "X komt in mijn plaats"
    r"(?:\b(?:komt|gaat|zal|kan|wil|neemt|will|would|can|is\s+going\s+to)\s+(?:\w+\s+){0,3}?"
    r"(?:in\s+(?:mijn|zijn|haar)\s+plaats|namens\s+(?:mij|hem|haar)|"
    r"in\s+plaats\s+van\s+(?:mij|hem|haar)|(?:mij|hem|haar)\s+vervangen|"
    r"als\s+(?:mijn\s+|zijn\s+|haar\s+)?vervang(?:er|ster)|(?:mijn|zijn|haar)\s+plaats\s+(?:in)?nemen|"
    r"(?:attend|come|go|join|be\s+there)\s+(?:instead|in\s+my\s+place|on\s+my\s+behalf)|"
    r"replace\s+(?:me|him|her)|take\s+(?:my|his|her)\s+place|instead\s+of\s+(?:me|him|her))"
    r"|\bvervangt\s+(?:mij|me|hem|haar)\b|\bneemt\s+(?:mijn|zijn|haar)\s+plaats\b)",
    re.IGNORECASE,
)
_SUBSTITUTE_BEFORE = re.compile(  # person comes after the phrase: "in mijn plaats komt X"
    r"(?:\b(?:in\s+(?:mijn|zijn|haar)\s+plaats|namens\s+(?:mij|hem|haar)|"
    r"in\s+plaats\s+van\s+(?:mij|hem|haar)|als\s+(?:mijn\s+|zijn\s+|haar\s+)?"
    r"vervang(?:er|ster))\s*,?\s+(?:komt|gaat|zal|wil)\s+(?:er\s+)?"
    # One more lowercase word ("komt mevrouw X", "komt graag X"), never the first name itself.
    r"(?:(?-i:[a-zà-ÿ][\w'’]*)\s+)?"
    r"|\b(?:laat|zal)\s+(?:ik\s+)?(?:mij|me)\s+(?:\w+\s+)?(?:laten\s+)?vervangen\s+door\s+"
    # A secretary: "Zij laat zich vervangen door haar collega X", "hij wordt vervangen door X";
    # also "laat zich/mij vertegenwoordigen door X".
    r"|\b(?:laat|zal)\s+(?:zij\s+|hij\s+|ze\s+)?(?:zich|mij|me)\s+(?:\w+\s+)?(?:laten\s+)?"
    r"(?:vervangen|vertegenwoordigen)\s+door\s+"
    r"|\b(?:wordt|word)\s+(?:\w+\s+)?(?:vervangen|vertegenwoordigd)\s+door\s+"
    r"|\bmijn\s+(?:vervanger|vervangster|plaatsvervanger)\s+(?:is|wordt)\s+"
    r"|\b(?:in\s+my\s+place|on\s+my\s+behalf|instead\s+of\s+me)\s*,?\s+"
    r"|\b(?:i\s*(?:will|'ll)\s+send|ik\s+stuur|stuur\s+ik)\s+(?:in\s+plaats\s+daarvan\s+)?"
    # "Ik ben verhinderd maar stuur graag iemand anders": the one sent is the substitute.
    r"|\b(?:maar|dus|wel)\s+stuur\s+(?:ik\s+)?(?:graag\s+|wel\s+|dan\s+)*"
    r"|\b(?:i\s*(?:will|'ll|am)\s+be(?:ing)?\s+replaced\s+by|will\s+be\s+represented\s+by|"
    r"wordt\s+vertegenwoordigd\s+door|vertegenwoordigt\s+mij)\s+)",
    re.IGNORECASE,
)
_COMPANION_BEFORE = re.compile(  # person after the phrase: "met mijn collega X"
    r"(?:\b(?:samen\s+met|met|together\s+with|along\s+with|with|accompanied\s+by|"
    r"vergezeld\s+door|plus)\s+"
    r"|\b(?:neem|nemen|bring|bringing)\s+(?:ik\s+|i\s+)?(?:graag\s+|ook\s+|also\s+)*"
    r"|\b(?:meld|register)\s+(?:ik\s+)?(?:graag\s+)?(?:ook\s+|also\s+)"
    r"|\book\s+(?=(?:mijn|onze)\s+)"
    r"|\b(?:ik|ikzelf|i|myself)\s+(?:en|and)\s+"
    rf"(?=(?:mijn|onze|my|our)\s|{_ROLE}\b|(?-i:[A-Z])))",
    re.IGNORECASE,
)
_COMPANION_AFTER = re.compile(  # person before the phrase: "X komt ook mee"
    r"\b(?:komt|gaat|wil|zal|kan|will|would|is)\s+(?:\w+\s+){0,2}?(?:ook\s+mee|mee|ook\b|"
    r"also\s+(?:attend|come|join)|join\s+(?:me|us)|come\s+along|come\s+too|be\s+joining)",
    re.IGNORECASE,
)
_NOT_ALONE = re.compile(
    r"\b(?:kom|come)\s+(?:\w+\s+)?(?:niet\s+alleen|not\s+alone)\b|\bplus\s*(?:one|één|1)\b|\+1\b"
    r"|\bmet\s+(?:z['’]n|zijn|ons)\s+(?:twee(?:ë|e)n|tweetjes)\b|\bthe\s+two\s+of\s+us\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Person:
    name: str
    email: str | None
    start: int  # where the mention is in the text
    end: int


_TITLE_PREFIX_RE = re.compile(rf"^(?i:{_TITLE})\s+")
# Clause ends, but not the full stop of an initial or a title ("J. de Vries", "dhr. Bos").
_CLAUSE_END_RE = re.compile(
    r"(?<!\b[A-Z])(?<!\b[Dd]hr)(?<!\b[Mm]w)(?<!\b[Mm]evr)(?<!\b[Dd]r)(?<!\b[Dd]rs)(?<!\b[Ii]r)"
    r"(?<!\b[Mm]r)(?<!\b[Mm]rs)(?<!\b[Mm]s)(?:[.!?;](?=\s|$)|[,\n])"
)


def _clean_name(name: str) -> str:
    """Drop titles and trailing words that are not part of a name ("mevrouw Karin Smit Graag"
    → "Karin Smit"): the name is what goes on a badge and into a greeting."""
    name = _TITLE_PREFIX_RE.sub("", name.strip())
    words = name.split()
    kept: list[str] = []
    for w in words:
        if w.lower().strip(".,") in _NOT_NAMES and not re.fullmatch(_PARTICLE, w, re.IGNORECASE):
            break
        kept.append(w)
    # Particles may not end a name ("Jan de").
    while kept and re.fullmatch(_PARTICLE, kept[-1], re.IGNORECASE):
        kept.pop()
    return " ".join(kept)


def _person_at(text: str, pos: int, limit: int) -> Person | None:
    """A role and/or name (and e-mail) starting at `pos`, within `limit` characters."""
    segment = text[pos : pos + limit]
    m = _PERSON_RE.match(segment)
    if not m:
        return None
    role, name, email = m.group("role"), m.group("name"), m.group("email")
    det = (m.group("det") or "").strip()
    if name and not role and re.fullmatch(_PARTICLE, det, re.IGNORECASE):
        # "met de Boer": "de" is the surname's particle here, not an article.
        name = f"{det} {name}"
    name = _clean_name(name or "")
    if not (role or name or email):
        return None
    end = pos + m.end()
    in_mention = _EMAIL_RE.search(email) if email else None
    addr = in_mention.group(0).lower() if in_mention else None
    if addr is None and (role or name):
        # "Naam, adres", "Naam (e-mail: adres)": only right next to the name.
        beside = _ADJACENT_EMAIL_RE.match(text, end, pos + limit)
        if beside:
            addr = (beside.group("bracketed") or beside.group("listed")).lower()
            end = beside.end()
    elif addr is not None and not name:
        # "adres (Naam)"
        named = _NAME_AFTER_ADDRESS_RE.match(text, end, pos + limit)
        if named and _clean_name(named.group("name")):
            name = _clean_name(named.group("name"))
            end = named.end()
    return Person(name, addr, pos, end)


_LOOK_BACK = 300
_CONJUNCTION_RE = re.compile(
    r"\b(?:maar|doch|echter|want|omdat|terwijl|hoewel|en|but|however|because|while|whereas|"
    r"though|although|and)\b",
    re.IGNORECASE,
)


def _person_before(text: str, pos: int) -> Person | None:
    """The first role/name in the clause that ends at `pos` ("collega Jansen komt …")."""
    # (a clause is short: look back at most _LOOK_BACK characters, so a long reply of many
    # "… niet," stays linear)
    window = max(0, pos - _LOOK_BACK)
    ends = [m.end() for m in _CLAUSE_END_RE.finditer(text, window, pos)]
    clause_start = ends[-1] if ends else window
    if not text[clause_start:pos].strip() and len(ends) >= 2 and text[ends[-1] - 1] == ",":
        # An apposition ends at the verb: "My deputy, Mark Jansen, will attend in my place".
        clause_start = ends[-2]
    # "Karin Smit heeft zich afgemeld maar Ahmed Benali gaat mee": the one who goes is named
    # after the last conjunction, not at the start of the clause.
    for conj in _CONJUNCTION_RE.finditer(text, clause_start, pos):
        clause_start = conj.end()
    clause = text[clause_start:pos]
    best: Person | None = None
    for m in re.finditer(rf"(?i:\b{_ROLE}\b)|{_NAME}|{_EMAIL_RE.pattern}", clause):
        cand = _person_at(text, clause_start + m.start(), pos - clause_start - m.start() + 1)
        if cand and (cand.name or cand.email or re.match(rf"(?i:{_ROLE})", m.group(0))):
            best = cand
            break  # the first person-like phrase in the clause is its subject
    return best


def find_subject(text: str, start: int, end: int) -> Person | None:
    """A role or name standing as the subject of text[start:end] ("mijn collega Jan Bos"), not
    a pronoun ("ik", "hij"). Only that piece is read (a clause, not the whole reply)."""
    piece = text[start:end]
    person = _person_before(piece, len(piece))
    if person is None:
        return None
    if not (person.name or person.email) and not re.search(
        rf"(?i:\b{_ROLE}\b)", piece[person.start : person.end]
    ):
        return None
    # "mijn collega gaat naar wonen": a role without a name is someone too.
    return Person(person.name, person.email, start + person.start, start + person.end)


def find_substitute(text: str) -> Person | None:
    for m in _SUBSTITUTE_BEFORE.finditer(text):
        person = _person_at(text, m.end(), 160)
        if person:
            return _with_their_address(text, person, m.end())
    for m in _SUBSTITUTE_AFTER.finditer(text):
        person = _person_before(text, m.start())
        if person:
            return _with_their_address(text, person, m.end())
    return None


# "…komt in mijn plaats, zijn e-mailadres is x@y", "her email address is x@y": the address of
# the one person just named, given with a pronoun in the same or the next sentence.
_THEIR_ADDRESS_RE = re.compile(
    rf"[^\n]{{0,40}}?\b(?:zijn|haar|his|her)[ \t]+(?i:{_ADDR_LABEL})"
    rf"(?:is[ \t]+|luidt[ \t]+)?(?P<email>{_EMAIL_RE.pattern})",
    re.IGNORECASE,
)


def _with_their_address(text: str, person: Person, after: int) -> Person:
    """The person with the address a pronoun gives right after their mention, if they had none
    and no other address comes between."""
    if person.email is not None:
        return person
    m = _THEIR_ADDRESS_RE.match(text, max(after, person.end))
    if m is None or _EMAIL_RE.search(text, max(after, person.end), m.start("email")):
        return person
    return Person(person.name, m.group("email").lower(), person.start, m.end())


# A negated trigger: "niet met een collega", "zonder", "not with".
_NEGATED_TRIGGER = re.compile(
    r"\b(?:niet|not|geen|zonder|without)\s+(?:(?!alleen|alone|only)[a-z]+\s+)?$", re.IGNORECASE
)


def find_companions(text: str, substitute: Person | None = None) -> list[Person]:
    """The companions named in `text`; nobody who is said not to come."""
    negated = _not_coming(text)
    return [p for p in _companion_candidates(text, substitute) if not _among(p, negated)]


def _companion_candidates(text: str, substitute: Person | None) -> list[Person]:
    found: list[Person] = []
    for m in _COMPANION_BEFORE.finditer(text):
        if _NEGATED_TRIGGER.search(text, max(0, m.start() - 24), m.start()):
            continue  # "ik kom, maar niet met een collega"
        person = _person_at(text, m.end(), 160)
        if person and _is_person(person, text):
            found.append(person)
            found.extend(_listed_after(text, person))
    for m in _COMPANION_AFTER.finditer(text):
        if re.search(r"(?i)\b(?:niet|not|geen|never|nooit)\b", m.group(0)):
            continue  # "mijn collega komt niet mee"
        person = _person_before(text, m.start())
        if person and _is_person(person, text):
            found.append(person)
    found = [p for p in found if not (substitute and _overlaps(p, substitute))]
    not_alone = _NOT_ALONE.search(text)
    if not found and not_alone:
        found.append(Person("", None, not_alone.start(), not_alone.end()))
    return _dedupe(found)


# Someone said not to come, named before the words: "Karin Smit heeft zich (helaas) afgemeld",
# "Karin kan niet", "Karin komt toch niet", "Karin is verhinderd", "Karin can't make it",
# "Karin Smit niet." ("Ahmed gaat mee, Karin niet").
_NOT_COMING_AFTER = re.compile(
    r"\b(?:heeft|had|hebben)\s+zich\s+(?:\w+\s+){0,3}?(?:afgemeld|teruggetrokken)\b"
    r"|\b(?:meldt|meldde)\s+zich\s+(?:\w+\s+){0,3}?af\b"
    # "kan niet", "komt helaas niet mee", "kan toch niet komen"; not "wil geen vlees", "kan niet
    # lang blijven", "kan niet wachten": the "niet" ends the clause or is about coming.
    r"|\b(?:kan|kon|komt|kwam|gaat|ging|zal|wil|mag)\s+(?:\w+\s+){0,3}?niet\b"
    r"(?=[ \t]*(?:[.,;:!?\n)]|$|(?:maar|but|en|and|helaas|toch|meer|komen|mee|meekomen|aanwezig"
    r"|erbij|bij|deelnemen|aansluiten|want|omdat|vanwege|wegens|door|ivm|i\.v\.m\.)(?!\w)))"
    r"|\b(?:is|was)\s+(?:\w+\s+){0,2}?(?:verhinderd|ziek|afwezig|uitgevallen)\b"
    r"|\bmoet\s+(?:\w+\s+){0,2}?(?:afzeggen|afmelden|verstek\s+laten\s+gaan)\b"
    r"|\b(?:zegt|zei|valt|viel|haakt|haakte)\s+(?:\w+\s+){0,2}?af\b"
    r"|\b(?:can['’]?t|cannot|can\s+not|could\s*n['’]?t|could\s+not|won['’]?t|will\s+not|"
    r"is\s*n['’]?t|is\s+not|was\s*n['’]?t|was\s+not|does\s*n['’]?t|does\s+not)\s+"
    r"(?:\w+\s+){0,2}?(?:make\s+it|come|attend|join|be\s+(?:there|coming|attending|joining|present)"
    r"|coming|attending|joining|available)\b"
    r"|\b(?:has|had|have)\s+(?:\w+\s+)?(?:cancell?ed|declined|withdrawn|pulled\s+out|"
    r"dropped\s+out|backed\s+out)\b"
    r"|\bis\s+(?:\w+\s+)?(?:unable|not\s+able)\s+to\b"
    r"|(?<=[\w)>\]])[ \t]+(?:niet|not)(?=[ \t]*(?:[.,;!?\n]|$))",
    re.IGNORECASE,
)
# Named after the words: "zonder Karin Smit", "without John Smith".
_NOT_COMING_BEFORE = re.compile(r"\b(?:zonder|without|behalve|except)\s+", re.IGNORECASE)


def _not_coming(text: str) -> list[Person]:
    """People the reply says do not come."""
    people: list[Person] = []
    for m in _NOT_COMING_AFTER.finditer(text):
        person = _person_before(text, m.start())
        if person and (person.name or person.email):
            people.append(person)
    for m in _NOT_COMING_BEFORE.finditer(text):
        person = _person_at(text, m.end(), 160)
        if person and (person.name or person.email):
            people.append(person)
    return people


def _among(person: Person, others: list[Person]) -> bool:
    """Whether `person` is one of `others`: the same mention, address or name; a first name
    or surname alone ("Karin kan toch niet") names the "Karin Smit" named before."""
    for other in others:
        if person.start < other.end and other.start < person.end:
            return True
        if person.email and person.email == other.email:
            return True
        mine, theirs = person.name.lower().split(), other.name.lower().split()
        if (
            mine
            and theirs
            and (mine == theirs or (len(theirs) == 1 and theirs[0] in (mine[0], mine[-1])))
        ):
            return True
    return False


def pairing_doubt(
    text: str, companions: list[Person], substitute: Person | None = None
) -> str | None:
    """Why the reply leaves unclear who comes with which address, or None. Such a reply goes
    to a human: a guessed pairing would register someone under another person's address.

    - someone named as coming is also said not to come ("… met Karin Smit. Karin kan niet");
    - an address is next to no name, and a companion or the substitute has none ("Ik kom met
      Karin Smit. Haar adres is k.smit@…") or it stands in their sentence ("Ik kom met
      collega Ahmed Benali (a.benali@…), k.smit@… komt ook");
    - names without address and addresses without name are listed together ("met Karin Smit
      en a.benali@…").
    """
    negated = _not_coming(text)
    for p in _companion_candidates(text, substitute):
        if _among(p, negated):
            return f"{p.name or p.email or 'a companion'} is named as coming and as not coming"
    named = [*companions, *([substitute] if substitute else [])]
    paired = {p.email for p in (*named, *negated) if p.email}
    without_address = any(p.name and not p.email for p in named)
    # Sentence ends (a full stop inside an address does not end one), found once.
    ends = [m.end() for m in re.finditer(r"[.!?;](?=\s|$)|\n", text)]
    for m in _EMAIL_RE.finditer(text):
        addr = m.group(0).lower()
        if addr in paired:
            continue
        if without_address:  # "… met Karin Smit. Haar adres is k.smit@…": whose, for sure?
            return f"address {addr} is next to no name"
        k = bisect_right(ends, m.start())
        start, end = (ends[k - 1] if k else 0), (ends[k] if k < len(ends) else len(text))
        if any(start <= p.start < end or start < p.end <= end for p in named):
            return f"address {addr} is next to no name"
    if any(p.name and not p.email for p in companions) and any(
        p.email and not p.name for p in companions
    ):
        return "names and addresses of companions are given apart"
    return None


def _listed_after(text: str, first: Person) -> list[Person]:
    """Further people named in a list after `first` ("Karin Smit en Jan de Boer"). After a
    plural role ("mijn collega's Karin en Jan") a first name alone is enough."""
    plural = bool(_PLURAL_ROLE_RE.search(text, first.start, first.end))
    more: list[Person] = []
    last = first
    while len(more) < 4:
        joint = _AND_RE.match(text, last.end)
        if not joint:
            break
        nxt = _person_at(text, joint.end(), 160)
        if nxt is None or not (nxt.name or nxt.email):
            break
        if not (_is_person(nxt, text) or (plural and nxt.name)):
            break
        more.append(nxt)
        last = nxt
    return more


def _is_person(person: Person, text: str) -> bool:
    # "met de trein" has no role, name or address; "met Kerstmis" would be a name: require a
    # role, an address, or at least two name words (particles do not count: "met de
    # Rotterdamse collega's" is no person) for a bare "met <Name>".
    mention = text[person.start : person.end]
    if re.search(rf"(?i:\b{_ROLE}\b)", mention) or person.email:
        return True
    words = [w for w in person.name.split() if not re.fullmatch(_PARTICLE, w, re.IGNORECASE)]
    return len(words) >= 2 or bool(re.search(rf"(?i:{_TITLE})\s", mention))


def _overlaps(a: Person, b: Person) -> bool:
    return (a.start < b.end and b.start < a.end) or (bool(a.name) and a.name == b.name)


def _dedupe(people: list[Person]) -> list[Person]:
    people = sorted(people, key=lambda p: p.start)
    result: list[Person] = []
    for p in people:
        same = next(
            (q for q in result if _overlaps(p, q) or (p.email and p.email == q.email)), None
        )
        if same is None:
            result.append(p)
        elif len(p.name) > len(same.name) or (p.email and not same.email):
            merged = Person(
                p.name or same.name, p.email or same.email, same.start, max(p.end, same.end)
            )
            result[result.index(same)] = merged
    return result
