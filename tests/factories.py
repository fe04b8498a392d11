"""Small builders for test data, shared by the test modules."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.orm import Session
from typer.testing import Result

from db.models import Event, Invitation, Participant, Person
from tests.conftest import EVENT_TOML
from workflows.event_config import EventConfig, SessionSpec, load_event_config
from workflows.events import apply_event_config
from workflows.invitees import add_invitation


def event_config(**overrides: Any) -> EventConfig:
    """The real example event, with fields replaced as the test needs."""
    return dataclasses.replace(load_event_config(EVENT_TOML), **overrides)


def sessions_with_capacity(**capacities: int) -> tuple[SessionSpec, ...]:
    """The example's deelsessies, with these capacities (the rest without a limit)."""
    return tuple(
        dataclasses.replace(s, capacity=capacities.get(s.key)) for s in event_config().sessions
    )


def make_event(db: Session, **overrides: Any) -> Event:
    event, _ = apply_event_config(db, event_config(**overrides))
    db.flush()
    return event


def make_person(db: Session, email: str, name: str = "", **fields: Any) -> Person:
    person = Person(email=email.lower(), name=name or email.split("@")[0].title(), **fields)
    db.add(person)
    db.flush()
    return person


def invite(
    db: Session, event: Event, email: str, name: str = "", **person_fields: Any
) -> tuple[Invitation, Participant]:
    person = make_person(db, email, name, **person_fields)
    return add_invitation(db, event, person, batch="test", reason="test setup")


def one_line_error(result: Result) -> str:
    """A command's refusal: exit code 2 and one `error: …` line on stderr."""
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert "\n" not in message, message
    assert message.startswith("error: ")
    return message
