"""What a mail says is true in the situation the rules put the reader in.

Each test builds the situation with the registration rules (replies through the parser, or
given readings, as tests/test_registration.py does), reads the mail the rules queued, and
checks its text against the state — and, where a mail promises what a later reply does,
makes that reply and checks the promise. Runs on SQLite and PostgreSQL (the `db` fixture).
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from sqlalchemy.orm import Session

from db.models import (
    InvitationStatus,
    OutboundMessage,
    Participant,
    ParticipantStatus,
)
from tests.mailfactory import ManualClock, World, bounce, deliver
from workflows.corrections import Answer, record_answer
from workflows.inbound import MAX_DIAGNOSTIC, server_diagnostic
from workflows.seats import waitlist_position
from workflows.transitions import transition
from workflows.understanding import PersonMention, ReplyKind

P = ParticipantStatus
ACCEPT, DECLINE = ReplyKind.ACCEPT, ReplyKind.DECLINE


def text_of(row: OutboundMessage) -> str:
    """The plain-text part of a queued mail, as the reader sees it."""
    assert row.raw is not None
    msg = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def html_of(row: OutboundMessage) -> str:
    assert row.raw is not None
    msg = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def last_mail(w: World, kind: str, p: Participant) -> OutboundMessage:
    mails = w.mails(kind, to=p.person.email)
    assert mails, f"no {kind} to {p.person.email}: {w.kinds_to(p)}"
    return mails[-1]


def full_event(w: World, n: int = 1) -> list[Participant]:
    """`n` registered invitees filling an event of capacity `n`."""
    people = [w.invitee() for _ in range(n)]
    for p in people:
        w.tell(p, ACCEPT, session="wonen")
    assert w.statuses(*people) == [P.REGISTERED] * n
    return people


# --------------------------------------------------------------------------- 1. session choice


def test_session_chosen_on_the_waitlist_says_still_waiting_with_position(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=1)
    full_event(w)
    first, p = w.invitee(), w.invitee("Lotte El Amrani")
    w.tell(first, ACCEPT)
    w.tell(p, ACCEPT)
    assert w.status(p) is P.WAITLISTED
    w.say(p, "Ja, ik kies de deelsessie wonen.")
    assert w.status(p) is P.WAITLISTED
    p = w.participants()[-1]
    assert p.session is not None and p.session.key == "wonen"
    text = text_of(last_mail(w, "session_confirmed", p))
    title = p.session.title
    assert f"Wij hebben genoteerd dat u tijdens ‘{w.event.title}’" in text
    assert f"graag deelneemt aan de deelsessie ‘{title}’." in text
    assert "U staat nog op de wachtlijst, op plaats 2; een plaats hebben wij nog niet" in text
    assert waitlist_position(db, p) == 2
    assert "U neemt" not in text and "Locatie:" not in text


def test_session_chosen_by_hand_on_the_waitlist_in_english(db: Session, clock: ManualClock) -> None:
    # `rsvpmail answer … --as accept --session X` for someone who cannot be registered now.
    w = World(db, clock, capacity=1)
    full_event(w)
    p = w.invitee("Alex Morgan")
    p.person.language = "en"
    w.tell(p, ACCEPT)
    record_answer(db, w.event, p.person.email, answer=Answer.ACCEPT, actor="test", session="werk")
    db.commit()
    assert w.status(p) is P.WAITLISTED
    text = text_of(last_mail(w, "session_confirmed", p))
    assert "We have noted that at" in text
    assert "You are still on the waiting list, at number 1; we do not have a place" in text
    assert "you will take part" not in text and "Venue:" not in text


def test_session_chosen_with_an_open_offer_says_the_offer_is_still_open(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=1)
    [holder] = full_event(w)
    p = w.invitee()
    w.tell(p, ACCEPT)
    w.tell(holder, DECLINE)  # cancels: the seat is offered to p
    assert w.status(p) is P.OFFERED
    w.tell(p, ReplyKind.UNCLEAR, session="onderwijs")
    assert w.status(p) is P.OFFERED
    text = text_of(last_mail(w, "session_confirmed", p))
    assert "De plaats die wij u hebben aangeboden, heeft u nog niet aangenomen." in text
    # The offer's own deadline (48 hours after 10 January 10:00 local time).
    assert "uiterlijk donderdag 12 januari 2023, 10:00 uur" in text
    assert "dan vervalt het aanbod" in text
    assert "U neemt" not in text


def test_session_chosen_when_registered_says_they_take_part(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=5)
    p = w.invitee()
    w.tell(p, ACCEPT)
    w.say(p, "Ik kies de deelsessie veiligheid.")
    p = w.participants()[0]
    assert p.status is P.REGISTERED and p.session is not None
    text = text_of(last_mail(w, "session_confirmed", p))
    assert f"U neemt tijdens ‘{w.event.title}’ op woensdag 1 februari 2023 deel aan" in text
    assert "wachtlijst" not in text and "Locatie:" in text


# --------------------------------------------------------------------------- 2. tentative


def test_tentative_when_full_says_a_yes_goes_on_the_waitlist(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=1)
    full_event(w)
    p = w.invitee()
    w.tell(p, ReplyKind.TENTATIVE)
    text = text_of(last_mail(w, "tentative_ack", p))
    assert "Alle plaatsen zijn op dit moment bezet." in text
    assert "Meldt u zich definitief aan, dan plaatsen wij u op de wachtlijst." in text
    assert "Wij kunnen pas een plaats voor u reserveren" not in text
    w.tell(p, ACCEPT)  # what the mail promised
    assert w.status(p) is P.WAITLISTED


def test_tentative_with_a_seat_no_one_waiting_fits_keeps_the_plain_advice(
    db: Session, clock: ManualClock
) -> None:
    # One seat free, and a pair waits for two: the seat is the newcomer's if they say yes.
    w = World(db, clock, capacity=2)
    full_event(w, 1)
    pair = w.invitee()
    w.tell(pair, ACCEPT, companions=(PersonMention("Karin Smit", "k.smit@zwaanshoek.example"),))
    assert w.status(pair) is P.WAITLISTED
    p = w.invitee()
    w.tell(p, ReplyKind.TENTATIVE)
    text = text_of(last_mail(w, "tentative_ack", p))
    assert "Alle plaatsen zijn" not in text and "wachtlijst" not in text
    w.tell(p, ACCEPT)
    assert w.status(p) is P.REGISTERED


def test_tentative_with_seats_free_keeps_the_plain_advice(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=5)
    p = w.invitee()
    p.person.language = "en"
    w.tell(p, ReplyKind.TENTATIVE)
    text = text_of(last_mail(w, "tentative_ack", p))
    assert "Places are limited, and we can only reserve a place for you once" in text
    assert "waiting list" not in text


# --------------------------------------------------------------------------- 3. declined offer


def test_declining_an_offer_gets_a_text_for_a_withdrawn_offer(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=1)
    [holder] = full_event(w)
    p, next_one, last_one = w.invitee(), w.invitee(), w.invitee()
    for waiting in (p, next_one, last_one):
        w.tell(waiting, ACCEPT)
    w.tell(holder, DECLINE)
    assert w.status(p) is P.OFFERED
    w.say(p, "Nee, ik kan helaas toch niet.")
    assert w.statuses(p, next_one) == [P.DECLINED, P.OFFERED]  # passed on
    row = last_mail(w, "declined_ack", p)
    text = text_of(row)
    assert "Wij hebben ons aanbod ingetrokken, zodat iemand anders de kans krijgt." in text
    assert "collega in uw plaats" not in text and "Laat het ons dan" not in text
    assert (
        "Kunt u later toch komen? Antwoord dan uiterlijk woensdag 25 januari 2023 met ‘ja’ op "
        "deze e-mail. Is er dan een plaats vrij en staat niemand op de wachtlijst, dan melden "
        "wij u aan; anders plaatsen wij u opnieuw op de wachtlijst, achteraan."
    ) in text
    assert "ingetrokken" in html_of(row)
    # The promise: a later yes puts them at the end of the waitlist (someone else waits).
    w.say(p, "Ja, ik kan toch komen!")
    assert w.status(p) is P.WAITLISTED
    assert waitlist_position(db, p) == 2  # behind the one who waited, not back in front


def test_declining_an_invitation_keeps_the_substitute_suggestion(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, capacity=5)
    p = w.invitee()
    w.say(p, "Nee, helaas kan ik niet komen.")
    text = text_of(last_mail(w, "declined_ack", p))
    assert "Wilt u een collega in uw plaats laten gaan?" in text
    assert "ingetrokken" not in text


# --------------------------------------------------------------------------- 4. bounces


def mark_sent(db: Session, p: Participant) -> None:
    assert p.invitation is not None
    if p.invitation.status is InvitationStatus.PENDING:
        transition(db, p.invitation, InvitationStatus.QUEUED, reason="test: queued")
        transition(db, p.invitation, InvitationStatus.SENT, reason="test: sent")
    db.commit()


def bounce_notice(w: World, p: Participant) -> str:
    mark_sent(w.db, p)
    deliver(w.db, bounce(recipient=p.person.email, original_token=w.token(p)))
    [notice] = w.mails("organiser_notice")
    return text_of(notice)


def test_bounce_notice_quotes_the_server_and_advises_the_invitee_list(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    p = w.invitee("Lotte El Amrani")
    w.tell(p, ACCEPT)
    text = bounce_notice(w, p)
    assert (
        f"- De e-mail aan Lotte El Amrani <{p.person.email}> kon niet worden afgeleverd. "
        f"Melding van de mailserver: 550 5.1.1 <{p.person.email}>: Recipient address rejected: "
        "User unknown\n"
    ) in text
    assert "bounce:" not in text and "DSN" not in text
    assert "- Status van Lotte El Amrani: aangemeld." in text
    assert "- Verbeter het adres in de genodigdenlijst en importeer die opnieuw" in text


def test_bounce_notice_for_a_companion_says_ask_the_inviter(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    head = w.invitee("Lotte El Amrani")
    w.tell(head, ACCEPT, companions=(PersonMention("Karin Smit", "k.smit@zwaanshoek.example"),))
    [karin] = w.companions(head)
    assert karin.status is P.REGISTERED
    text = bounce_notice(w, karin)
    assert "Melding van de mailserver: 550 5.1.1 <k.smit@zwaanshoek.example>:" in text
    assert (
        "- Karin Smit staat niet in de genodigdenlijst, maar is als collega aangemeld door "
        "Lotte El Amrani. Vraag Lotte El Amrani om het juiste adres van Karin Smit."
    ) in text
    assert "genodigdenlijst en importeer" not in text


def test_bounce_notice_for_a_substitute_names_who_sent_them(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    p = w.invitee("Lotte El Amrani")
    w.tell(p, ACCEPT)
    w.tell(p, DECLINE, substitute=PersonMention("Jan de Boer", "j.deboer@zwaanshoek.example"))
    [sub] = [x for x in w.participants() if x.person.email == "j.deboer@zwaanshoek.example"]
    text = bounce_notice(w, sub)
    assert "als vervanger opgegeven door Lotte El Amrani" in text
    assert "genodigdenlijst en importeer" not in text


def test_bounce_notice_for_someone_who_cancelled_needs_no_action(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    p = w.invitee("Lotte El Amrani")
    p.person.language = "en"  # the notice follows the event's language, not theirs
    w.tell(p, ACCEPT)
    w.tell(p, DECLINE)
    assert w.status(p) is P.CANCELLED
    text = bounce_notice(w, p)
    assert "- Lotte El Amrani heeft zich al afgemeld; u hoeft niets te doen." in text
    assert "Verbeter het adres" not in text and "Status van" not in text


def test_server_diagnostic_is_one_line_of_limited_length() -> None:
    address = "k.smit@zwaanshoek.example"
    raw = bounce(recipient=address, original_token=None)
    assert server_diagnostic(raw, address) == (
        f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
    )
    long_reason = "no such mailbox here " * 30
    folded = raw.replace(b"User unknown", long_reason.encode() + b"\r\n  (second line)")
    found = server_diagnostic(folded, address)
    assert "\n" not in found and len(found) <= MAX_DIAGNOSTIC and found.endswith("…")
    assert found.startswith(f"550 5.1.1 <{address}>: Recipient address rejected: no such")
    # A plain-text bounce without a DSN: the line that gives the server's reply.
    text_only = (
        b"From: MAILER-DAEMON@mx.example\r\nTo: aanmelden@wijkwijzer.example\r\n"
        b"Subject: failure notice\r\n\r\nHi. This is the qmail-send program.\r\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n"
        b"<" + address.encode() + b">:\r\n"
        b"Remote host said: 550 5.1.1 mailbox unavailable\r\n"
    )
    assert (
        server_diagnostic(text_only, address) == "Remote host said: 550 5.1.1 mailbox unavailable"
    )
    assert server_diagnostic(b"", address) == ""
    assert server_diagnostic(None, address) == ""


# --------------------------------------------------------------------------- 5. wording


def test_question_ack_is_written_by_the_contact_who_signs_it(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    p = w.invitee()
    w.tell(p, ReplyKind.QUESTION, reply_text="Is er parkeergelegenheid?")
    text = text_of(last_mail(w, "question_ack", p))
    contact = w.event.contact_name
    assert "Uw vraag is naar mij doorgestuurd; ik beantwoord die zo snel mogelijk" in text
    assert "Dan kunt u mij ook rechtstreeks bereiken via" in text
    body, signature = text.split("Met vriendelijke groet,")
    assert contact not in body and contact in signature


def test_offer_and_waitlist_ask_to_accept_the_place(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, capacity=1)
    [holder] = full_event(w)
    p = w.invitee()
    w.tell(p, ACCEPT)
    assert "om de plaats aan te nemen" in text_of(last_mail(w, "waitlisted", p))
    w.tell(holder, DECLINE)
    offer = text_of(last_mail(w, "seat_offered", p))
    assert "Wilt u de plaats aannemen?" in offer
    assert "innemen" not in offer


# --------------------------------------------------------------------------- moved along


def test_a_colleague_moved_along_to_another_deelsessie_is_told(
    db: Session, clock: ManualClock
) -> None:
    # Found in a walk-through: the inviter's new deelsessie moved their colleague too, but
    # only the inviter was mailed; her confirmation still named the old one.
    w = World(db, clock, capacity=5)
    p = w.invitee("Pieter Jansen")
    karin = PersonMention("Karin Smit", "k.smit@zwaanshoek.example")
    w.tell(p, ACCEPT, session="wonen", companions=(karin,))
    [colleague] = w.companions(p)
    w.tell(p, ACCEPT, session="werk")
    assert colleague.session is not None and colleague.session.key == "werk"
    text = text_of(last_mail(w, "session_confirmed", colleague))
    assert "Pieter Jansen heeft een andere deelsessie gekozen, ook voor u als collega." in text
    assert "Werk" in text or "werk" in text


def test_a_forwarded_question_of_someone_who_said_maybe_says_so(
    db: Session, clock: ManualClock
) -> None:
    # Found in a walk-through: the forward said "uitgenodigd, nog geen antwoord".
    w = World(db, clock, capacity=5)
    p = w.invitee()
    w.tell(p, ReplyKind.TENTATIVE)
    w.tell(p, ReplyKind.QUESTION, has_question=True, reply_text="Is er parkeergelegenheid?")
    [forward] = w.mails("question_forwarded")
    text = text_of(forward)
    assert "heeft ‘misschien’ geantwoord" in text and "nog geen antwoord" not in text
