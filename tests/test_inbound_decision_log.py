"""process_inbound logs exactly one key=value decision line per message, with ids only."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.orm import Session

from tests.mailfactory import ManualClock, World, deliver, reply


def _decisions(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        dict(r.fields)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "rsvpmail.inbound" and isinstance(getattr(r, "fields", None), dict)
    ]


def test_a_processed_reply_logs_one_line_with_its_ids(
    db: Session, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    w = World(db, clock)
    p = w.invitee(name="Karin Smit")
    caplog.set_level(logging.INFO, logger="rsvpmail.inbound")
    inbound = w.say(p, "Ja, ik kom graag, deelsessie wonen.")
    [fields] = _decisions(caplog)
    assert fields["event"] == w.event.slug
    assert fields["person_id"] == p.person_id
    assert fields["invitation_id"] == p.invitation_id
    assert fields["inbound_id"] == inbound.id
    assert fields["kind"] == "accept"
    assert fields["outcome"] == "processed"
    assert fields["reason"]
    line = " ".join(f"{k}={v}" for k, v in fields.items())
    assert "Karin" not in line and "@" not in line and "wonen" not in str(fields["kind"])


def test_review_without_a_match_logs_no_address(
    db: Session, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    World(db, clock)
    caplog.set_level(logging.INFO, logger="rsvpmail.inbound")
    inbound = deliver(db, reply(from_="onbekend@elders.example", text="Ja, ik kom graag."))
    [fields] = _decisions(caplog)
    assert fields["outcome"] == "review"
    assert fields["inbound_id"] == inbound.id
    assert fields["event"] == "-" and fields["person_id"] == "-"
    assert all("@" not in str(v) for v in fields.values())


def test_a_forward_by_someone_else_logs_the_reason_without_addresses(
    db: Session, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    w = World(db, clock)
    p = w.invitee()
    caplog.set_level(logging.INFO, logger="rsvpmail.inbound")
    w.say(p, "Ja, ik kom graag.", from_="iemand@anders.example")
    [fields] = _decisions(caplog)
    assert fields["outcome"] == "review"
    assert fields["invitation_id"] == p.invitation_id
    assert "<address>" in str(fields["reason"]) and "@" not in str(fields["reason"])
