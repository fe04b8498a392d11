"""The event TOML loader: the real event loads; every mistake is named with its key."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.conftest import EVENT_TOML
from tests.factories import event_config, make_event
from workflows.event_config import (
    ConfigError,
    ConfigFileError,
    file_problem,
    load_event_config,
    parse_event_config,
    reminder_due_times,
)
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
    with pytest.raises(ConfigFileError, match="invalid TOML"):
        load_event_config(_write(tmp_path, "slug = \n"))
    with pytest.raises(ConfigFileError) as raised:
        load_event_config(tmp_path / "absent.toml")
    assert str(raised.value) == f"{tmp_path / 'absent.toml'}: no such file"
    with pytest.raises(ConfigFileError) as raised:
        load_event_config(tmp_path)
    assert str(raised.value) == f"{tmp_path}: is a directory, not a file"


def test_file_problems_in_words() -> None:
    assert file_problem(FileNotFoundError(2, "No such file or directory")) == "no such file"
    assert file_problem(IsADirectoryError(21, "Is a directory")) == "is a directory, not a file"
    assert file_problem(PermissionError(13, "Permission denied")) == (
        "cannot be read (permission denied)"
    )
    assert file_problem(OSError(5, "Input/output error")) == "cannot be read (Input/output error)"


def test_an_unreadable_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, EVENT_TOML.read_text(encoding="utf-8"))

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)  # chmod 000 does not stop root
    with pytest.raises(ConfigFileError) as raised:
        load_event_config(path)
    assert str(raised.value) == f"{path}: cannot be read (permission denied)"


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


def _problems(tmp_path: Path, *replacements: tuple[str, str], append: str = "") -> list[str]:
    text = EVENT_TOML.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    with pytest.raises(ConfigError) as raised:
        load_event_config(_write(tmp_path, text + append))
    return raised.value.problems


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'policy = "waitlist"',
            'polcy = "closed"',
            "late_replies.polcy: unknown key (did you mean policy?)",
        ),
        (
            "max_companions = 1",
            "max_companion = 0",
            "max_companion: unknown key (did you mean max_companions?)",
        ),
        (
            "days_before = [7, 1]",
            "days_befor = [3]",
            "reminders.days_befor: unknown key (did you mean days_before?)",
        ),
        ("[followup]", "[follow_up]", "follow_up: unknown key (did you mean followup?)"),
        (
            "expiry_hours = 48",
            "expiry_hour = 48",
            "offers.expiry_hour: unknown key (did you mean expiry_hours?)",
        ),
        (
            'aliases = ["woningbouw"',
            'alias = ["x"]\naliases = ["woningbouw"',
            "sessions[2].alias: unknown key (did you mean aliases?)",
        ),
        (
            'item = "Borrel"',
            'item = "Borrel"\ntijd = "16:30"',
            "programme[4].tijd: unknown key",
        ),
        (
            'url = "https://wijkwijzer.example/materiaal/npzr.pdf"',
            'link = "https://wijkwijzer.example/materiaal/npzr.pdf"',
            "followup.materials[0].link: unknown key",
        ),
    ],
)
def test_an_unknown_key_is_refused_with_its_path(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    """A misspelt optional key must not silently fall back to its default."""
    assert _problems(tmp_path, (old, new)) == [problem]


def test_a_misspelt_required_key_is_named_as_well_as_missing(tmp_path: Path) -> None:
    problems = _problems(tmp_path, ("capacity = 40", "capacty = 40"))
    assert problems == ["capacity: missing", "capacty: unknown key (did you mean capacity?)"]


def test_a_key_in_the_wrong_table_is_pointed_to_the_right_one(tmp_path: Path) -> None:
    # After a [section] header every key belongs to that section: the classic TOML slip.
    problems = _problems(tmp_path, append='\nprice = "5 euro"\n')
    assert problems == [
        "sessions[3].price: unknown key (did you mean the top-level price? Top-level keys go "
        "before the first [section])"
    ]
    problems = _problems(tmp_path, ('slug = "', 'policy = "closed"\nslug = "'))
    assert problems == ["policy: unknown key (did you mean late_replies.policy?)"]


def test_unknown_keys_are_reported_with_every_other_problem(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        ('policy = "waitlist"', 'polcy = "closed"'),
        ("capacity = 40", "capacity = 0"),
        ("[followup]", "[follow_up]"),
        ('language = "nl"', 'language = "fr"\nlanguag = "nl"'),
    )
    assert sorted(problems) == sorted(
        [
            "capacity: must be at least 1",
            "language: must be one of nl, en",
            "languag: unknown key (did you mean language?)",
            "follow_up: unknown key (did you mean followup?)",
            "late_replies.polcy: unknown key (did you mean policy?)",
        ]
    )


def test_extra_knows_its_keys(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path, append='\n[extra]\ntemplates_dri = "sjablonen"\ndescription_de = "Hallo"\n'
    )
    assert problems == [
        "extra.templates_dri: unknown key (did you mean templates_dir?)",
        "extra.description_de: unknown key (did you mean description_en?)",
    ]


# Every optional key the README and the example document, set to a value other than its
# default: all are accepted, and all arrive.
EVERY_OPTIONAL_KEY = """
slug = "alles-ingevuld"
title = "Alles ingevuld"
organiser = "BZK"
description = "Omschrijving"
timezone = "Europe/Amsterdam"
language = "en"
starts_at = 2031-03-04T10:00:00
ends_at = 2031-03-04T12:00:00
registration_deadline = 2031-03-01T12:00:00
venue = "Zaal"
address = "Straat 1"
capacity = 12
price = "10 euro"
companions_welcome = false
max_companions = 2

[mail]
reply_address = "rsvp@a.example"
sender = "Organisator <rsvp@a.example>"
unsubscribe_url = "https://a.example/afmelden"

[contact]
name = "Ina"
email = "ina@a.example"
phone = "06-1"

[offers]
expiry_hours = 24
no_offers_within_hours = 12

[late_replies]
policy = "closed"

[reminders]
days_before = [3]
local_time = "08:30"
nudge_unanswered_days_before_deadline = 2

[followup]
days_after = 2
local_time = "11:00"
survey_url = "https://a.example/enquete"

[[followup.materials]]
title = "Dia's"
url = "https://a.example/dias.pdf"

[retention]
raw_messages_days_after_event = 10
personal_data_days_after_event = 100

[trust]
allowed_sender_domains = ["A.example"]
max_answers_per_sender_per_day = 3
trusted_authserv_ids = ["MX.a.example"]

[extra]
templates_dir = "/srv/sjablonen"
description_nl = "Beschrijving"
description_en = "Description"

[[programme]]
time = "10:00"
item = "Start"

[[sessions]]
key = "groen"
title = "Groen: de wijk"
aliases = ["natuur"]
capacity = 6
description = "Over groen"

[[sessions]]
key = "jongeren"
title = "Jongeren"
"""


def test_every_documented_optional_key_is_accepted(tmp_path: Path) -> None:
    cfg = load_event_config(_write(tmp_path, EVERY_OPTIONAL_KEY))
    assert cfg.unsubscribe_url == "https://a.example/afmelden"
    assert (cfg.contact_phone, cfg.price, cfg.companions_welcome, cfg.max_companions) == (
        "06-1",
        "10 euro",
        False,
        2,
    )
    assert (cfg.offer_expiry_hours, cfg.no_offers_within_hours, cfg.late_policy) == (
        24,
        12,
        "closed",
    )
    assert (cfg.reminder_days_before, cfg.reminder_local_time) == ((3,), time(8, 30))
    assert cfg.nudge_days_before_deadline == 2
    assert (cfg.followup_days_after, cfg.followup_local_time) == (2, time(11, 0))
    assert cfg.survey_url == "https://a.example/enquete"
    assert [(m.title, m.url) for m in cfg.materials] == [("Dia's", "https://a.example/dias.pdf")]
    assert (cfg.raw_message_retention_days, cfg.personal_data_retention_days) == (10, 100)
    assert cfg.allowed_sender_domains == ("a.example",)
    assert cfg.max_answers_per_sender_per_day == 3
    assert cfg.trusted_authserv_ids == ("mx.a.example",)
    assert cfg.extra == {
        "templates_dir": "/srv/sjablonen",
        "description_nl": "Beschrijving",
        "description_en": "Description",
    }
    assert [(p.time, p.item) for p in cfg.programme] == [("10:00", "Start")]
    groen = cfg.sessions[0]
    assert (groen.aliases, groen.capacity, groen.description) == (("natuur",), 6, "Over groen")


def test_a_config_with_every_key_round_trips_through_the_database(
    db: Session, tmp_path: Path
) -> None:
    cfg = load_event_config(_write(tmp_path, EVERY_OPTIONAL_KEY))
    event, _ = apply_event_config(db, cfg)
    db.commit()
    assert stored_config(event) == cfg


def test_a_stored_config_tolerates_keys_of_another_version(db: Session) -> None:
    event = make_event(db)
    event.config = {**event.config, "added_in_a_later_version": True}
    db.commit()
    assert stored_config(event) == load_event_config(EVENT_TOML)


def test_an_event_loaded_before_the_session_name_check_keeps_working(db: Session) -> None:
    cfg = load_event_config(EVENT_TOML)
    wonen = dataclasses.replace(cfg.sessions[2], aliases=("werk",))  # also the key of `werk`
    event = make_event(db, sessions=(*cfg.sessions[:2], wonen, cfg.sessions[3]))
    db.commit()
    assert stored_config(event).sessions[2].aliases == ("werk",)


def test_every_example_event_file_loads() -> None:
    files = sorted((EVENT_TOML.parent).glob("*.toml"))
    assert files
    for path in files:
        load_event_config(path)


def _with_sessions(*sessions: dict[str, object]) -> dict[str, object]:
    data = tomllib.loads(EVERY_OPTIONAL_KEY)
    data["sessions"] = list(sessions)
    return data


def _session_problems(*sessions: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_event_config(_with_sessions(*sessions))
    return raised.value.problems


def test_an_alias_that_is_another_sessions_key_is_refused() -> None:
    problems = _session_problems(
        {"key": "jongeren", "title": "Jongeren", "aliases": ["jeugd", "Groen"]},
        {"key": "groen", "title": "Groen in de wijk"},
    )
    assert problems == [
        "sessions[0].aliases: 'groen' is an alias of session 'jongeren' and also the key of "
        "session 'groen'; a reply naming it could mean either"
    ]


def test_an_alias_shared_by_two_sessions_or_equal_to_a_title_is_refused() -> None:
    problems = _session_problems(
        {"key": "jongeren", "title": "Jongeren", "aliases": ["buurt"]},
        {"key": "groen", "title": "Groen", "aliases": ["Buurt", "jongeren "]},
    )
    assert problems == [
        "sessions[1].aliases: 'buurt' is an alias of session 'groen' and also an alias of "
        "session 'jongeren'; a reply naming it could mean either",
        "sessions[1].aliases: 'jongeren ' is an alias of session 'groen' and also the key of "
        "session 'jongeren'; a reply naming it could mean either",
    ]
    problems = _session_problems(
        {"key": "a", "title": "Wonen en werk"},
        {"key": "b", "title": "Zorg", "aliases": ["wonen, en werk"]},
    )
    assert problems == [
        "sessions[1].aliases: 'wonen, en werk' is an alias of session 'b' and also the title of "
        "session 'a'; a reply naming it could mean either"
    ]


def test_titles_that_replies_cannot_tell_apart_are_refused() -> None:
    # Replies may name a session by the part of its title before a ':'.
    problems = _session_problems(
        {"key": "ochtend", "title": "Werk: de ochtend"},
        {"key": "middag", "title": "Werk: de middag"},
    )
    assert problems == [
        "sessions[1].title: 'Werk' is the start of the title of session 'middag' (before the "
        "':') and also the start of the title of session 'ochtend' (before the ':'); a reply "
        "naming it could mean either"
    ]
    problems = _session_problems(
        {"key": "ochtend", "title": "Werk"}, {"key": "werk", "title": "Middag"}
    )
    assert problems == [
        "sessions[0].title: 'Werk' is the title of session 'ochtend' and also the key of session "
        "'werk'; a reply naming it could mean either"
    ]


def test_a_session_may_repeat_its_own_names() -> None:
    cfg = parse_event_config(
        _with_sessions(
            {"key": "groen", "title": "Groen: de wijk", "aliases": ["groen", "Groen", "wijk"]},
            {"key": "jongeren", "title": "Jongeren", "aliases": ["jeugd"]},
        )
    )
    assert [s.key for s in cfg.sessions] == ["groen", "jongeren"]
