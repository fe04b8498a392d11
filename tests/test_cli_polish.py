"""What a user walking through the README tripped over: times, actors, hints, audit, plurals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from db.models import AuditEntry, InboundMessage, InboundStatus
from jobs.cli import app
from tests.factories import invite, make_event
from tests.mailfactory import reply
from tests.test_reports import Scenario, build_scenario
from workflows.inbound import record_inbound
from workflows.transitions import transition

runner = CliRunner()


@pytest.fixture(autouse=True)
def piped_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("USER", "marieke")


@pytest.fixture
def cli(db: Session, database_url: str) -> Iterator[Any]:
    def run(*args: str) -> Result:
        db.rollback()  # on SQLite the test's transaction would hold the write lock
        return runner.invoke(app, ["--database-url", database_url, *args])

    yield run


@pytest.fixture
def scenario(db: Session) -> Iterator[Scenario]:
    from tests.test_reports import START

    with time_machine.travel(START, tick=False) as traveller:
        yield build_scenario(db, traveller)


def _quarantine(db: Session, uid: int, *, headers_only: bool = False) -> InboundMessage:
    raw = reply(to_token=None, from_="groot@gemeente.example", text="Ja, ik kom. " + "x" * 300)
    row, _ = record_inbound(db, raw, mailbox="INBOX", uidvalidity=1, uid=uid)
    if headers_only:  # as the reader stores an oversized message
        row.raw = raw[: raw.index(b"\n\n") + 2]
    row.error = "too large" if headers_only else "could not be processed"
    transition(db, row, InboundStatus.QUARANTINED, reason=row.error, inbound_message_id=row.id)
    db.commit()
    return row


def test_quarantine_times_in_the_events_zone_and_only_dismiss_when_too_large(
    cli: Any, db: Session
) -> None:
    make_event(db)  # one event (Europe/Amsterdam): its zone, though no message matched it
    db.commit()
    readable, too_big = _quarantine(db, 1), _quarantine(db, 2, headers_only=True)
    listing = cli("inbox", "quarantine")
    assert listing.exit_code == 0, listing.output
    assert " UTC" not in listing.stdout and " CET" in listing.stdout
    assert (
        f"next: rsvpmail inbox release {readable.id} (to read it again) or "
        f"rsvpmail inbox dismiss {readable.id} --reason TEXT (handled by hand)"
    ) in listing.stdout
    assert f"rsvpmail inbox release {too_big.id}" not in listing.stdout
    assert "only dismiss: read it in folder Quarantine" in listing.stdout
    assert "release (to read it again)" in listing.stdout
    assert "dismiss (handled by hand)" in listing.stdout
    assert "release one to process it again" not in listing.stdout
    shown = cli("inbox", "show", str(readable.id))
    assert shown.exit_code == 0, shown.output
    assert " CET" in shown.stdout and " UTC" not in shown.stdout


def test_every_by_default_is_organiser_user(cli: Any, db: Session) -> None:
    event = make_event(db)
    invite(db, event, "j.dekker@utrecht.example", "Jan Dekker")
    row = _quarantine(db, 3)
    db.commit()
    released = cli("inbox", "release", str(row.id))
    assert released.exit_code == 0, released.output
    forgot = cli("privacy", "forget", "j.dekker@utrecht.example", "--yes")
    assert forgot.exit_code == 0, forgot.output
    db.expire_all()
    actors = set(db.scalars(select(AuditEntry.actor).where(AuditEntry.actor.like("%marieke"))))
    assert actors == {"organiser:marieke"}
    assert not db.scalars(select(AuditEntry).where(AuditEntry.actor.like("cli:%"))).first()


def test_review_resolve_says_ignored_and_how_to_go_on(
    cli: Any, db: Session, scenario: Scenario
) -> None:
    _secretary, unmatched = scenario.review_ids
    nobody = cli(
        "review", "resolve", str(unmatched), "--as", "accept",
        "--participant", "j.dekker@nergens.example",
    )  # fmt: skip
    assert nobody.exit_code == 2
    assert "is not a participant of any event" in nobody.stderr
    assert "import them with `rsvpmail invitees import EVENT FILE` first, then resolve" in (
        nobody.stderr
    )
    ignored = cli("review", "resolve", str(unmatched), "--as", "ignore")
    assert ignored.exit_code == 0, ignored.output
    db.expire_all()
    message = db.get(InboundMessage, unmatched)
    assert message is not None
    assert message.resolution == "ignored by organiser:marieke; nothing changed"
    assert "unclear" not in ignored.stdout


def test_audit_shows_one_row_per_mail_outcome_unless_all(
    cli: Any, db: Session, scenario: Scenario
) -> None:
    slug = scenario.event.slug
    short = cli("audit", slug)
    everything = cli("audit", slug, "--all")
    assert short.exit_code == 0 and everything.exit_code == 0, short.output + everything.output
    total = int(everything.stdout.splitlines()[-1].split()[0])
    footer = short.stdout.splitlines()[-1]
    shown, hidden = int(footer.split()[0]), int(footer.split("; ")[1].split()[0])
    assert hidden > 0 and shown + hidden == total
    assert "--all shows them" in footer and "hidden" not in everything.stdout.splitlines()[-1]
    table = "\n".join(short.stdout.splitlines()[:-1])
    assert "pending → sending" not in table and "pending → sending" in everything.stdout
    person = cli("audit", slug, "--person", "e.smits@kerkdorp.example")
    assert person.exit_code == 0, person.output
    assert "pending → sending" not in "\n".join(person.stdout.splitlines()[:-1])


def test_invite_dry_run_counts_in_english(cli: Any, db: Session) -> None:
    event = make_event(db)
    invite(db, event, "j.dekker@utrecht.example", "Jan Dekker")
    db.commit()
    result = cli("invite", event.slug, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would queue 1 invitation (" in result.stdout
