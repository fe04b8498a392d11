"""The event TOML loader: the real event loads; every mistake is named with its key."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.conftest import EVENT_TOML
from tests.factories import event_config, make_event
from workflows.event_config import ConfigError, load_event_config, reminder_due_times
from workflows.events import apply_event_config
from workflows.events import event_config as stored_config


def test_the_real_event_loads() -> None:
    cfg = load_event_config(EVENT_TOML)
    assert cfg.slug == "leren-van-rotterdam-zuid"
    assert cfg.starts_at.isoformat() == "2023-02-01T13:00:00+01:00"
    assert [s.key for s in cfg.sessions] == ["onderwijs", "werk", "wonen", "veiligheid"]
    assert cfg.reminder_days_before == (7, 1)
    assert cfg.programme[0].item == "Inloop met lunch"
    assert cfg.companions_welcome


def test_reminder_times_are_local() -> None:
    due = dict(reminder_due_times(load_event_config(EVENT_TOML)))
    assert due[7].isoformat() == "2023-01-25T09:00:00+01:00"
    assert due[1].isoformat() == "2023-01-31T09:00:00+01:00"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "event.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = EVENT_TOML.read_text(encoding="utf-8")
    text = text.replace('slug = "leren-van-rotterdam-zuid"', 'slug = "Leren Zuid!"')
    text = text.replace("capacity = 40", "capacity = -3")
    text = text.replace('reply_address = "aanmelden@wijkwijzer.example"', 'reply_address = "nope"')
    text = text.replace('key = "wonen"', 'key = "werk"')
    text = text.replace("ends_at = 2023-02-01T17:30:00", "ends_at = 2023-02-01T12:00:00")
    with pytest.raises(ConfigError) as raised:
        load_event_config(_write(tmp_path, text))
    problems = " | ".join(raised.value.problems)
    for expected in (
        "slug:",
        "capacity: must be at least 1",
        "mail.reply_address: not a valid email",
        "sessions[2].key: duplicate session key 'werk'",
        "ends_at: must be after starts_at",
    ):
        assert expected in problems
    assert str(raised.value).startswith(str(tmp_path / "event.toml"))


def test_missing_keys_and_bad_types(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_event_config(_write(tmp_path, 'slug = "x-y"\ncapacity = "veel"\n'))
    problems = raised.value.problems
    assert "title: missing" in problems
    assert "capacity: must be a whole number" in problems
    assert "starts_at: missing" in problems


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_event_config(_write(tmp_path, "slug = \n"))
    with pytest.raises(ConfigError, match="cannot read file"):
        load_event_config(tmp_path / "absent.toml")


def test_unknown_timezone(tmp_path: Path) -> None:
    text = EVENT_TOML.read_text(encoding="utf-8").replace("Europe/Amsterdam", "Mars/Olympus")
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_event_config(_write(tmp_path, text))


def test_loading_twice_is_idempotent_and_updates(db: Session) -> None:
    event = make_event(db)
    again, created = apply_event_config(db, event_config(capacity=55, title="Nieuwe titel"))
    db.commit()
    assert not created and again.id == event.id
    assert (again.capacity, again.title) == (55, "Nieuwe titel")
    assert [s.key for s in again.sessions] == ["onderwijs", "werk", "wonen", "veiligheid"]


def test_stored_config_round_trips(db: Session) -> None:
    event = make_event(db)
    db.commit()
    assert stored_config(event) == load_event_config(EVENT_TOML)
    assert stored_config(event).reminder_local_time == time(9, 0)
