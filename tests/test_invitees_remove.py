"""Removing invitees imported by mistake: only while nothing reached them, all or nothing.

`rsvpmail invitees remove EVENT EMAIL… [--batch NAME]` deletes a pending invitation, or a
queued one whose mail the sender has not taken yet (that mail is cancelled, compare-and-set,
so a sender that took it meanwhile wins), with its participant row and (when in no other
event) the person, and leaves one audit row naming who removed which address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from db.models import (
    AuditEntry,
    Event,
    InboundMessage,
    Invitation,
    InvitationStatus,
    OutboundBody,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
    Person,
)
from devmail import MailStack
from jobs.cli import app
from jobs.settings import ServiceSettings, SmtpSettings
from jobs.smtp_sender import send_due
from tests.factories import invite, make_event, make_person
from workflows.errors import RsvpError
from workflows.invitations import queue_invitations
from workflows.invitees import (
    REMOVED,
    RemovalRefused,
    add_invitation,
    apply_removals,
    find_removals,
    import_invitees,
    parse_invitee_csv,
    remove_invitees,
)
from workflows.sending import claim_due, mark_sent
from workflows.transitions import transition

ACTOR = "organiser:test"
SLUG = "leren-van-rotterdam-zuid"
runner = CliRunner()


def _count(db: Session, model: type[Invitation | Participant], *where: Any) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _removed_audit(db: Session) -> list[AuditEntry]:
    return list(
        db.scalars(
            select(AuditEntry)
            .where(AuditEntry.machine == "invitation", AuditEntry.new_status == REMOVED)
            .order_by(AuditEntry.id)
        )
    )


def _gone(db: Session, invitation_id: int, participant_id: int, person_id: int) -> bool:
    return (
        db.get(Invitation, invitation_id) is None
        and db.get(Participant, participant_id) is None
        and db.get(Person, person_id) is None
    )


# ----------------------------------------------------------------------------- pending


def test_a_pending_invitee_is_deleted_and_an_audit_row_names_who_removed_which_address(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    event = make_event(db)
    invitation, participant = invite(db, event, "test1@voorbeeld.example", "Test Een")
    kept, _ = invite(db, event, "echt@gemeente.example", "Echte Wethouder")
    ids = (invitation.id, participant.id, invitation.person_id)
    db.commit()

    with sessions() as s, s.begin():
        [removal] = remove_invitees(
            s, s.get_one(Event, event.id), emails=[" Test1@Voorbeeld.example "], actor=ACTOR
        )
    assert (removal.email, removal.invitation_status, removal.person_deleted) == (
        "test1@voorbeeld.example",
        InvitationStatus.PENDING,
        True,
    )
    assert removal.cancels == ()

    with sessions() as s:
        assert _gone(s, *ids)
        assert s.get(Invitation, kept.id) is not None
        [entry] = _removed_audit(s)
        assert (entry.actor, entry.entity_id, entry.event_id) == (ACTOR, ids[0], event.id)
        assert (entry.old_status, entry.new_status, entry.person_id) == ("pending", "removed", None)
        assert "test1@voorbeeld.example" in entry.reason and "person deleted" in entry.reason
        # The audit rows of the import stay; they no longer point at a person.
        created = s.scalars(
            select(AuditEntry).where(
                AuditEntry.machine == "invitation", AuditEntry.entity_id == ids[0]
            )
        ).all()
        assert [e.new_status for e in created] == ["pending", "removed"]
        assert all(e.person_id is None for e in created)


def test_a_whole_batch_is_removed_and_an_unknown_batch_names_the_known(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    event = make_event(db)
    for i in range(3):
        person = make_person(db, f"test{i}@voorbeeld.example")
        add_invitation(db, event, person, batch="proef", reason="test setup")
    real, _ = invite(db, event, "echt@gemeente.example")
    db.commit()

    with (
        sessions() as s,
        s.begin(),
        pytest.raises(
            RsvpError, match=r"no invitations in batch 'proeff' \(batches: 'proef', 'test'\)"
        ),
    ):
        remove_invitees(s, s.get_one(Event, event.id), batch="proeff", actor=ACTOR)
    with sessions() as s, s.begin():
        done = remove_invitees(s, s.get_one(Event, event.id), batch="proef", actor=ACTOR)
    assert sorted(r.email for r in done) == [f"test{i}@voorbeeld.example" for i in range(3)]
    with sessions() as s:
        assert [i.id for i in s.scalars(select(Invitation))] == [real.id]
        assert len(_removed_audit(s)) == 3
        assert all("batch 'proef'" in e.reason for e in _removed_audit(s))


def test_the_person_in_another_event_keeps_that_invitation(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    first = make_event(db)
    second = make_event(db, slug="tweede-bijeenkomst")
    here, participant = invite(db, first, "gedeeld@gemeente.example", "Gedeelde Wethouder")
    there, _ = add_invitation(db, second, here.person, batch="", reason="test setup")
    person_id = here.person_id
    db.commit()

    with sessions() as s, s.begin():
        [removal] = remove_invitees(
            s, s.get_one(Event, first.id), emails=["gedeeld@gemeente.example"], actor=ACTOR
        )
    assert removal.person_deleted is False

    with sessions() as s:
        assert s.get(Invitation, here.id) is None and s.get(Participant, participant.id) is None
        person = s.get_one(Person, person_id)
        assert (person.email, person.name) == ("gedeeld@gemeente.example", "Gedeelde Wethouder")
        assert s.get_one(Invitation, there.id).person_id == person_id
        assert _count(s, Participant, Participant.person_id == person_id) == 1
        [entry] = _removed_audit(s)
        assert entry.person_id == person_id and "person kept" in entry.reason


def test_the_address_can_be_imported_and_invited_again_afterwards(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    """No outbox row is left behind whose key `invitation:<id>` would block a new invitation
    that gets the same id (SQLite hands out a deleted highest id again)."""
    event = make_event(db)
    rows = parse_invitee_csv(b"naam;email\nTest Een;test1@voorbeeld.example\n")
    import_invitees(db, event, rows)
    queue_invitations(db, event)
    db.commit()
    with sessions() as s, s.begin():
        remove_invitees(
            s, s.get_one(Event, event.id), emails=["test1@voorbeeld.example"], actor=ACTOR
        )

    with sessions() as s, s.begin():
        found = s.get_one(Event, event.id)
        assert import_invitees(s, found, rows).new_invitations == 1
        [mail] = queue_invitations(s, found)
        assert mail.recipient == "test1@voorbeeld.example"


# ------------------------------------------------------------------------------ queued


def test_queued_mail_not_taken_yet_is_cancelled_and_never_claimed(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    event = make_event(db)
    mistake, _ = invite(db, event, "test1@voorbeeld.example")
    real, _ = invite(db, event, "echt@gemeente.example")
    mails = {m.recipient: m.id for m in queue_invitations(db, event)}
    db.commit()

    with sessions() as s, s.begin():
        [removal] = remove_invitees(
            s, s.get_one(Event, event.id), emails=["test1@voorbeeld.example"], actor=ACTOR
        )
    cancelled = mails["test1@voorbeeld.example"]
    assert removal.invitation_status is InvitationStatus.QUEUED
    assert [m.id for m in removal.cancels] == [cancelled]

    with sessions() as s:
        assert s.get(OutboundMessage, cancelled) is None
        assert s.get(OutboundBody, cancelled) is None
        trail = s.execute(
            select(AuditEntry.old_status, AuditEntry.new_status, AuditEntry.actor).where(
                AuditEntry.machine == "outbound", AuditEntry.entity_id == cancelled
            )
        ).all()
        assert trail[-1] == ("pending", "suppressed", ACTOR)
        [entry] = _removed_audit(s)
        assert entry.old_status == "queued" and f"#{cancelled} cancelled" in entry.reason
    # The sender finds only the real invitee's mail.
    claimed = claim_due(sessions, "w", 10)
    assert [(c.id, c.recipient) for c in claimed] == [
        (mails["echt@gemeente.example"], "echt@gemeente.example")
    ]
    assert real.id != mistake.id


@pytest.mark.integration
def test_removed_invitees_get_nothing_from_the_sender(
    sessions: sessionmaker[Session],
    mailstack: MailStack,
    mail_address: Callable[..., str],
) -> None:
    mistake, real = mail_address("test"), mail_address("wethouder")
    with sessions() as s, s.begin():
        event = make_event(s, reply_address=mail_address("aanmelden"))
        event_id = event.id
        invite(s, event, mistake)
        invite(s, event, real)
        assert len(queue_invitations(s, event)) == 2
    with sessions() as s, s.begin():
        remove_invitees(s, s.get_one(Event, event_id), emails=[mistake], actor=ACTOR)
    before = len(mailstack.smtp.snapshot())
    settings = ServiceSettings(
        smtp=replace(SmtpSettings(host=mailstack.smtp_host, port=mailstack.smtp_port, timeout=10))
    )

    report = send_due(sessions, settings)

    assert report.sent == 1
    recipients = [r.lower() for m in mailstack.smtp.snapshot()[before:] for r in m.rcpt_tos]
    assert recipients == [real]
    with sessions() as s:
        [status] = s.scalars(select(Invitation.status).where(Invitation.event_id == event_id))
        assert status is InvitationStatus.SENT


def test_mail_the_sender_has_taken_is_not_cancelled(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    event = make_event(db)
    invitation, _ = invite(db, event, "test1@voorbeeld.example")
    [mail] = queue_invitations(db, event)
    db.commit()
    assert [c.id for c in claim_due(sessions, "w", 10)] == [mail.id]

    with sessions() as s, s.begin(), pytest.raises(RemovalRefused) as refused:
        remove_invitees(
            s, s.get_one(Event, event.id), emails=["test1@voorbeeld.example"], actor=ACTOR
        )
    assert str(refused.value) == (
        f"test1@voorbeeld.example: the invitation mail is being sent right now (outbox "
        f"#{mail.id}); once it is sent, record that they will not come with `rsvpmail answer "
        f"{SLUG} test1@voorbeeld.example --as decline`; nothing removed"
    )
    with sessions() as s:
        assert s.get_one(Invitation, invitation.id).status is InvitationStatus.QUEUED
        assert s.get_one(OutboundMessage, mail.id).status is OutboundStatus.SENDING
        assert _removed_audit(s) == []


def test_a_sender_that_takes_the_mail_after_it_was_listed_wins(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    """The cancel is a compare-and-set on `pending`: listed (and confirmed) while pending,
    claimed by the sender before the removal writes, the removal is refused."""
    event = make_event(db)
    invitation, _ = invite(db, event, "test1@voorbeeld.example")
    [mail] = queue_invitations(db, event)
    db.commit()
    with sessions() as s, s.begin():
        listed = find_removals(s, s.get_one(Event, event.id), emails=["test1@voorbeeld.example"])
    assert [m.id for r in listed for m in r.cancels] == [mail.id]

    assert [c.id for c in claim_due(sessions, "w", 10)] == [mail.id]

    with (
        sessions() as s,
        s.begin(),
        pytest.raises(RemovalRefused, match="the sender took the invitation mail"),
    ):
        apply_removals(s, s.get_one(Event, event.id), listed, actor=ACTOR)
    with sessions() as s:
        assert s.get_one(Invitation, invitation.id).status is InvitationStatus.QUEUED
        assert s.get_one(OutboundMessage, mail.id).status is OutboundStatus.SENDING
        assert _removed_audit(s) == []


# ---------------------------------------------------------------- sent, answered: refused


def test_a_sent_invitation_is_refused_with_what_to_do_instead(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    event = make_event(db)
    invite(db, event, "verzonden@gemeente.example")
    [mail] = queue_invitations(db, event)
    db.commit()
    claim_due(sessions, "w", 10)
    with sessions() as s, s.begin():
        assert mark_sent(s, mail.id, "w")

    with sessions() as s, s.begin(), pytest.raises(RemovalRefused) as refused:
        remove_invitees(
            s, s.get_one(Event, event.id), emails=["verzonden@gemeente.example"], actor=ACTOR
        )
    message = str(refused.value)
    assert "\n" not in message and message.endswith("; nothing removed")
    assert "was sent the invitation already" in message
    assert f"`rsvpmail answer {SLUG} verzonden@gemeente.example --as decline`" in message
    assert "`rsvpmail privacy forget verzonden@gemeente.example`" in message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (ParticipantStatus.REGISTERED, "has answered (registered): to give up their place use "
         f"`rsvpmail answer {SLUG} antwoord@gemeente.example --as cancel`"),
        (ParticipantStatus.DECLINED, "has answered (declined) and is not coming, nothing to undo"),
    ],
)  # fmt: skip
def test_someone_who_answered_is_refused_with_what_to_do_instead(
    db: Session, sessions: sessionmaker[Session], status: ParticipantStatus, expected: str
) -> None:
    event = make_event(db)
    _, participant = invite(db, event, "antwoord@gemeente.example")
    transition(db, participant, status, reason="answered by phone")
    db.commit()

    with sessions() as s, s.begin(), pytest.raises(RemovalRefused) as refused:
        remove_invitees(
            s, s.get_one(Event, event.id), emails=["antwoord@gemeente.example"], actor=ACTOR
        )
    assert expected in str(refused.value)
    assert "`rsvpmail privacy forget antwoord@gemeente.example`" in str(refused.value)
    with sessions() as s:
        assert s.get_one(Participant, participant.id).status is status


def test_someone_who_wrote_about_a_queued_invitation_is_refused(
    db: Session, sessions: sessionmaker[Session]
) -> None:
    """A message matched to the invitation (by sender, before the mail went out) is an answer
    of sorts: the rows stay, and so does the message's link to the invitation."""
    event = make_event(db)
    invitation, _ = invite(db, event, "schrijver@gemeente.example")
    queue_invitations(db, event)
    db.add(
        InboundMessage(
            message_id="<vraag-1@gemeente.example>",
            from_address="schrijver@gemeente.example",
            event_id=event.id,
            invitation_id=invitation.id,
        )
    )
    db.commit()

    with sessions() as s, s.begin(), pytest.raises(RemovalRefused) as refused:
        remove_invitees(
            s, s.get_one(Event, event.id), emails=["schrijver@gemeente.example"], actor=ACTOR
        )
    assert "has written to us about the invitation (a message;" in str(refused.value)
    assert "--as decline" in str(refused.value)
    with sessions() as s:
        assert s.get_one(Invitation, invitation.id).status is InvitationStatus.QUEUED


def test_all_or_nothing_every_problem_listed(db: Session, sessions: sessionmaker[Session]) -> None:
    event = make_event(db)
    removable, _ = invite(db, event, "test1@voorbeeld.example")
    _, answered = invite(db, event, "antwoord@gemeente.example")
    transition(db, answered, ParticipantStatus.DECLINED, reason="answered by phone")
    db.commit()

    with sessions() as s, s.begin(), pytest.raises(RemovalRefused) as refused:
        remove_invitees(
            s,
            s.get_one(Event, event.id),
            emails=[
                "test1@voorbeeld.example",
                "antwoord@gemeente.example",
                "onbekend@x.example",
                "geen-adres",
            ],
            actor=ACTOR,
        )
    lines = str(refused.value).splitlines()
    assert lines[0] == "nothing removed (3 problems):"
    assert lines[1] == "  'geen-adres' is not an e-mail address"
    assert (
        lines[2] == f"  onbekend@x.example is not invited to {SLUG} (see `rsvpmail people {SLUG}`)"
    )
    assert lines[3].startswith("  antwoord@gemeente.example has answered (declined)")
    with sessions() as s:
        assert s.get(Invitation, removable.id) is not None


# ------------------------------------------------------------------------------- the CLI


def _cli(url: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--database-url", url, *args], input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def listed(db: Session, database_url: str) -> str:
    """An event with a mistaken import (two test rows, one queued) and a real invitee."""
    event = make_event(db)
    invite(db, event, "test1@voorbeeld.example", "Test Een")
    queue_invitations(db, event)
    invite(db, event, "test2@voorbeeld.example", "Test Twee")
    invite(db, event, "echt@gemeente.example", "Echte Wethouder")
    db.commit()
    return database_url


def test_cli_lists_who_goes_and_asks_first(listed: str, sessions: sessionmaker[Session]) -> None:
    args = (
        "invitees",
        "remove",
        SLUG,
        "test1@voorbeeld.example",
        "test2@voorbeeld.example",
        "--by",
        "jan",
    )

    code, out, _ = _cli(listed, *args, input="n\n")
    assert code == 1 and out.endswith("nothing removed\n")
    assert "To be removed from leren-van-rotterdam-zuid (2 invitees):" in out
    assert (
        "  Test Een <test1@voorbeeld.example>: queued, batch 'test', "
        "invitation mail #1 not sent yet: cancelled" in out
    )
    assert "  Test Twee <test2@voorbeeld.example>: pending, batch 'test'" in out
    with sessions() as s:
        assert _count(s, Invitation) == 3

    code, out, err = _cli(listed, *args, input="y\n")
    assert (code, err) == (0, "")
    assert (
        "removed test1@voorbeeld.example (queued; invitation mail #1 cancelled; person deleted)"
        in out
    )
    assert "removed test2@voorbeeld.example (pending; person deleted)" in out
    assert out.endswith(f"2 invitees removed from {SLUG} by organiser:jan\n")
    with sessions() as s:
        assert [p.email for p in s.scalars(select(Person))] == ["echt@gemeente.example"]
        assert {e.actor for e in _removed_audit(s)} == {"organiser:jan"}


def test_cli_yes_skips_the_question_and_batch_selects(
    listed: str, sessions: sessionmaker[Session]
) -> None:
    code, out, _ = _cli(listed, "invitees", "remove", SLUG, "--batch", "test", "--yes")
    assert code == 0 and "3 invitees removed" in out
    with sessions() as s:
        assert _count(s, Invitation) == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((SLUG, "onbekend@x.example"),
         f"error: onbekend@x.example is not invited to {SLUG} (see `rsvpmail people {SLUG}`); "
         "nothing removed\n"),
        (("geen-event", "test1@voorbeeld.example"),
         f"error: no event 'geen-event' (known events: {SLUG}); "
         "load it with `rsvpmail event load`\n"),
        ((SLUG,), "error: name who to remove: one or more EMAIL addresses, or --batch NAME\n"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line(listed: str, args: tuple[str, ...], expected: str) -> None:
    code, out, err = _cli(listed, "invitees", "remove", *args, "--yes")
    assert (code, out, err) == (2, "", expected)


def test_cli_refusal_points_to_answer(listed: str, sessions: sessionmaker[Session]) -> None:
    claim_due(sessions, "w", 10)
    code, _, err = _cli(listed, "invitees", "remove", SLUG, "test1@voorbeeld.example", "--yes")
    assert code == 2 and err.count("\n") == 1
    assert "being sent right now" in err and "--as decline" in err


def test_nothing_changes_without_a_database_path(tmp_path: Path) -> None:
    code, _, err = _cli(f"sqlite:///{tmp_path}/none.db", "invitees", "remove", SLUG, "a@b.example")
    assert code == 2 and "db upgrade" in err
