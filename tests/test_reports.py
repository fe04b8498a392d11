"""The organiser's view (workflows.reports) on a realistic event, on SQLite and PostgreSQL.

The scenario is built the way the rules build it: invitations via the factories, every status
change through `transition()` (so the audit trail is real), companions as participants linked
to the person who brought them, offers with deadlines, replies in review, bounces and mail
the server refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import (
    Event,
    EventSession,
    InboundMessage,
    InboundStatus,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
)
from tests.factories import invite, make_event
from workflows.clock import now
from workflows.errors import NotFound
from workflows.reports import (
    Companion,
    audit_trail,
    describe_classification,
    people,
    review_detail,
    review_event,
    review_items,
    session_key,
    status_report,
)
from workflows.transitions import record_creation, transition
from workflows.understanding import PersonMention, ReplyKind, Understanding

PS = ParticipantStatus
START = datetime(2023, 1, 9, 9, 0, tzinfo=UTC)  # invitations went out in early January


@dataclass
class Scenario:
    """Handles on what was built, so tests compare against the data, not against constants."""

    event: Event
    other_event: Event
    by_email: dict[str, Participant] = field(default_factory=dict)
    waiting_order: list[str] = field(default_factory=list)  # heads, in waitlist_seq order
    party_sizes: dict[str, int] = field(default_factory=dict)
    review_ids: list[int] = field(default_factory=list)  # this event's + unmatched, by time
    other_review_id: int = 0
    offer_deadline: datetime = START
    waitlisted_at: dict[str, datetime] = field(default_factory=dict)

    def status_of(self, email: str) -> ParticipantStatus:
        return self.by_email[email].status


def _move(db: Session, p: Participant, *path: StrEnum, seq: int | None = None) -> None:
    for status in path:
        if status is PS.WAITLISTED:
            assert seq is not None
            p.waitlist_seq = seq
        if status is PS.OFFERED:
            p.offer_expires_at = now() + timedelta(hours=48)
        transition(db, p, status, reason=f"test: {status}", actor="test")
    db.flush()


def _reply(sender: str, subject: str, text: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: aanmelden@wijkwijzer.example\r\nSubject: {subject}\r\n"
        f"Date: Tue, 10 Jan 2023 10:00:00 +0100\r\nMessage-ID: <{abs(hash(text))}@mail.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n\r\n> Op 9 jan. 2023 schreef WijkWijzer:\r\n> Uitnodiging\r\n"
    ).encode()


def _review(
    db: Session,
    *,
    event: Event | None,
    sender: str,
    subject: str,
    understanding: Understanding,
    why: str,
    invitation: Invitation | None = None,
) -> InboundMessage:
    message = InboundMessage(
        message_id=f"<{sender}.{subject}.{now().timestamp()}@mail.example>",
        raw=_reply(sender, subject, understanding.reply_text),
        raw_size=500,
        from_address=sender,
        subject=subject,
        event_id=event.id if event else None,
        invitation_id=invitation.id if invitation else None,
        kind=understanding.kind.value,
        classification=understanding.to_record(),
    )
    db.add(message)
    db.flush()
    record_creation(db, message, reason="fetched from INBOX")
    transition(db, message, InboundStatus.REVIEW, reason=why)
    db.flush()
    return message


def _outbound(db: Session, event: Event, n: int, recipient: str, *path: OutboundStatus) -> None:
    mail = OutboundMessage(
        idempotency_key=f"test:{n}",
        kind="registration_confirmed",
        event_id=event.id,
        recipient=recipient,
        message_id=f"<out{n}.rsvpmail@wijkwijzer.example>",
        raw=b"Subject: x\r\n\r\nx\r\n",
    )
    db.add(mail)
    db.flush()
    record_creation(db, mail, reason="queued")
    for status in path:
        if status is OutboundStatus.SENDING:
            mail.attempts += 1
        if status is OutboundStatus.FAILED:
            mail.last_error = f"550 5.1.1 <{recipient}>: Recipient address rejected"
        transition(db, mail, status, reason=f"test: {status}")
    db.flush()


def build_scenario(db: Session, traveller: time_machine.Traveller) -> Scenario:
    """An event of 8 seats; wonen has 3 seats of its own. Commits at the end."""
    event = make_event(db, capacity=8)
    other = make_event(db, slug="ander-evenement", title="Een ander evenement")
    wonen = db.scalar(
        select(EventSession).where(EventSession.event_id == event.id, EventSession.key == "wonen")
    )
    assert wonen is not None
    wonen.capacity = 3
    werk = db.scalar(
        select(EventSession).where(EventSession.event_id == event.id, EventSession.key == "werk")
    )
    assert werk is not None
    s = Scenario(event=event, other_event=other)

    def person(email: str, name: str, org: str, **fields: object) -> Participant:
        _, participant = invite(db, event, email, name, organisation=org, role="Wethouder")
        s.by_email[email] = participant
        for key, value in fields.items():
            setattr(participant, key, value)
        return participant

    # Registered: Lotte (wonen, vegetarian) brings Karin; Femke (werk); Jan has not chosen yet.
    lotte = person(
        "l.elamrani@zwaanshoek.example",
        "Lotte El Amrani",
        "Gemeente Zwaanshoek",
        session_id=wonen.id,
        dietary="vegetarisch",
    )
    karin = person(
        "k.smit@zwaanshoek.example", "Karin Smit", "Gemeente Zwaanshoek", session_id=wonen.id
    )
    karin.companion_of_id = lotte.id
    femke = person(
        "f.visser@oosterdijk.example", "Femke Visser", "Gemeente Oosterdijk", session_id=werk.id
    )
    jan = person("j.meijer@bergveld.example", "Jan Meijer", "Gemeente Bergveld")
    for p in (lotte, karin, femke, jan):
        _move(db, p, PS.REGISTERED)
    # After the event some were marked (kept in the seat count so numbers do not jump).
    anna = person("a.bakker@dijkstad.example", "Anna Bakker", "Gemeente Dijkstad")
    _move(db, anna, PS.REGISTERED, PS.ATTENDED)
    piet = person(
        "p.devries@veenoord.example", "Piet de Vries", "Gemeente Veenoord", session_id=wonen.id
    )
    _move(db, piet, PS.REGISTERED, PS.NO_SHOW)

    # Waitlist, arrival order deliberately unlike creation order.
    traveller.shift(timedelta(hours=1))
    sanne = person("s.jansen@havenstad.example", "Sanne Jansen", "Gemeente Havenstad")
    ruud = person("r.mulder@havenstad.example", "Ruud Mulder", "Gemeente Havenstad")
    ruud.companion_of_id = sanne.id
    _move(db, sanne, PS.WAITLISTED, seq=5)
    _move(db, ruud, PS.WAITLISTED, seq=6)
    s.waitlisted_at["s.jansen@havenstad.example"] = now()
    traveller.shift(timedelta(hours=1))
    mo = person(
        "m.vanderlinden@leidenvaart.example", "Mohamed van der Linden", "Gemeente Leidenvaart"
    )
    _move(db, mo, PS.WAITLISTED, seq=2)
    s.waitlisted_at["m.vanderlinden@leidenvaart.example"] = now()
    traveller.shift(timedelta(hours=1))
    # A companion whose host got in but who did not: a party of one on the waitlist.
    tom = person("t.dekker@oosterdijk.example", "Tom Dekker", "Gemeente Oosterdijk")
    tom.companion_of_id = femke.id
    _move(db, tom, PS.WAITLISTED, seq=9)
    s.waitlisted_at["t.dekker@oosterdijk.example"] = now()
    s.waiting_order = [
        "m.vanderlinden@leidenvaart.example",
        "s.jansen@havenstad.example",
        "t.dekker@oosterdijk.example",
    ]
    s.party_sizes = {
        "m.vanderlinden@leidenvaart.example": 1,
        "s.jansen@havenstad.example": 2,
        "t.dekker@oosterdijk.example": 1,
    }

    # An open offer (holds a seat) and one that expired.
    traveller.shift(timedelta(hours=1))
    eva = person("e.smits@kerkdorp.example", "Eva Smits", "Gemeente Kerkdorp")
    _move(db, eva, PS.WAITLISTED, PS.OFFERED, seq=1)
    s.offer_deadline = now() + timedelta(hours=48)
    bas = person("b.peters@kerkdorp.example", "Bas Peters", "Gemeente Kerkdorp")
    _move(db, bas, PS.WAITLISTED, PS.OFFERED, PS.EXPIRED, seq=3)
    event.waitlist_counter = 9  # the numbers handed out above, as the rules would have

    # Declined, cancelled, still invited (one of whom said "misschien").
    _move(db, person("h.dekker@veenoord.example", "Henk Dekker", "Gemeente Veenoord"), PS.DECLINED)
    _move(
        db,
        person("i.bos@dijkstad.example", "Ingrid Bos", "Gemeente Dijkstad"),
        PS.REGISTERED,
        PS.CANCELLED,
    )
    person("w.kok@bergveld.example", "Wim Kok", "Gemeente Bergveld", tentative_at=now())
    person("n.vos@bergveld.example", "Nina Vos", "Gemeente Bergveld")

    # A permanent bounce on an invitation.
    bounced_inv, bounced = invite(
        db, event, "oud.adres@leidenvaart.example", "Oud Adres", organisation="Gemeente Leidenvaart"
    )
    s.by_email["oud.adres@leidenvaart.example"] = bounced
    for status in (InvitationStatus.QUEUED, InvitationStatus.UNDELIVERABLE):
        transition(db, bounced_inv, status, reason=f"test: {status}")
    bounced_inv.bounce_reason = "550 5.1.1 user unknown"

    # Outbox: one failed for good, one pending, one being sent, one sent.
    _outbound(
        db, event, 1, "oud.adres@leidenvaart.example", OutboundStatus.SENDING, OutboundStatus.FAILED
    )
    _outbound(db, event, 2, "f.visser@oosterdijk.example")
    _outbound(db, event, 3, "j.meijer@bergveld.example", OutboundStatus.SENDING)
    _outbound(
        db, event, 4, "l.elamrani@zwaanshoek.example", OutboundStatus.SENDING, OutboundStatus.SENT
    )
    _outbound(db, other, 5, "x@elders.example", OutboundStatus.SENDING, OutboundStatus.FAILED)

    # Review: a secretary answering for Nina, an unmatched reply, and one of another event.
    traveller.shift(timedelta(hours=1))
    nina_inv = db.get(Invitation, s.by_email["n.vos@bergveld.example"].invitation_id)
    secretary = _review(
        db,
        event=event,
        sender="secretariaat@bergveld.example",
        subject="RE: Uitnodiging Leren van Rotterdam Zuid",
        understanding=Understanding(
            kind=ReplyKind.ACCEPT,
            session="wonen",
            companions=(PersonMention("Karel Appel", "k.appel@bergveld.example"),),
            reply_text="Mevrouw Vos komt graag, deelsessie wonen, met Karel Appel.",
        ),
        why="sent by secretariaat@bergveld.example, not by the invitee",
        invitation=nina_inv,
    )
    traveller.shift(timedelta(minutes=5))
    unmatched = _review(
        db,
        event=None,
        sender="onbekend@elders.example",
        subject="Vraag",
        understanding=Understanding(kind=ReplyKind.UNCLEAR, reply_text="Is er parkeergelegenheid?"),
        why="no invitation matches this message",
    )
    traveller.shift(timedelta(minutes=5))
    other_item = _review(
        db,
        event=other,
        sender="x@elders.example",
        subject="Re: ander",
        understanding=Understanding(kind=ReplyKind.UNCLEAR, reply_text="Hm."),
        why="unclear",
    )
    s.review_ids = [secretary.id, unmatched.id]
    s.other_review_id = other_item.id
    db.commit()
    return s


@pytest.fixture
def traveller() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=False) as t:
        yield t


@pytest.fixture
def scenario(db: Session, traveller: time_machine.Traveller) -> Scenario:
    return build_scenario(db, traveller)


def test_counts_every_status_and_seats(db: Session, scenario: Scenario) -> None:
    report = status_report(db, scenario.event)
    expected = {status.value: 0 for status in PS}
    for participant in scenario.by_email.values():
        expected[participant.status.value] += 1
    assert report.counts == expected
    assert all(report.counts[s.value] > 0 for s in PS)  # the scenario covers every status
    holding = {PS.REGISTERED, PS.OFFERED, PS.ATTENDED, PS.NO_SHOW}
    taken = sum(1 for p in scenario.by_email.values() if p.status in holding)
    assert report.seats_taken == taken == 7
    assert report.seats_left == scenario.event.capacity - taken == 1
    assert report.tentative == 1
    assert report.invitation_counts["undeliverable"] == 1
    assert sum(report.invitation_counts.values()) == len(scenario.by_email)


def test_seats_left_never_negative_after_capacity_was_lowered(
    db: Session, scenario: Scenario
) -> None:
    scenario.event.capacity = 2
    db.commit()
    report = status_report(db, scenario.event)
    assert report.seats_taken == 7
    assert report.seats_left == 0


def test_per_session_counts_with_capacity(db: Session, scenario: Scenario) -> None:
    report = status_report(db, scenario.event)
    sessions = {s.key: s for s in report.sessions}
    assert [s.key for s in report.sessions][:4] == ["onderwijs", "werk", "wonen", "veiligheid"]
    wonen = sessions["wonen"]
    assert (wonen.registered, wonen.no_show, wonen.capacity) == (2, 1, 3)
    assert wonen.taken == 3 and wonen.left == 0
    assert sessions["werk"].registered == 1 and sessions["werk"].capacity is None
    assert sessions["werk"].left is None
    # Seat holders without a choice yet (Jan, Anna, Eva's offer) get their own row.
    unchosen = sessions[""]
    assert unchosen.taken == 3 and unchosen.waitlisted == 4
    assert sum(s.taken for s in report.sessions) == report.seats_taken


def test_waitlist_in_arrival_order_with_parties(db: Session, scenario: Scenario) -> None:
    report = status_report(db, scenario.event)
    assert [w.email for w in report.waitlist] == scenario.waiting_order
    assert [w.position for w in report.waitlist] == [1, 2, 3]
    assert {w.email: w.party_size for w in report.waitlist} == scenario.party_sizes
    # A companion waiting with their host is in the host's party, not listed twice.
    assert "r.mulder@havenstad.example" not in {w.email for w in report.waitlist}
    for entry in report.waitlist:
        assert entry.since == scenario.waitlisted_at[entry.email]
        assert entry.since_local.utcoffset() == timedelta(hours=1)  # CET in January
    seqs = [w.waitlist_seq for w in report.waitlist]
    assert seqs == sorted(seqs)


def test_open_offers_with_local_deadline(db: Session, scenario: Scenario) -> None:
    report = status_report(db, scenario.event)
    assert [o.email for o in report.offers] == ["e.smits@kerkdorp.example"]
    offer = report.offers[0]
    assert offer.expires_at == scenario.offer_deadline
    assert offer.expires_local.tzinfo is not None
    assert offer.expires_local.utcoffset() == timedelta(hours=1)
    assert offer.expires_local == offer.expires_at
    assert not offer.overdue


def test_offer_past_its_deadline_is_flagged(
    db: Session, scenario: Scenario, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(scenario.offer_deadline + timedelta(minutes=1))
    (offer,) = status_report(db, scenario.event).offers
    assert offer.overdue


def test_review_queue_of_the_event_and_unmatched(db: Session, scenario: Scenario) -> None:
    report = status_report(db, scenario.event)
    assert [r.id for r in report.review] == scenario.review_ids
    secretary, unmatched = report.review
    assert secretary.why == "sent by secretariaat@bergveld.example, not by the invitee"
    assert secretary.kind == "accept"
    assert "session wonen" in secretary.parsed and "Karel Appel" in secretary.parsed
    assert secretary.reply_text.startswith("Mevrouw Vos komt graag")
    assert secretary.person_name == "Nina Vos"
    assert secretary.event_slug == scenario.event.slug
    assert unmatched.event_slug is None and unmatched.why == "no invitation matches this message"
    assert secretary.received_at < unmatched.received_at
    # Without an event: everything in review, other events' included.
    everything = [r.id for r in review_items(db)]
    assert everything == [*scenario.review_ids, scenario.other_review_id]
    only_own = review_items(db, scenario.event, include_unmatched=False)
    assert [r.id for r in only_own] == scenario.review_ids[:1]


def test_resolved_items_leave_the_queue(db: Session, scenario: Scenario) -> None:
    message = db.get(InboundMessage, scenario.review_ids[1])
    assert message is not None
    transition(db, message, InboundStatus.PROCESSED, reason="ignored", actor="organiser:t")
    db.commit()
    assert [r.id for r in status_report(db, scenario.event).review] == scenario.review_ids[:1]


def test_review_detail_headers_and_text(db: Session, scenario: Scenario) -> None:
    detail = review_detail(db, scenario.review_ids[0])
    headers = dict(detail.headers)
    assert headers["From"] == "secretariaat@bergveld.example"
    assert headers["Subject"] == "RE: Uitnodiging Leren van Rotterdam Zuid"
    assert detail.text_source == "classification"
    assert "Op 9 jan. 2023 schreef" not in detail.text  # the stripped reply, not the quote
    assert detail.raw_kept
    with pytest.raises(NotFound, match="no inbound message with id 999999"):
        review_detail(db, 999_999)


def test_review_detail_without_classification_shows_the_body(db: Session) -> None:
    message = InboundMessage(
        message_id="<garbage@x.example>",
        raw=b"From: =?utf-8?q?broken\r\nSubject: hallo\r\n\r\nZie bijlage.\r\n",
        raw_size=60,
        from_address="a@x.example",
    )
    db.add(message)
    db.flush()
    transition(db, message, InboundStatus.QUARANTINED, reason="parser crashed")
    db.commit()
    detail = review_detail(db, message.id)
    assert detail.text == "Zie bijlage."
    assert detail.text_source == "body"
    assert detail.item.why == ""  # not a review item: no reason to be in review
    assert detail.item.parsed == "(not classified)"


def test_bounces_failed_mail_and_outbox(db: Session, scenario: Scenario) -> None:
    report = status_report(db, scenario.event)
    (bounce,) = report.bounces
    assert bounce.email == "oud.adres@leidenvaart.example"
    assert bounce.reason == "550 5.1.1 user unknown"
    assert bounce.since is not None
    (failed,) = report.failed_mails  # the other event's failure is not shown here
    assert failed.recipient == "oud.adres@leidenvaart.example"
    assert "Recipient address rejected" in failed.last_error and failed.attempts == 1
    assert report.outbox_pending == 2  # pending + sending; sent and failed do not count


def test_json_is_complete_and_serialisable(db: Session, scenario: Scenario) -> None:
    data = json.loads(json.dumps(status_report(db, scenario.event).to_json_dict()))
    assert data["seats_left"] == 1
    assert data["counts"]["waitlisted"] == 4
    assert [w["position"] for w in data["waitlist"]] == [1, 2, 3]
    wonen = next(s for s in data["sessions"] if s["key"] == "wonen")
    assert (wonen["taken"], wonen["left"]) == (3, 0)
    assert data["offers"][0]["expires_local"].endswith("+01:00")


def test_people_filters_and_companion_links(db: Session, scenario: Scenario) -> None:
    rows = people(db, scenario.event, statuses=[PS.REGISTERED])
    assert [r.name for r in rows] == sorted(r.name for r in rows)
    assert {r.email for r in rows} == {
        e for e, p in scenario.by_email.items() if p.status is PS.REGISTERED
    }
    by_name = {r.name: r for r in rows}
    assert by_name["Karin Smit"].companion_of_name == "Lotte El Amrani"
    assert by_name["Lotte El Amrani"].companions == (Companion("Karin Smit", "registered"),)
    assert by_name["Lotte El Amrani"].session_title == "Wonen: herstructurering en leefbaarheid"
    assert by_name["Lotte El Amrani"].dietary == "vegetarisch"
    assert by_name["Femke Visser"].companions == (Companion("Tom Dekker", "waitlisted"),)
    assert not by_name["Femke Visser"].companions[0].gone
    wonen = people(db, scenario.event, session="wonen")
    assert {r.name for r in wonen} == {"Lotte El Amrani", "Karin Smit", "Piet de Vries"}
    with pytest.raises(NotFound, match=r"no session 'koken'.*wonen"):
        people(db, scenario.event, session="koken")
    assert len(people(db, scenario.event)) == len(scenario.by_email)


def test_a_maybe_counts_only_while_still_invited(db: Session, scenario: Scenario) -> None:
    """`people` and `status` agree: a later yes makes "maybe" history, not the answer."""
    wim = scenario.by_email["w.kok@bergveld.example"]
    (row,) = [r for r in people(db, scenario.event) if r.email == wim.person.email]
    assert row.tentative and status_report(db, scenario.event).tentative == 1
    _move(db, wim, PS.WAITLISTED, seq=10)  # the rules keep tentative_at as a record
    db.commit()
    assert wim.tentative_at is not None
    (row,) = [r for r in people(db, scenario.event) if r.email == wim.person.email]
    assert not row.tentative
    assert status_report(db, scenario.event).tentative == 0


def test_session_key_is_checked_like_people_does(db: Session, scenario: Scenario) -> None:
    assert session_key(db, scenario.event, " Wonen ") == "wonen"
    with pytest.raises(NotFound) as caught:
        session_key(db, scenario.event, "koken")
    with pytest.raises(NotFound) as by_people:
        people(db, scenario.event, session="koken")
    assert str(caught.value) == str(by_people.value)
    assert str(caught.value) == (
        f"event {scenario.event.slug} has no session 'koken' "
        "(sessions: onderwijs, veiligheid, werk, wonen)"
    )


def test_review_event_is_known_before_resolving(db: Session, scenario: Scenario) -> None:
    secretary, unmatched = scenario.review_ids
    other = scenario.other_event
    assert review_event(db, secretary) == scenario.event
    assert review_event(db, unmatched) is None
    nina = scenario.by_email["n.vos@bergveld.example"]
    assert review_event(db, unmatched, nina.id) == scenario.event  # the named participant's
    assert review_event(db, scenario.other_review_id) == other


def test_review_times_are_in_the_events_zone(db: Session, scenario: Scenario) -> None:
    """Unmatched messages listed with an event are in that event's time, like the rest."""
    scenario.event.timezone = "America/New_York"
    db.commit()
    items = review_items(db, scenario.event)
    assert {item.received_local.utcoffset() for item in items} == {timedelta(hours=-5)}
    message = db.get(InboundMessage, scenario.review_ids[0])
    assert message is not None
    message.resolved_at = now()
    db.commit()
    detail = review_detail(db, message.id)
    assert detail.resolved_local is not None
    assert detail.resolved_local == detail.resolved_at
    assert detail.resolved_local.utcoffset() == timedelta(hours=-5)


def test_audit_trail_of_a_person(db: Session, scenario: Scenario) -> None:
    rows = audit_trail(db, scenario.event, person_email="E.Smits@kerkdorp.example")
    changes = [(r.machine, r.old_status, r.new_status) for r in rows]
    assert changes == [
        ("invitation", None, "pending"),
        ("participant", None, "invited"),
        ("participant", "invited", "waitlisted"),
        ("participant", "waitlisted", "offered"),
    ]
    assert [r.at for r in rows] == sorted(r.at for r in rows)
    everything = audit_trail(db, scenario.event)
    assert len(everything) > len(rows)
    inbound_ids = {r.entity_id for r in everything if r.machine == "inbound"}
    assert inbound_ids == {scenario.review_ids[0]}  # not the other event's, nor unmatched
    newest = audit_trail(db, scenario.event, limit=3)
    assert [r.id for r in newest] == [r.id for r in everything[-3:]]
    # A sender without a participant row still has the trail of their messages.
    sent = audit_trail(db, scenario.event, person_email="onbekend@elders.example")
    assert [(r.machine, r.new_status) for r in sent] == [
        ("inbound", "received"),
        ("inbound", "review"),
    ]
    with pytest.raises(NotFound, match=r"niemand@nergens\.example"):
        audit_trail(db, scenario.event, person_email="niemand@nergens.example")


def test_describe_classification_reads_like_a_sentence() -> None:
    understanding = Understanding(
        kind=ReplyKind.DECLINE,
        substitute=PersonMention("Piet Jansen", "p.jansen@a.example"),
        has_question=True,
        language="nl",
    )
    text = describe_classification(understanding.to_record())
    assert text == "decline · substitute: Piet Jansen <p.jansen@a.example> · question · lang nl"
