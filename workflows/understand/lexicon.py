"""Dutch and English phrases that carry an answer, compiled once.

All patterns run on lowercased text. They are grouped by what they signal; `text.py` decides
what a combination means. Strong signals are first-person statements ("ik kom", "I can't
attend"); weak signals are bare interjections at the start of a sentence ("Ja", "Nee").
Third-person phrases ("collega komt") never count as the invitee's own answer.
"""

from __future__ import annotations

import re


def _c(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(parts), re.IGNORECASE)


# Phrases that look like signals but are not; blanked out before signals are matched.
NEUTRAL = _c(
    # Not in "ik wil niet alleen komen": that is a condition (TENTATIVE below).
    r"(?<!wil\s)\bniet\s+alleen\b", r"\bnot\s+only\b", r"\bnot\s+alone\b",
    r"\bgeen\s+(?:probleem|punt|bezwaar|dieet\w*|allergie\w*|bijzonderheden|voorkeur)\b",
    r"\bno\s+(?:problem|worries|preference|dietary\s+\w+|allergies)\b",
    r"\bkan\s+(?:bijna\s+)?niet\s+wachten\b", r"\bcan(?:'t|not|\s+not)\s+wait\b",
    r"\b(?:misschien|wellicht|hopelijk|maybe|hopefully|perhaps)\s+(?:een\s+|tot\s+)?"
    r"(?:volgende|andere|next|another)\s+(?:keer|time|bijeenkomst|gelegenheid|occasion)\b",
    r"\b(?:als|wanneer|indien|zodra|if|when|once)\s+(?:ik|i)\s+(?:kom|er\s+ben|aanwezig\s+ben|"
    r"come|attend|am\s+there)\b",
    r"\bniet\s+(?:voor\s+u\s+)?bestemd\b", r"\bniet\s+van\s+toepassing\b",
    r"\b(?:hoe\s+dan\s+ook|no\s+matter\s+what)\b",
    r"\bof\s+(?:ik\s+)?niet\b",
    # "ik kijk even of ik kan komen": checking is not an answer.
    r"\b(?:kijk|kijken|bekijk|bekijken|nagaan|check|checken)\s+(?:\w+\s+){0,3}?of\s+"
    r"(?:ik|het|we|wij)\s+(?:\w+\s+){0,4}?(?:kan|kom|lukt|komen|kunnen)\b",
    r"\b(?:check|see)\s+(?:\w+\s+){0,2}?(?:if|whether)\s+i\s+(?:\w+\s+){0,3}?(?:can|could)\b",
    r"\bniet\s+(?:vergeten|te\s+laat)\b",
    # "Ik kom zeker, alleen weet ik nog niet welke sessie": unsure of the session, not of coming.
    r"\b(?:ik\s+)?weet\s+(?:ik\s+)?(?:het\s+)?(?:nu\s+)?nog\s+niet\s+(?:welke|voor\s+welke|naar\s+welke)\b",
    r"\b(?:i\s+)?(?:don'?t|do\s+not)\s+know\s+(?:yet\s+)?which\b",
)  # fmt: skip

# "Ik had graag willen komen": sounds positive, means no.
REGRET = _c(
    r"\b(?:had|hadden)\s+(?:heel\s+|zeer\s+|erg\s+|echt\s+)?graag\s+(?:\w+\s+){0,3}?"
    r"(?:willen\s+)?(?:komen|gekomen|deelnemen|deelgenomen|aanwezig|bij\s*geweest|erbij|geweest)",
    r"\b(?:was|waren)\s+(?:er\s+)?(?:heel\s+|zeer\s+|erg\s+)?graag\s+(?:bij\s+)?(?:\w+\s+){0,3}?"
    r"(?:geweest|gekomen)",
    r"\bzou\s+(?:er\s+)?(?:heel\s+|zeer\s+)?graag\s+(?:\w+\s+){0,2}?(?:zijn\s+)?(?:gekomen|geweest)",
    r"\b(?:i|we)(?:'d|\s+would)\s+have\s+(?:loved|liked|wanted)\s+to",
)

TENTATIVE = _c(
    r"\bonder\s+voorbehoud\b", r"\bmisschien\b", r"\bwaarschijnlijk\b", r"\bwellicht\b",
    r"\bmogelijk(?:erwijs)?\s+(?:kom|ben|kan|zal)\s+ik\b",
    r"\bik\s+(?:kom|ben|kan)\s+(?:er\s+)?mogelijk(?:erwijs)?\b",
    r"\b(?:ik\s+)?weet\s+(?:het\s+)?(?:nu\s+)?nog\s+niet\b",
    r"\bweet\s+ik\s+(?:het\s+)?(?:nu\s+)?nog\s+niet\b", r"\bI\s+don'?t\s+know\s+yet\b",
    r"\bnog\s+niet\s+(?:zeker|duidelijk|bekend)\b",
    r"\bniet\s+zeker\s+of\b", r"\bik\s+probeer\s+(?:te\s+komen|erbij\s+te\s+zijn|aanwezig|het)\b",
    r"\bik\s+hoop\s+(?:te\s+komen|erbij\s+te\s+zijn|aanwezig|te\s+kunnen)\b",
    r"\bals\s+(?:mijn\s+)?agenda\s+het\s+toelaat\b", r"\bafhankelijk\s+van\b", r"\bvoorlopig\b",
    r"\bvoorzichtig\s+ja\b", r"\bals\s+het\s+(?:lukt|kan|mogelijk\s+is)\b",
    r"\bindien\s+mogelijk\b", r"\bif\s+(?:possible|i\s+can)\b", r"\bonder\s+voorwaarde\b",
    r"\btentative(?:ly)?\b", r"\bmaybe\b", r"\bperhaps\b", r"\bpossibly\b", r"\bprobably\b",
    r"\b(?:i|we)\s+might\b", r"\bnot\s+(?:yet\s+)?(?:sure|certain)\b",
    r"\b(?:i|we)\s*(?:will|'ll)\s+try\s+to\b",
    r"\bhope\s+to\s+(?:attend|come|make\s+it|be\s+there|join)\b",
    r"\bif\s+(?:my\s+)?(?:schedule|agenda|diary|calendar)\s+(?:allows|permits)\b",
    r"\bdepending\s+on\b", r"\bpencil\s+me\s+in\b", r"\bprovisional(?:ly)?\b",
    # Conditions: "Ja, mits de raad niet uitloopt", "ik kom alleen als mijn collega mee mag".
    r"\bmits\b", r"\bop\s+voorwaarde\b", r"\balleen\s+(?:als|indien|wanneer)\b",
    r"\bprovided\s+(?:that\b)?", r"\bon\s+condition\b", r"\bonly\s+if\b",
    r"\bwil\s+(?:er\s+)?niet\s+alleen\s+(?:komen|heen|naartoe)\b",
    # "Ik heb een andere afspraak, maar die probeer ik te verzetten": not yet a no.
    r"\bprobe(?:er|ren)\s+(?:ik\s+|we\s+)?(?:\w+\s+){0,3}?te\s+(?:verzetten|verschuiven|verplaatsen|"
    r"annuleren|ruilen)\b",
    r"\btry(?:ing)?\s+to\s+(?:move|reschedule|rearrange|shift)\b",
    # "Ik ben er niet zeker van of ik kan komen" ("niet zeker of" is above).
    r"\bniet\s+zeker\s+van\s+of\b", r"\bben\s+er\s+niet\s+zeker\s+van\b",
)  # fmt: skip

# Hedges whose scope is open: they hedge the clause they stand in, which may be about a detail
# ("Ik kom graag, waarschijnlijk met een collega", "Ik kom! … als het kan liever wonen");
# text.py checks that clause.
HEDGE_ADVERB = re.compile(
    r"^(?:misschien|waarschijnlijk|wellicht|maybe|perhaps|possibly|probably|"
    r"als\s+het\s+(?:kan|mogelijk\s+is)|indien\s+mogelijk|if\s+possible)$",
    re.IGNORECASE,
)

# Cancelling an earlier registration (also a decline).
CANCEL = _c(
    r"\b(?:moet|wil)\s+(?:mij|me|mijzelf)\s+(?:\w+\s+){0,2}?afmelden\b",
    r"\bmeld\s+(?:ik\s+)?(?:mij|me)\s+(?:\w+\s+){0,2}?af\b", r"\bafmelding\b", r"\bafmelden\b",
    # "Hierbij meld ik af" (without "mij"), also for someone else ("meld ik haar af").
    r"\bmeld\s+(?:ik\s+)?(?:hierbij\s+|bij\s+dezen?\s+|graag\s+)?(?:haar\s+|hem\s+|ons\s+)?af\b",
    r"\b(?:mijn\s+)?aanmelding\s+(?:\w+\s+){0,2}?(?:intrekken|annuleren|terugtrekken|terug\s+trekken|"
    r"vervalt|laten\s+vervallen)\b",
    r"\bkan\s+(?:er\s+)?(?:\w+\s+){0,2}?toch\s+niet\b",
    r"\btoch\s+niet\s+(?:komen|aanwezig|deelnemen|bij)\b",
    r"\bkom\s+(?:\w+\s+){0,2}?toch\s+niet\b", r"\bmoet\s+(?:\w+\s+){0,2}?(?:annuleren|afzeggen)\b",
    r"\bzeg\s+(?:ik\s+)?(?:\w+\s+){0,2}?af\b", r"\bannuleer\b",
    r"\bkan\s+(?:er\s+)?niet\s+meer\s+(?:komen|bij|aanwezig)\b",
    r"\bcancel(?:ling|led)?\s+(?:my|our)\s+(?:registration|attendance|participation|rsvp|place|spot)\b",
    r"\bwithdraw\s+(?:my|our)\b",
    r"\bcan\s+no\s+longer\s+(?:attend|come|make\s+it|join|be\s+there)\b",
    r"\b(?:won't|will\s+not|can't|cannot)\s+(?:be\s+able\s+to\s+)?(?:make\s+it|attend|come|join)\s+after\s+all\b",
    r"\bno\s+longer\s+(?:able|available|attending|coming)\b",
)  # fmt: skip

_AFTER_NIET = (
    r"(?=\s*(?:$|[,.;:!)]|\s(?:komen|bij|aanwezig|zijn|deelnemen|erbij|aanschuiven|meedoen|"
    r"maar|want|omdat|vanwege|ivm|i\.v\.m\.|door|helaas|op|in|dus|en|gaan)\b))"
)
DECLINE = _c(
    # Not across a conjunction: "Ik kom graag maar mijn collega niet" says nothing of the writer.
    rf"\bik\s+(?:kan|kom|zal)\s+(?:er\s+|daar\s+|dan\s+|die\s+dag\s+)?"
    rf"(?:(?!(?:maar|en|want|omdat)\s)\w+\s+){{0,5}}?niet\b{_AFTER_NIET}",
    rf"\b(?:kan|kom|zal)\s+ik\s+(?:er\s+|daar\s+|dan\s+)?(?:\w+\s+){{0,3}}?niet\b{_AFTER_NIET}",
    r"\bik\s+ben\s+(?:er\s+|daar\s+|dan\s+|die\s+dag\s+)?(?:\w+\s+){0,4}?(?:niet\s+(?:bij|aanwezig|beschikbaar|in\s+de\s+gelegenheid)|verhinderd|afwezig)\b",
    r"\bben\s+ik\s+(?:er\s+|daar\s+|dan\s+)?(?:\w+\s+){0,2}?(?:niet\s+(?:bij|aanwezig|beschikbaar|in\s+de\s+gelegenheid)|verhinderd|afwezig)\b",
    r"\b(?:wij|we)\s+(?:kunnen|komen|zijn)\s+(?:er\s+)?(?:\w+\s+){0,2}?niet\b" + _AFTER_NIET,
    r"\bverhinderd\b", r"\bandere\s+(?:verplichting(?:en)?|afspraak|afspraken)\b",
    r"\bverstek\s+(?:laten\s+)?gaan\b", r"\bmoet\s+(?:\w+\s+){0,2}?(?:bedanken|passen|verstek)\b",
    r"\b(?:lukt|past)\s+(?:het\s+)?(?:mij\s+|me\s+)?(?:\w+\s+){0,2}?niet\b",
    r"\b(?:gaat|zal)\s+(?:mij\s+|me\s+|het\s+)?(?:\w+\s+){0,2}?niet\s+lukken\b",
    r"\bniet\s+(?:kunnen\s+)?(?:komen|deelnemen|aanwezig\s+zijn|aanwezig\s+kunnen\s+zijn)\b",
    r"\bmoet\s+(?:ik\s+)?(?:u\s+|jullie\s+)?teleurstellen\b",
    r"\bik\s+ben\s+(?:die\s+dag\s+|dan\s+|op\s+\d+\s+\w+\s+)?(?:helaas\s+)?(?:al\s+)?"
    r"(?:bezet|volgeboekt)\b",
    r"\bsla\s+(?:deze|het|dit)\s+(?:\w+\s+)?over\b",
    r"\b(?:ben|zit)\s+(?:dan|die\s+dag|op\s+\d+\s+\w+)?\s*(?:met|op)\s+vakantie\b",
    r"\bgeen\s+tijd\b", r"\bagenda\s+(?:zit\s+|is\s+)?(?:al\s+)?vol\b",
    r"\b(?:can't|cannot|can\s+not|won't|will\s+not|wouldn't|unable\s+to|not\s+able\s+to|"
    r"won't\s+be\s+able\s+to|will\s+not\s+be\s+able\s+to)\s+(?:\w+\s+){0,2}?(?:attend|come|make\s+it|join|be\s+there|"
    r"participate|be\s+present|take\s+part)\b",
    r"\b(?:i|we)\s+(?:must|have\s+to|regret(?:fully)?|will\s+have\s+to|need\s+to)\s+(?:\w+\s+)?(?:decline|pass|miss)\b",
    r"\bregretfully\b", r"\b(?:i|we)\s+(?:decline|will\s+pass|'ll\s+pass)\b",
    r"\b(?:i|we)\s*(?:am|are|'m|'re)\s+(?:\w+\s+)?not\s+(?:able|available|coming|attending|free)\b",
    r"\bunfortunately\s+(?:i|we)\s+(?:can't|cannot|won't|will\s+not|am\s+not|are\s+not|have\s+to)\b",
    r"\b(?:another|prior|other)\s+(?:commitment|engagement|appointment|obligation)s?\b",
    r"\bscheduling\s+conflict\b",
)  # fmt: skip

ACCEPT = _c(
    r"\bik\s+(?:kom|ben\s+er)\b",
    r"\bik\s+ben\s+(?:er\s+)?(?:\w+\s+)?(?:aanwezig|erbij|bij|van\s+de\s+partij)\b",
    r"\bik\s+zal\s+(?:er\s+)?(?:\w+\s+)?(?:bij\s+)?(?:zijn|komen|aanwezig\s+zijn)\b",
    r"\bik\s+(?:neem|doe)\s+(?:\w+\s+)?(?:deel|mee)\b", r"\bik\s+schuif\s+(?:\w+\s+)?aan\b",
    r"\bik\s+wil\s+(?:\w+\s+){0,2}?(?:komen|deelnemen|aanwezig\s+zijn|aanmelden|meedoen|erbij\s+zijn|"
    r"bij\s+zijn|aanschuiven)\b",
    r"\bik\s+kan\s+(?:er\s+)?(?:gewoon\s+|wel\s+|zeker\s+|gelukkig\s+)?(?:komen|bij\s+zijn|erbij\s+zijn|"
    r"aanwezig\s+zijn|deelnemen)\b",
    r"\b(?:kom|ben|zal|neem|doe|wil|kan)\s+ik\s+(?:er\s+)?(?:graag|zeker|natuurlijk|uiteraard|gewoon|"
    r"dan|ook|wel)?\s*(?:\w+\s+)?(?:komen|bij|aanwezig|deel|mee|erbij|$|[,.!])",
    r"\b(?:graag|hierbij|bij\s+dezen?)\s+(?:\w+\s+)?(?:meld(?!\s+(?:ik\s+)?(?:\w+\s+){0,2}?af\b)|"
    r"aanmelden|aangemeld)\b",
    # "Hierbij bevestig ik mijn aanwezigheid" (or a secretary: "de aanwezigheid van wethouder X").
    r"\bbevestig\s+(?:ik\s+|wij\s+|we\s+)?(?:hierbij\s+|graag\s+|bij\s+dezen?\s+)?"
    r"(?:mijn|onze|de|haar|zijn)\s+(?:aanwezigheid|deelname|komst)\b",
    r"\b(?:i|we)\s+(?:hereby\s+)?confirm\s+(?:my|our)\s+(?:attendance|participation|presence)\b",
    # "Ik kan wel, maar …": colloquial yes; only where nothing follows that could change it.
    r"\bik\s+kan\s+(?:er\s+)?(?:gewoon\s+|gelukkig\s+)?wel\b(?=\s*(?:$|[,.!;]|\s(?:hoor|maar)\b))",
    r"\bmeld\s+(?:ik\s+)?(?:mij|me|ons)\s+(?:\w+\s+){0,2}?aan\b",
    r"\b(?:wij|we)\s+(?:komen|zijn\s+er|zijn\s+(?:\w+\s+)?(?:aanwezig|erbij|bij))\b",
    r"\bik\s+ben\s+van\s+de\s+partij\b", r"\bcount\s+me\s+in\b",
    r"\bzet\s+(?:mij|me|ons)\s+(?:\w+\s+)?op\s+de\s+(?:deelnemers)?lijst\b",
    # A secretary answering for the invitee.
    r"\bmeld\s+(?:ik\s+)?(?:haar|hem|de\s+wethouder|wethouder\s+\w+)\s+(?:\w+\s+){0,2}?aan\b",
    # "Namens wethouder De Vries laat ik u weten dat zij graag komt": only after "namens", so a
    # colleague mentioned in passing ("zij komt ook") is never read as the invitee's answer.
    r"\bnamens\s+(?:de\s+|onze\s+|mijn\s+)?(?:wethouder|burgemeester|gedeputeerde)\b[^.!?;\n]{0,80}?"
    r"\b(?:hij|zij|ze)\s+(?:er\s+)?(?:\w+\s+){0,2}?(?:komt|aanwezig\s+is|aanwezig\s+zal\s+zijn|erbij\s+is|"
    r"deelneemt|bij\s+is)\b",
    r"\b(?:de\s+)?wethouder\s+(?:\w+\s+){0,3}?(?:komt|is\s+(?:\w+\s+)?aanwezig|neemt\s+(?:\w+\s+)?deel)\b",
    r"\b(?:i|we)\s*(?:will|'ll|shall|would\s+(?:love|like)\s+to|'d\s+(?:love|like)\s+to|"
    r"(?:am|are|'m|'re)\s+(?:happy|glad|pleased|delighted)\s+to|can|could)\s+"
    r"(?:gladly\s+|definitely\s+|certainly\s+|happily\s+|gladly\s+)?(?:be\s+(?:there|attending|present|"
    r"joining)|attend|come|join|make\s+it|participate|register)\b",
    r"\b(?:i|we)\s+accept\b", r"\b(?:please\s+)?(?:register|sign)\s+(?:me|us)\b",
    r"\b(?:i|we)\s*(?:am|are|'m|'re)\s+(?:\w+\s+)?(?:coming|attending|in)\b",
    r"\bhappy\s+to\s+(?:attend|join|come)\b",
    r"\bik\s+ga\s+(?:graag\s+|zeker\s+|dan\s+)?(?:naar\s+(?:de\s+)?(?:deelsessie|sessie|bijeenkomst)|mee\b|er\s+heen)",
    r"\blook(?:ing)?\s+forward\s+to\s+(?:attending|joining|being\s+there|participating|"
    r"seeing\s+you\s+(?:there|on))\b",
)  # fmt: skip

# Statements that imply coming but whose negation is not a decline ("ik neem geen collega mee").
ACCEPT_IMPLIED = _c(
    r"\bik\s+neem\s+(?:\w+\s+){0,6}?mee\b",
    # "Mijn collega Karin Smit komt ook mee": she comes along with the writer.
    r"\b(?:komt|gaat)\s+(?:\w+\s+)?(?:ook\s+)?mee\b(?!\s+(?:in\s+plaats|namens))",
    r"\bwill\s+(?:also\s+)?(?:join|accompany)\s+me\b",
    r"\bik\s+ga\s+(?:\w+\s+){0,2}?naar\b",
    r"\b(?:i\s*(?:will|'ll)|i\s+am|i'm)\s+(?:\w+\s+)?bring(?:ing)?\b",
)

# Interjections: only at the very start of a sentence or clause.
YES = re.compile(
    r"^\s*(?:ja(?:zeker|wel)?|yes|yep|yeah|zeker|absoluut|graag|heel\s+graag|zeer\s+graag|"
    r"met\s+(?:veel\s+)?(?:plezier|genoegen)|certainly|definitely|gladly|with\s+pleasure|"
    r"of\s+course|uiteraard|natuurlijk|sure)\b(?!\s+(?:niet|not)\b)"
    # "Graag afmelden", "graag uitschrijven": the "graag" asks for the cancellation.
    r"(?!\s+(?:(?:mij|me)\s+)?(?:afmelden|uitschrijven|annuleren|af\b))",
    re.IGNORECASE,
)
NO = re.compile(
    r"^\s*(?:nee(?:n)?|no|nope|helaas\s+(?:niet|nee)|sorry,?\s+nee|unfortunately\s+not|"
    r"helaas\s*[.!]*\s*$)(?:\b|$)",
    re.IGNORECASE,
)
# "Ja. Of nee, …": the writer takes the yes back; with it, the "ja" means nothing.
SELF_CORRECTION = re.compile(r"\b(?:of|or)\s+(?:nee|no|niet|not)\b\s*[,.;:!]", re.IGNORECASE)
# "Ja, helaas …": the "ja" is a discourse marker, not a yes.
SOFTENER = re.compile(r"\b(?:helaas|jammer|spijt|unfortunately|sorry|regret)\b", re.IGNORECASE)

UNSUBSCRIBE = _c(
    r"\buitschrijven\b", r"\bschrijf\s+(?:mij|me|ons)\s+(?:\w+\s+)?uit\b",
    r"\bafmelden\s+voor\s+(?:\w+\s+){0,2}?(?:mailings?|mails?|e-?mails?|nieuwsbrie\w+|berichten|"
    r"verzendlijst|mailinglijst|uitnodigingen)\b",
    r"\bgeen\s+(?:\w+\s+)?(?:e-?mails?|mails?|berichten|uitnodigingen|mailings?)\s+meer\b",
    r"\bverwijder\s+(?:mij|me|ons)\s+(?:(?!niet\b)\w+\s+){0,2}?(?:uit|van)\s+(?:de|uw|jullie|het|deze)\s+"
    r"(?:\w+\s+)?(?:lijst|verzendlijst|mailinglijst|bestand|adressenbestand)\b",
    r"\b(?:haal|verwijder)\s+(?:mij|me|ons|mijn\s+(?:e-?mail)?adres)\s+(?:(?!niet\b|nog\s+niet\b)\w+\s+){0,2}?"
    r"(?:van|uit)\s+"
    r"(?:de|uw|jullie|het|deze|je)\s+(?:\w+\s+)?(?:lijst|verzendlijst|mailinglijst|mailing|"
    r"adressenbestand|bestand|distributielijst)\b",
    r"\b(?:wil|wens)\s+(?:\w+\s+){0,2}?geen\s+(?:\w+\s+)?(?:e-?mails?|mails?|berichten|uitnodigingen|"
    r"mailings?|nieuwsbrie\w+)\b",
    r"\b(?:niet|nooit)\s+meer\s+(?:\w+\s+)?(?:mailen|e-?mailen|uitnodigen|benaderen)\b",
    r"\bunsubscribe\b", r"\bremove\s+(?:me|us|my\s+(?:e-?mail\s+)?address)\s+from\b",
    r"\btake\s+(?:me|us)\s+off\b", r"\bstop\s+(?:sending|emailing|mailing)\b",
    r"\bdo\s+not\s+(?:email|mail|contact)\s+me\b", r"\bopt\s+out\b",
    r"\bno\s+(?:more|further)\s+(?:e-?mails?|mails?|invitations|messages)\b",
    r"\bdon'?t\s+(?:send|email|mail)\s+me\b",
)  # fmt: skip

QUESTION_PHRASE = _c(
    r"\bik\s+vraag\s+me\s+af\b", r"\bik\s+vroeg\s+me\s+af\b", r"\bi\s+(?:was\s+)?wonder(?:ing)?\b",
    r"\bgraag\s+(?:zou\s+ik\s+)?(?:weten|horen)\s+(?:of|hoe|wat|waar|wanneer)\b",
    r"\b(?:kunt|kun)\s+(?:u|je|jij|jullie)\s+(?:mij\s+|me\s+)?(?:laten\s+weten|vertellen|aangeven)\b",
    r"\bcould\s+you\s+(?:please\s+)?(?:let\s+me\s+know|tell\s+me|confirm)\b",
    r"\bweet\s+u\s+(?:of|wanneer|waar|hoe)\b", r"\bmijn\s+vraag\s+is\b",
    r"\bik\s+heb\s+(?:nog\s+)?(?:een|één|twee|enkele|wat|een\s+paar)\s+(?:\w+\s+)?vra(?:ag|gen|agje)\b",
    r"\bi\s+(?:also\s+|still\s+)?have\s+(?:a|one|two|some|a\s+few)\s+(?:\w+\s+)?questions?\b",
)  # fmt: skip

QUESTION_STARTERS = frozenset(
    [
        "kan",
        "kunnen",
        "kun",
        "mag",
        "mogen",
        "is",
        "zijn",
        "wordt",
        "worden",
        "komt",
        "komen",
        "hoe",
        "wat",
        "waar",
        "wanneer",
        "welke",
        "wie",
        "hoeveel",
        "moet",
        "moeten",
        "zou",
        "zouden",
        "heeft",
        "hebben",
        "weet",
        "weten",
        "graag",
        "can",
        "could",
        "is",
        "are",
        "do",
        "does",
        "will",
        "would",
        "how",
        "what",
        "where",
        "when",
        "which",
        "who",
        "should",
        "may",
        "shall",
    ]
)

DIETARY = _c(
    r"\bvegetari(?:sch|sche|ër|er|ërs|an)\b", r"\bveganist(?:isch|ische)?\b", r"\bvegan\b",
    r"\bplantaardig\w*\b", r"\bpesc[ao]tari(?:sch|an)\b",
    r"\bgluten[-\s]?(?:vrij|vrije|free|intolerant\w*|allergie)\b", r"\bcoeliakie\b",
    r"\bc(?:o)?eliac\b",
    r"\blactose[-\s]?(?:vrij|vrije|free|intolerant\w*)\b", r"\bzuivelvrij\w*\b",
    r"\bdairy[-\s]free\b",
    r"\bkoemelk\w*allergie\b",
    r"\b(?:noten|pinda|schaaldieren|schelp\w*|vis|ei|soja|sesam|selderij|mosterd|tarwe)[-\s]?allergie\b",
    r"\ballergi(?:sch|e)\s+(?:voor|voor\s+de|tegen|to|for)\s+[\w-]+(?:\s+(?:en|and|of|or)\s+[\w-]+)?",
    r"\b(?:nut|peanut|shellfish|fish|egg|soy|sesame)\s+allerg(?:y|ies)\b",
    r"\ballergic\s+to\s+[\w-]+(?:\s+(?:and|or)\s+[\w-]+)?",
    r"\bhalal\b", r"\bkoosjer\b", r"\bkosher\b",
    r"\bgeen\s+(?:varkensvlees|vlees|vis|alcohol|noten|pinda'?s|gluten|lactose|zuivel)\b",
    r"\bno\s+(?:pork|meat|fish|alcohol|nuts|gluten|dairy)\b",
    r"\bdiabet(?:es|isch|ic)\b", r"\bsuikervrij\w*\b",
)  # fmt: skip
DIETARY_NEGATION = re.compile(r"\b(?:geen|niet|no|not|non)\s+(?:\w+\s+)?$", re.IGNORECASE)
