"""Recording inbound mail, matching it to an invitation, who may act, bounces, review queue."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import workflows.understand
from db.models import (
    AuditEntry,
    InboundMessage,
    InboundStatus,
    InvitationStatus,
    OutboundMessage,
    Participant,
    ParticipantStatus,
)
from tests.factories import invite, make_event
from tests.mailfactory import (
    ManualClock,
    World,
    auto_reply,
    bounce,
    deliver,
    deliver_understood,
    reply,
)
from workflows.errors import RsvpError
from workflows.inbound import (
    list_review,
    process_inbound,
    record_inbound,
    resolve_review,
)
from workflows.outbox import MailKind, queue_mail
from workflows.tokens import calendar_uid
from workflows.transitions import transition
from workflows.understanding import PersonMention, ReplyKind, Understanding

P = ParticipantStatus
R = InboundStatus


def mark_sent(db: Session, p: Participant) -> None:
    assert p.invitation is not None
    transition(db, p.invitation, InvitationStatus.QUEUED, reason="test: queued")
    transition(db, p.invitation, InvitationStatus.SENT, reason="test: sent")
    db.commit()


def invitation_mail(db: Session, w: World, p: Participant) -> OutboundMessage:
    row = queue_mail(
        db,
        key=f"invitation:{p.id}",
        kind=MailKind.INVITATION,
        event=w.event,
        person=p.person,
        participant=p,
        invitation=p.invitation,
    )
    assert row is not None
    db.commit()
    return row


# --------------------------------------------------------------------------- recording


def test_record_inbound_stores_the_envelope(db: Session, clock: ManualClock) -> None:
    raw = reply(
        from_="l.elamrani@zwaanshoek.example",
        from_name="Lotte El Amrani",
        text="Ja, ik kom graag.",
        subject="Uitnodiging: één middag in Rotterdam Zuid",
        message_id="<abc-123@zwaanshoek.example>",
    )
    row, new = record_inbound(db, raw, mailbox="INBOX", uidvalidity=7, uid=42)
    db.commit()
    assert new
    assert row.message_id == "<abc-123@zwaanshoek.example>"
    assert row.from_address == "l.elamrani@zwaanshoek.example"
    assert row.subject == "Re: Uitnodiging: één middag in Rotterdam Zuid"
    assert (row.raw, row.raw_size, row.status) == (raw, len(raw), R.RECEIVED)
    assert (row.mailbox, row.uidvalidity, row.uid) == ("INBOX", 7, 42)
    audit = db.scalars(select(AuditEntry).where(AuditEntry.machine == "inbound")).one()
    assert (audit.entity_id, audit.old_status, audit.new_status) == (row.id, None, "received")


def test_duplicates_by_message_id_and_by_uid(db: Session, clock: ManualClock) -> None:
    raw = reply(from_="a@x.example", text="Ja.", message_id="<same@x.example>")
    first, new = record_inbound(db, raw, mailbox="INBOX", uidvalidity=1, uid=1)
    assert new
    again, new_again = record_inbound(db, raw, mailbox="Archief", uidvalidity=9, uid=5)
    assert (again.id, new_again) == (first.id, False)
    other = reply(from_="a@x.example", text="Ja.", message_id="<other@x.example>")
    same_uid, new_uid = record_inbound(db, other, mailbox="INBOX", uidvalidity=1, uid=1)
    assert (same_uid.id, new_uid) == (first.id, False)
    db.commit()
    assert db.scalar(select(func.count(InboundMessage.id))) == 1


def test_missing_message_id_is_synthesised_from_the_bytes(db: Session, clock: ManualClock) -> None:
    raw = b"From: a@x.example\r\nSubject: ja\r\n\r\nJa, ik kom.\r\n"
    row, _ = record_inbound(db, raw, mailbox="INBOX", uidvalidity=None, uid=None)
    assert row.message_id == f"<{hashlib.sha256(raw).hexdigest()}@rsvpmail.invalid>"
    again, new = record_inbound(db, raw, mailbox="INBOX", uidvalidity=None, uid=None)
    assert (again.id, new) == (row.id, False)


def _garbage() -> st.SearchStrategy[bytes]:
    header_ish = st.lists(
        st.sampled_from(
            [
                b"From: ",
                b"Message-ID: <",
                b"Subject: =?utf-8?b?w6nDqQ==?=",
                b"Subject: =?bogus?q?x?=",
                b"\x00",
                b"\xff\xfe",
                b"\r\n",
                b"\r\n\r\n",
                b"Content-Type: multipart/mixed; boundary=x\r\n",
                b"--x\r\n",
                b"rsvp:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                b"<a@b>",
                b"@",
            ]
        ),
        max_size=30,
    ).map(b"".join)
    return st.one_of(st.binary(max_size=600), header_ish)


def test_garbage_never_raises_and_is_kept(db: Session, backend: str, clock: ManualClock) -> None:
    make_event(db)
    db.commit()

    @settings(
        max_examples=40 if backend == "sqlite" else 15,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(raw=_garbage())
    def check(raw: bytes) -> None:
        row, _ = record_inbound(db, raw, mailbox="INBOX", uidvalidity=None, uid=None)
        status = process_inbound(db, row)
        db.commit()
        assert status in (R.PROCESSED, R.REVIEW, R.QUARANTINED)
        assert row.raw == raw

    check()


# --------------------------------------------------------------------------- matching


def test_token_in_the_reply_address_alone_matches(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    inbound = w.say(p, "Ja, ik kom graag.", token_in_subject=False)
    assert inbound.invitation_id == p.invitation_id
    assert w.status(p) is P.REGISTERED


def test_token_in_the_subject_alone_matches(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    raw = reply(from_=p.person.email, text="Ja, ik kom graag.", to_token=None)
    raw = raw.replace(b"Subject: Re: Uitnodiging", f"Subject: Re: [rsvp:{w.token(p)}]".encode())
    deliver(db, raw)
    assert w.status(p) is P.REGISTERED


def test_in_reply_to_our_own_mail_matches(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    second = make_event(db, slug="tweede-bijeenkomst")
    from workflows.invitees import add_invitation

    _inv2, p2 = add_invitation(db, second, p.person, batch="test", reason="test")
    db.commit()
    sent = invitation_mail(db, w, p)
    # no token anywhere and two open invitations: only the threading can tell which event
    inbound = deliver(
        db,
        reply(from_=p.person.email, text="Ja, ik kom graag.", in_reply_to=sent.message_id),
    )
    assert inbound.invitation_id == p.invitation_id
    assert w.statuses(p, p2) == [P.REGISTERED, P.INVITED]


def test_calendar_uid_matches(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    u = Understanding(kind=ReplyKind.ACCEPT, calendar_uid=calendar_uid(w.token(p)))
    inbound = deliver_understood(db, u, from_=p.person.email, token=None)
    assert inbound.status is R.PROCESSED
    assert w.status(p) is P.REGISTERED


def test_sender_address_matches_the_one_open_invitation(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    deliver(db, reply(from_=p.person.email.upper(), text="Ja, ik kom graag.", to_token=None))
    assert w.status(p) is P.REGISTERED


def test_sender_invited_to_several_events_goes_to_review(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    second = make_event(db, slug="tweede-bijeenkomst")
    from workflows.invitees import add_invitation

    add_invitation(db, second, p.person, batch="test", reason="test")
    db.commit()
    inbound = deliver(db, reply(from_=p.person.email, text="Ja, ik kom graag.", to_token=None))
    assert inbound.status is R.REVIEW
    assert "several events" in list_review(db)[0].reason


def test_unknown_sender_without_token_goes_to_review(db: Session, clock: ManualClock) -> None:
    World(db, clock)
    inbound = deliver(db, reply(from_="onbekend@elders.example", text="Ja, ik kom graag."))
    assert inbound.status is R.REVIEW
    assert list_review(db)[0].reason == "no invitation matches this message"


# --------------------------------------------------------------------------- who may act


def test_spoofed_reply_with_a_valid_token_changes_nothing(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    before = w.snapshot()
    inbound = w.say(p, "Ik moet mij helaas afmelden.", from_="iemand@elders.example")
    assert inbound.status is R.REVIEW
    assert inbound.invitation_id == p.invitation_id
    people, outbox, _ = w.snapshot()
    assert (people, outbox) == before[:2]
    assert "not by the invitee" in list_review(db)[0].reason


def test_secretary_of_an_untrusted_domain_goes_to_review(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee(domain="zwaanshoek.example")
    inbound = w.say(p, "Ja, de wethouder komt graag.", from_="secretariaat@zwaanshoek.example")
    assert inbound.status is R.REVIEW
    assert w.status(p) is P.INVITED


def test_secretary_of_a_trusted_domain_acts_and_is_named(db: Session, clock: ManualClock) -> None:
    w = World(db, clock, allowed_sender_domains=("zwaanshoek.example",))
    p = w.invitee(domain="zwaanshoek.example")
    inbound = w.say(p, "Ja, ik kom graag.", from_="secretariaat@zwaanshoek.example")
    assert inbound.status is R.PROCESSED
    assert w.status(p) is P.REGISTERED
    audit = db.scalars(
        select(AuditEntry).where(
            AuditEntry.machine == "participant", AuditEntry.inbound_message_id == inbound.id
        )
    ).one()
    assert audit.actor.startswith("secretariaat@zwaanshoek.example")
    # the confirmation goes to the invitee, who is the one registered
    assert w.kinds_to(p)[0] == "registration_confirmed"


def test_a_trusted_domain_does_not_let_other_organisations_act(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, allowed_sender_domains=("zwaanshoek.example",))
    p = w.invitee(domain="oosterdijk.example")
    inbound = w.say(p, "Ja, ik kom graag.", from_="secretariaat@zwaanshoek.example")
    assert inbound.status is R.REVIEW


# --------------------------------------------------------------------------- automatic mail


def test_auto_reply_changes_nothing_and_is_never_answered(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    inbound = deliver(db, auto_reply(to_token=w.token(p), from_=p.person.email))
    assert (inbound.status, inbound.kind) == (R.PROCESSED, "auto_reply")
    assert w.status(p) is P.INVITED
    assert w.mails() == []


def test_automatic_calendar_accept_registers_without_answering(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    p = w.invitee()
    inbound = w.tell(p, ReplyKind.ACCEPT, session="wonen", is_automatic=True)
    assert inbound.status is R.PROCESSED
    assert w.status(p) is P.REGISTERED
    assert w.mails(to=p.person.email) == []


def test_permanent_bounce_marks_the_invitation_undeliverable(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    p = w.invitee()
    mark_sent(db, p)
    inbound = deliver(db, bounce(recipient=p.person.email, original_token=w.token(p)))
    assert (inbound.status, inbound.kind) == (R.PROCESSED, "bounce")
    assert p.invitation is not None
    db.refresh(p.invitation)
    assert p.invitation.status is InvitationStatus.UNDELIVERABLE
    assert p.invitation.bounce_reason
    assert [m.recipient for m in w.mails("organiser_notice")] == [w.event.contact_email]
    assert w.mails(to=p.person.email) == []
    assert w.status(p) is P.INVITED


def test_permanent_bounce_matched_by_recipient_we_mailed(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    mark_sent(db, p)
    invitation_mail(db, w, p)
    deliver(db, bounce(recipient=p.person.email, original_token=None))
    assert p.invitation is not None
    db.refresh(p.invitation)
    assert p.invitation.status is InvitationStatus.UNDELIVERABLE


def test_temporary_bounce_is_only_recorded(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    mark_sent(db, p)
    inbound = deliver(
        db, bounce(recipient=p.person.email, original_token=w.token(p), permanent=False)
    )
    assert inbound.status is R.PROCESSED
    assert p.invitation is not None
    db.refresh(p.invitation)
    assert p.invitation.status is InvitationStatus.SENT
    assert w.mails() == []


def test_permanent_bounce_for_an_unknown_address_goes_to_review(
    db: Session, clock: ManualClock
) -> None:
    World(db, clock)
    inbound = deliver(db, bounce(recipient="niemand@elders.example", original_token=None))
    assert inbound.status is R.REVIEW


# --------------------------------------------------------------------------- failures


def test_a_parser_crash_quarantines_the_message(
    db: Session, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(db, clock)
    p = w.invitee()

    def broken(*_args: object, **_kwargs: object) -> Understanding:
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(workflows.understand, "understand", broken)
    inbound = w.say(p, "Ja, ik kom graag.")
    assert inbound.status is R.QUARANTINED
    assert inbound.error is not None and "parser exploded" in inbound.error
    assert w.status(p) is P.INVITED


# --------------------------------------------------------------------------- review queue


def test_resolving_a_spoofed_reply_applies_the_rules(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee(domain="zwaanshoek.example")
    inbound = w.say(p, "Ja, de wethouder komt graag.", from_="secretariaat@zwaanshoek.example")
    assert [i.inbound_id for i in list_review(db, w.event)] == [inbound.id]
    status = resolve_review(
        db, inbound.id, as_kind=ReplyKind.ACCEPT, session="wonen", actor="marieke", note="gebeld"
    )
    db.commit()
    assert status is R.PROCESSED
    assert w.status(p) is P.REGISTERED
    assert p.session is not None and p.session.key == "wonen"
    db.refresh(inbound)
    assert inbound.resolution is not None and "marieke" in inbound.resolution
    assert inbound.resolved_at is not None
    assert list_review(db) == []
    with pytest.raises(RsvpError, match="not waiting for review") as again:
        resolve_review(db, inbound.id, as_kind=ReplyKind.ACCEPT, actor="marieke")
    assert "rsvpmail answer EVENT EMAIL" in str(again.value)  # how to correct it instead


def test_resolving_as_unclear_ignores_the_message(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    p = w.invitee()
    inbound = w.say(p, "Afmelden.", from_="iemand@elders.example")
    before = w.snapshot()
    resolve_review(db, inbound.id, as_kind=ReplyKind.UNCLEAR, actor="marieke")
    db.commit()
    people, outbox, _ = w.snapshot()
    assert (people, outbox) == before[:2]
    db.refresh(inbound)
    assert inbound.status is R.PROCESSED


def test_resolving_an_unmatched_message_names_the_participant(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    p = w.invitee()
    inbound = deliver(db, reply(from_="prive.adres@elders.example", text="Ik kom graag!"))
    with pytest.raises(RsvpError, match="participant_id"):
        resolve_review(db, inbound.id, as_kind=ReplyKind.ACCEPT, actor="marieke")
    db.rollback()
    resolve_review(db, inbound.id, as_kind=ReplyKind.ACCEPT, actor="marieke", participant_id=p.id)
    db.commit()
    assert w.status(p) is P.REGISTERED


def test_resolving_into_a_rule_that_still_cannot_apply_changes_nothing(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, max_companions=1)
    p = w.invitee()
    inbound = w.say(p, "Ik kom graag.", from_="iemand@elders.example")
    too_many = (PersonMention("Karin Smit"), PersonMention("Jan de Boer"))
    with pytest.raises(RsvpError, match="at most 1"):
        resolve_review(
            db, inbound.id, as_kind=ReplyKind.ACCEPT, actor="marieke", companions=too_many
        )
    db.commit()
    db.refresh(inbound)
    assert inbound.status is R.REVIEW
    assert w.status(p) is P.INVITED


def test_list_review_filters_by_event(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    other_event = make_event(db, slug="andere-bijeenkomst")
    _inv, stranger = invite(db, other_event, "x@andere.example")
    db.commit()
    p = w.invitee()
    mine = w.say(p, "Ja", from_="iemand@elders.example")
    theirs = deliver(
        db,
        reply(
            to_token=stranger.invitation.token if stranger.invitation else None,
            from_="ander@elders.example",
            text="Ja",
        ),
    )
    unmatched = deliver(db, reply(from_="wie@elders.example", text="Hallo?"))
    ids = [i.inbound_id for i in list_review(db, w.event)]
    assert ids == [mine.id, unmatched.id]
    assert {i.inbound_id for i in list_review(db)} == {mine.id, theirs.id, unmatched.id}
