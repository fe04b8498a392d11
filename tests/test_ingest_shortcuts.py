"""The shortcuts that make reading a reply cheap must not change what is stored or read.

- `record_inbound` writes with one INSERT … ON CONFLICT and builds the row object from what
  the database returned: that object must equal the stored row and carry no pending change.
- `transaction_memo` lives exactly one transaction.
- `lock_event(keep=…)` re-reads everything but what it is told to keep.
- The cached event values of the templates are handed out as copies.
"""

from __future__ import annotations

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Event, InboundMessage, Person
from mail_templates.compose import cached_event_config
from mail_templates.context import _event_values
from tests.factories import make_event, make_person
from workflows import seats
from workflows.inbound import record_inbound
from workflows.txcache import transaction_memo

RAW = (
    b"From: Lotte <l.elamrani@zwaanshoek.example>\r\n"
    b"To: aanmelden@wijkwijzer.example\r\n"
    b"Subject: Re: uitnodiging\r\n"
    b"Message-ID: <shortcut-1@zwaanshoek.example>\r\n\r\n"
    b"Ja, ik kom graag.\r\n"
)
COLUMNS = [c.key for c in InboundMessage.__table__.c]


def test_recorded_row_is_what_the_database_stored(sessions: sessionmaker[Session]) -> None:
    with sessions() as db, db.begin():
        row, new = record_inbound(db, RAW, mailbox="INBOX", uidvalidity=3, uid=9)
        assert new
        assert not inspect(row).modified and row not in db.dirty
        in_memory = {key: getattr(row, key) for key in COLUMNS}
    with sessions() as db:
        stored = db.get_one(InboundMessage, in_memory["id"])
        assert {key: getattr(stored, key) for key in COLUMNS} == in_memory


def test_recording_twice_returns_the_stored_row(sessions: sessionmaker[Session]) -> None:
    with sessions() as db, db.begin():
        first, _ = record_inbound(db, RAW, mailbox="INBOX", uidvalidity=3, uid=9)
        first_id = first.id
    with sessions() as db, db.begin():
        again, new = record_inbound(db, RAW, mailbox="Archief", uidvalidity=4, uid=1)
        assert (again.id, new) == (first_id, False)
        assert db.scalars(select(InboundMessage.id)).all() == [first_id]


def test_transaction_memo_lives_one_transaction(db: Session) -> None:
    with db.begin():
        memo = transaction_memo(db, "test")
        memo["kept"] = db.merge(Person(email="a@x.example", name="A"))
        assert transaction_memo(db, "test") is memo
        assert transaction_memo(db, "other") == {}
    with db.begin():
        assert transaction_memo(db, "test") == {}


def test_lock_event_keeps_only_what_it_is_told(db: Session) -> None:
    event = make_event(db)
    kept, other = make_person(db, "b@x.example"), make_person(db, "c@x.example")
    locked = seats.lock_event(db, event, keep=[kept])
    assert "name" in inspect(kept).dict  # still loaded: no re-read
    assert "name" not in inspect(other).dict  # expired: read again when used
    assert other.name == "C"
    assert inspect(locked).dict["slug"] == event.slug  # loaded by the locking query itself
    other = db.scalars(select(Event)).one()
    assert other is locked


def test_event_values_are_handed_out_as_copies(db: Session) -> None:
    cfg = cached_event_config(make_event(db))
    first = _event_values(cfg, "nl")
    first["programme"].append({"time": "99:99", "item": "added by a template"})
    first["title"] = "changed"
    second = _event_values(cfg, "nl")
    assert second["title"] == cfg.title
    assert {"time": "99:99", "item": "added by a template"} not in second["programme"]
    assert second == _event_values(cfg, "nl")
