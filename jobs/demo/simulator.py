"""The invitees of the demo: people who read their mail and answer it, in simulated time.

Each invitee follows a persona — how quickly they answer, in which mail client and language,
and what they decide. The simulator reads every invitee's mailbox over IMAP, recognises what
rsvpmail sent them, and answers over SMTP when the (accelerated) clock reaches the moment the
persona would. It plays by the rules of real mail: replies go to Reply-To, quote the original,
and out-of-office and bounce messages look like the ones Exchange produces.

The waitlist is played on purpose, not left to chance: registered invitees cancel at the
moments in `CANCELLATIONS` — twice before the registration deadline, so the freed seats are
offered to the waitlist, and once after it, when rsvpmail makes no offers and tells the
organiser instead — and the seat offers are answered in the order of `OFFER_ANSWERS`: one
taken, one left to expire (its seat goes to the next in line), one declined (likewise).
"""

from __future__ import annotations

import email
import email.policy
import logging
import random
import smtplib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from imap_tools import AND, MailBoxUnencrypted

from jobs.demo import replies
from workflows.clock import now

log = logging.getLogger("rsvpmail.demo.simulator")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SESSIONS = ("onderwijs", "werk", "wonen", "veiligheid")
# When the invitees with the `cancel_later` persona cancel, in the order rsvpmail confirmed
# their registration; those confirmed after the plan is used up stay. The event is full and
# has a waitlist from about 16 January; the registration deadline is 25 January 23:59, and no
# offers are made after it. The first two cancellations free seats while offers are still
# made, early enough that the chain they start — an offer accepted; an offer left to expire
# (48 hours), the next one declined, the one after that accepted — ends before the deadline
# even on a short run (the simulator and the service's ticks each lag the accelerated clock
# by hours). The third comes after the deadline: the organiser is told about the freed seat.
CANCELLATIONS = (
    datetime(2023, 1, 18, 10, 0, tzinfo=AMSTERDAM),
    datetime(2023, 1, 19, 10, 0, tzinfo=AMSTERDAM),
    datetime(2023, 1, 27, 11, 0, tzinfo=AMSTERDAM),
)
# How the waitlisted answer seat offers, in the order the offers arrive; every later offer
# is accepted. "ignore": no answer, so the offer expires and the seat goes to the next in line.
OFFER_ANSWERS = ("accept", "ignore", "decline")
OFFER_ANSWER_HOURS = 7
COLLEAGUES = (
    "Karin Smit",
    "Ahmed Benali",
    "Joris Verbeek",
    "Ilse de Haan",
    "Sevda Aydin",
    "Pieter-Jan Hoekstra",
    "Marloes van Rijn",
)


@dataclass(frozen=True)
class Invitee:
    name: str
    email: str
    language: str


@dataclass
class Persona:
    """What one invitee does. `first` is the answer to the invitation."""

    first: str  # accept, companion, substitute, decline, tentative, question, ask_and_accept,
    #             calendar, ooo_then_accept, bounce, unclear, silent, cancel_later
    client: str  # gmail, outlook, apple, english
    delay_hours: float
    session: str
    second_session: str = ""
    companion: tuple[str, str] | None = None  # (name, email or "")
    dietary: str = ""


@dataclass
class _Pending:
    due: datetime
    to_mailbox: str
    build: Callable[[], bytes]
    mail_from: str
    label: str


@dataclass
class Simulator:
    """Plays `invitees` against the mail stack until stopped."""

    invitees: Sequence[Invitee]
    imap_host: str
    imap_port: int
    smtp_host: str
    smtp_port: int
    password: str
    organiser_address: str
    seed: int = 20230201
    poll_seconds: float = 0.3
    cancellations: Sequence[datetime] = CANCELLATIONS
    offer_answers: Sequence[str] = OFFER_ANSWERS
    personas: dict[str, Persona] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    _cancelling: dict[str, datetime] = field(default_factory=dict)  # email → when, as planned
    _offers_answered: int = 0
    _pending: list[_Pending] = field(default_factory=list)
    _seen_uids: dict[str, int] = field(default_factory=dict)
    _extra_people: dict[str, Invitee] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        for index, invitee in enumerate(self.invitees):
            self.personas[invitee.email] = _persona(index, invitee, rng)

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("simulator step failed; continuing")
            self._stop.wait(self.poll_seconds)

    def step(self) -> None:
        """Read new mail of every simulated person, then send what is due by now."""
        for person in [*self.invitees, *self._extra_people.values()]:
            for message in self._new_mail(person.email):
                self._react(person, message)
        self._send_due()

    # -- reading -------------------------------------------------------------------------

    def _new_mail(self, address: str) -> list[Message]:
        last = self._seen_uids.get(address, 0)
        with MailBoxUnencrypted(self.imap_host, self.imap_port, timeout=10) as box:
            box.login(address, self.password)
            uids = [int(u) for u in box.uids(AND(uid=f"{last + 1}:*")) if int(u) > last]
            if not uids:
                return []
            messages: list[Message] = [
                email.message_from_bytes(m.obj.as_bytes(), policy=email.policy.default)
                for m in box.fetch(AND(uid=",".join(map(str, uids))), mark_seen=False)
            ]
        self._seen_uids[address] = max(uids)
        return messages

    # -- deciding ------------------------------------------------------------------------

    def _react(self, person: Invitee, message: Message) -> None:
        kind = str(message.get("X-Rsvpmail-Kind", ""))
        persona = self.personas.get(person.email)
        if persona is None:
            # Companions and substitutes who became participants: they answer offers only.
            persona = Persona("accept", "gmail", 6, rng_session(person.email))
            self.personas[person.email] = persona
        handler = {
            "invitation": self._answer_invitation,
            "seat_offered": self._answer_offer,
            "choose_session": self._answer_choose_session,
            "tentative_ack": self._answer_tentative_ack,
            "registration_confirmed": self._maybe_cancel_later,
            "question_ack": self._answer_after_question,
            "nudge_unanswered": self._answer_nudge,
        }.get(kind)
        if handler is not None:
            handler(person, persona, message)

    def _answer_invitation(self, person: Invitee, persona: Persona, message: Message) -> None:
        at = now() + timedelta(hours=persona.delay_hours)
        first = persona.first
        if first == "bounce":
            domain = person.email.partition("@")[2]
            self._later(
                now() + timedelta(minutes=5),
                person,
                "bounce",
                lambda: replies.delivery_failure(message, person.email, f"mx.{domain}", now()),
                mail_from="",
            )
            return
        if first == "silent":
            return
        if first == "ooo_then_accept":
            self._later(
                now() + timedelta(minutes=2),
                person,
                "out-of-office",
                lambda: replies.out_of_office(message, _sender(person), now(), "20 januari"),
            )
            self._reply(
                person, persona, message, at + timedelta(days=9), _accept_text(persona, person)
            )
            return
        if first == "calendar":
            self._later(
                at,
                person,
                "calendar accept",
                lambda: replies.calendar_reply(message, _sender(person), now()),
            )
            return
        text = {
            "accept": _accept_text,
            "cancel_later": _accept_text,
            "companion": _companion_text,
            "substitute": _substitute_text,
            "decline": _decline_text,
            "tentative": _tentative_text,
            "question": _question_text,
            "ask_and_accept": _ask_and_accept_text,
            "unclear": _unclear_text,
        }[first](persona, person)
        self._reply(person, persona, message, at, text)
        if first == "substitute" and persona.companion and persona.companion[1]:
            name, address = persona.companion
            self._extra_people[address] = Invitee(name, address, "nl")

    def _answer_offer(self, person: Invitee, persona: Persona, message: Message) -> None:
        answer = (
            self.offer_answers[self._offers_answered]
            if self._offers_answered < len(self.offer_answers)
            else "accept"
        )
        self._offers_answered += 1
        log.info("invitee %s will %s the seat offer", _domain(person), answer)
        if answer == "ignore":
            return
        english = person.language == "en"
        if answer == "decline":
            text = (
                "Thank you for the offer, but unfortunately I can no longer make it on "
                "1 February. Please give the seat to someone else."
                if english
                else "Dank voor het aanbod, maar ik kan op 1 februari helaas toch niet. "
                "Geef de plek gerust aan iemand anders."
            )
        else:
            text = "Yes, I'll gladly take the seat." if english else "Ja, graag! Ik neem de plek."
        self._reply(person, persona, message, now() + timedelta(hours=OFFER_ANSWER_HOURS), text)

    def _answer_choose_session(self, person: Invitee, persona: Persona, message: Message) -> None:
        text = (
            f"I'd like to join the {persona.session} session."
            if person.language == "en"
            else f"Doe mij maar de deelsessie {persona.session}."
        )
        self._reply(person, persona, message, now() + timedelta(hours=20), text)

    def _answer_tentative_ack(self, person: Invitee, persona: Persona, message: Message) -> None:
        self._reply(
            person,
            persona,
            message,
            now() + timedelta(days=3),
            f"Inmiddels is mijn agenda rond: ik kom, deelsessie {persona.session}.",
        )

    def _answer_after_question(self, person: Invitee, persona: Persona, message: Message) -> None:
        if persona.first == "question":
            self._reply(
                person,
                persona,
                message,
                now() + timedelta(days=2),
                f"Dank voor het antwoord. Ik meld mij aan voor {persona.session}.",
            )

    def _answer_nudge(self, person: Invitee, persona: Persona, message: Message) -> None:
        # Half of the silent answer the nudge (by address: the same half in every run).
        if persona.first == "silent" and sum(person.email.encode()) % 2 == 0:
            self._reply(
                person,
                persona,
                message,
                now() + timedelta(hours=10),
                "Excuses voor de late reactie. Helaas kan ik niet.",
            )

    def _maybe_cancel_later(self, person: Invitee, persona: Persona, message: Message) -> None:
        """A `cancel_later` invitee takes the next planned cancellation once registered."""
        if persona.first != "cancel_later" or person.email in self._cancelling:
            return
        planned = len(self._cancelling)
        if planned >= len(self.cancellations):
            return
        when = max(self.cancellations[planned], now() + timedelta(hours=1))
        self._cancelling[person.email] = when
        self._reply(
            person,
            persona,
            message,
            when,
            "Helaas moet ik mij toch afmelden voor 1 februari: er is een extra "
            "raadsvergadering ingepland. Hopelijk kan iemand anders mijn plek krijgen.",
        )

    # -- sending -------------------------------------------------------------------------

    def _reply(
        self, person: Invitee, persona: Persona, message: Message, at: datetime, text: str
    ) -> None:
        client = {"gmail": replies.gmail, "apple": replies.apple, "english": replies.english}.get(
            persona.client
        )
        sender = _sender(person)

        def build() -> bytes:
            if client is None:
                return replies.outlook(
                    message, sender, now(), text, signature=_outlook_signature(person)
                )
            return client(message, sender, now(), text)

        self._later(at, person, f"{persona.client} reply", build)

    def _later(
        self,
        at: datetime,
        person: Invitee,
        label: str,
        build: Callable[[], bytes],
        *,
        mail_from: str | None = None,
    ) -> None:
        self._pending.append(
            _Pending(
                at, person.email, build, person.email if mail_from is None else mail_from, label
            )
        )

    def _send_due(self) -> None:
        due = [p for p in self._pending if p.due <= now()]
        if not due:
            return
        self._pending = [p for p in self._pending if p.due > now()]
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30) as smtp:
            for item in due:
                raw = item.build()
                to = _recipient(raw) or self.organiser_address
                smtp.sendmail(item.mail_from, [to], raw)
                self.sent.append(item.label)
                log.info("invitee %s sent %s", item.to_mailbox.partition("@")[2], item.label)


# -- personas ----------------------------------------------------------------------------


def _persona(index: int, invitee: Invitee, rng: random.Random) -> Persona:
    """A fixed, varied cast: the same seed gives the same demo every time."""
    script = [
        "accept",
        "companion",
        "accept",
        "decline",
        "calendar",
        "cancel_later",
        "question",
        "accept",
        "tentative",
        "accept",
        "ooo_then_accept",
        "accept",
        "substitute",
        "cancel_later",
        "accept",
        "bounce",
        "accept",
        "ask_and_accept",
        "unclear",
        "accept",
        "companion",
        "decline",
        "accept",
        "silent",
        "accept",
        "cancel_later",
        "accept",
        "calendar",
        "accept",
        "accept",
    ]
    first = script[index % len(script)]
    if index >= 40 and first in ("bounce", "substitute"):
        first = "accept"
    client = "english" if invitee.language == "en" else rng.choice(["gmail", "outlook", "apple"])
    session, second = rng.sample(SESSIONS, 2)
    companion = None
    if first in ("companion", "substitute"):
        # A colleague from the same gemeente; never someone on the invitee list itself.
        name = COLLEAGUES[index % len(COLLEAGUES)]
        domain = invitee.email.partition("@")[2]
        with_email = index % 3 != 1
        local = name.split()[0][0].lower() + "." + "".join(name.split()[1:]).lower()
        companion = (name, f"{local}.collega@{domain}" if with_email else "")
    return Persona(
        first=first,
        client=client,
        delay_hours=rng.uniform(2, 24 * 6),
        session=session,
        second_session=second,
        companion=companion,
        dietary=rng.choice(["", "", "", "Ik eet vegetarisch.", "Graag glutenvrij."]),
    )


def rng_session(seed: str) -> str:
    return SESSIONS[sum(seed.encode()) % len(SESSIONS)]


def _accept_text(p: Persona, person: Invitee) -> str:
    if person.language == "en":
        return (
            "Thank you for the invitation. Yes, I would be glad to attend; "
            f"I'd like to join the {p.session} session."
        )
    options = [
        f"Ja, ik kom graag. Mijn voorkeur gaat uit naar de deelsessie {p.session}. {p.dietary}",
        f"Beste Marieke,\n\nGraag meld ik mij aan voor de bijeenkomst op 1 februari. Ik kies voor "
        f"de deelsessie {p.session}.",
        f"Ja hoor, ik ben erbij! {p.session.capitalize()} graag.",
        f"Hierbij meld ik mij aan. Liefst {p.session}, anders {p.second_session}. {p.dietary}",
    ]
    return options[sum(person.email.encode()) % len(options)].strip()


def _companion_text(p: Persona, person: Invitee) -> str:
    assert p.companion is not None
    name, address = p.companion
    who = f"{name} ({address})" if address else name
    if person.language == "en":
        return f"Yes, I'll come, session {p.session}, together with my colleague {who}."
    return f"Ja, ik kom graag, deelsessie {p.session}, met mijn collega wethouder {who}."


def _substitute_text(p: Persona, person: Invitee) -> str:
    assert p.companion is not None
    name, address = p.companion
    who = f"{name} ({address})" if address else name
    return (
        f"Ik kan helaas niet, maar mijn collega {who} komt in mijn plaats. "
        f"Zij kiest voor {p.session}."
    )


def _decline_text(p: Persona, person: Invitee) -> str:
    if person.language == "en":
        return "Unfortunately I cannot attend on 1 February. Best of luck with the meeting."
    return "Helaas kan ik er op 1 februari niet bij zijn vanwege een raadsvergadering."


def _tentative_text(p: Persona, person: Invitee) -> str:
    return "Ik kom onder voorbehoud; het hangt af van de agenda van de gemeenteraad."


def _question_text(p: Persona, person: Invitee) -> str:
    return (
        "Is er parkeergelegenheid bij de locatie? En is het gebouw toegankelijk met een rolstoel?"
    )


def _ask_and_accept_text(p: Persona, person: Invitee) -> str:
    return (
        f"Ja, ik kom, deelsessie {p.session}. "
        "Mag ik een korte presentatie over onze aanpak meenemen?"
    )


def _unclear_text(p: Persona, person: Invitee) -> str:
    return "Ja. Of nee, eigenlijk weet ik het nog niet. Mijn secretaresse neemt contact op."


def _outlook_signature(person: Invitee) -> str:
    return (
        f"Met vriendelijke groet,\n\n{person.name}\nWethouder\n\n"
        "Dit bericht kan informatie bevatten die niet voor u is bestemd. Indien u niet de "
        "geadresseerde bent of dit bericht abusievelijk aan u is toegezonden, wordt u verzocht "
        "dat aan de afzender te melden en het bericht te verwijderen."
    )


def _domain(person: Invitee) -> str:
    return person.email.partition("@")[2]


def _sender(person: Invitee) -> tuple[str, str]:
    return (person.name, person.email)


def _recipient(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return parseaddr(str(message.get("To", "")))[1]
