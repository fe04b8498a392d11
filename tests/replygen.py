"""Realistic reply mail for tests and benches: what invitees actually send back.

Every reply answers a real invitation (its token in the plus address and the subject marker,
quoting the invitation like a mail client does), in Dutch or English, with the variety the
mailbox sees: plain yes/no, a session choice, a colleague coming along, a question, an
out-of-office, an HTML alternative. Output is deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Event, Invitation, Person
from workflows.tokens import plus_address, text_marker


@dataclass(frozen=True)
class Invitee:
    name: str
    email: str
    token: str


def invitees_of(db: Session, event: Event) -> list[Invitee]:
    rows = db.execute(
        select(Person.name, Person.email, Invitation.token)
        .join(Invitation, Invitation.person_id == Person.id)
        .where(Invitation.event_id == event.id)
        .order_by(Invitation.id)
    ).all()
    return [Invitee(name, email, token) for name, email, token in rows]


COLLEAGUES = ("Karin Smit", "Pieter de Jong", "Sanne Bakker", "Youssef Amrani", "Eva Mulder")
SESSIONS_NL = ("onderwijs", "werk", "wonen", "veiligheid")
SESSIONS_EN = ("education", "work", "housing", "safety")

_NL_BODIES = (
    "Ja, ik kom graag.",
    "Ja, ik kom graag, deelsessie {session}.",
    "Beste Marieke,\n\nDank voor de uitnodiging. Ik meld mij graag aan voor de deelsessie "
    "{session}.\n\nMet vriendelijke groet,\n{name}",
    "Ja, ik kom graag, deelsessie {session}, met mijn collega {colleague}.",
    "Graag aanwezig! Ik neem mijn collega {colleague} mee ({colleague_email}).",
    "Helaas kan ik niet aanwezig zijn vanwege de raadsvergadering.",
    "Nee, helaas verhinderd.",
    "Ik moet mij helaas afmelden, er is iets tussengekomen.",
    "Is er parkeergelegenheid bij het Huis van de Wijk?",
    "Ik weet nog niet of ik kan, ik laat het volgende week weten.",
    "Ja graag. Ik ben vegetarisch, houdt u daar rekening mee bij de lunch?",
)
_EN_BODIES = (
    "Yes, I would be glad to attend. Session: {session}.",
    "Thank you for the invitation. Unfortunately I cannot attend.",
    "I will attend together with my colleague {colleague}.",
)
_OUT_OF_OFFICE = (
    "Ik ben afwezig tot en met {date} en heb beperkt toegang tot mijn e-mail. "
    "Voor dringende zaken kunt u contact opnemen met het secretariaat."
)


def reply(
    invitee: Invitee,
    number: int,
    rng: random.Random,
    *,
    reply_address: str = "aanmelden@wijkwijzer.example",
    event_title: str = "Leren van Rotterdam Zuid: wethouders in de wijk",
    html: bool | None = None,
) -> bytes:
    """One reply from `invitee`; `number` makes its Message-ID unique."""
    roll = rng.random()
    msg = EmailMessage()
    msg["From"] = formataddr((invitee.name, invitee.email))
    msg["To"] = plus_address(reply_address, invitee.token)
    sent = datetime(2023, 1, 10, 9, 0, tzinfo=UTC) + timedelta(minutes=number)
    msg["Date"] = format_datetime(sent)
    msg["Message-ID"] = f"<reply-{number}-{rng.getrandbits(48):012x}@{invitee.email.split('@')[1]}>"
    msg["In-Reply-To"] = f"<invitation-{invitee.token[:12]}@rsvpmail>"
    msg["References"] = msg["In-Reply-To"]
    if roll < 0.05:
        msg["Subject"] = f"Afwezigheidsbericht: {event_title}"
        msg["Auto-Submitted"] = "auto-replied"
        msg.set_content(_OUT_OF_OFFICE.format(date="20 januari"))
        return msg.as_bytes()
    english = roll > 0.88
    bodies = _EN_BODIES if english else _NL_BODIES
    colleague = rng.choice(COLLEAGUES)
    text = rng.choice(bodies).format(
        session=rng.choice(SESSIONS_EN if english else SESSIONS_NL),
        name=invitee.name,
        colleague=colleague,
        colleague_email=colleague.lower().replace(" ", ".") + "@" + invitee.email.split("@")[1],
    )
    prefix = "Re" if english else rng.choice(("Re", "RE", "Antw"))
    msg["Subject"] = f"{prefix}: Uitnodiging: {event_title} [{text_marker(invitee.token)}]"
    quoted = _quote_invitation(invitee, english)
    msg.set_content(f"{text}\n\n{quoted}")
    if html if html is not None else rng.random() < 0.3:
        paragraphs = "".join(f"<p>{line}</p>" for line in text.split("\n") if line)
        msg.add_alternative(
            f"<html><body>{paragraphs}<blockquote>{quoted}</blockquote></body></html>",
            subtype="html",
        )
    return msg.as_bytes()


def _quote_invitation(invitee: Invitee, english: bool) -> str:
    intro = (
        "On 9 Jan 2023 at 10:00, WijkWijzer namens BZK wrote:"
        if english
        else "Op 9 jan. 2023 om 10:00 schreef WijkWijzer namens BZK:"
    )
    lines = (
        f"Beste {invitee.name},",
        "",
        "Graag nodigen wij u uit voor Leren van Rotterdam Zuid op woensdag 1 februari 2023.",
        "Antwoord op deze mail: ja of nee, en welke deelsessie u kiest.",
        "",
        text_marker(invitee.token),
    )
    return intro + "\n" + "\n".join(f"> {line}" if line else ">" for line in lines)


def replies(
    invitees: Sequence[Invitee], count: int, *, seed: int = 20230201, start: int = 0
) -> Iterator[bytes]:
    """`count` replies spread over the invitees, numbered from `start` (unique Message-IDs)."""
    rng = random.Random(seed)
    for number in range(start, start + count):
        yield reply(rng.choice(invitees), number, rng)


def garbage(number: int) -> bytes:
    """Something that is not an e-mail at all: binary noise with a stray header-like line."""
    rng = random.Random(number)
    noise = bytes(rng.getrandbits(8) for _ in range(600)).replace(b"\r", b"").replace(b"\n", b"")
    return b"\xff\xfe garbage " + str(number).encode() + b"\r\n" + noise + b"\r\n"


def oversized(invitee: Invitee, number: int, size: int) -> bytes:
    """A reply carrying a large attachment, so that it is at least `size` bytes."""
    msg = EmailMessage()
    msg["From"] = formataddr((invitee.name, invitee.email))
    msg["To"] = plus_address("aanmelden@wijkwijzer.example", invitee.token)
    msg["Subject"] = f"Re: Uitnodiging [{text_marker(invitee.token)}] met bijlage"
    msg["Message-ID"] = f"<big-{number}@{invitee.email.split('@')[1]}>"
    msg.set_content("Ja, ik kom. In de bijlage mijn presentatie.")
    msg.add_attachment(
        random.Random(number).randbytes(size),
        maintype="application",
        subtype="pdf",
        filename="presentatie.pdf",
    )
    return msg.as_bytes()
