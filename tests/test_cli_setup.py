"""The setup commands as an organiser uses them: one clear line and a non-zero exit on errors."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup
from typer.testing import CliRunner

from jobs.cli import app
from tests.conftest import EVENT_TOML, INVITEES_CSV
from tests.mailfactory import installed_clock

runner = CliRunner()


def rsvpmail(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--database-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_help_groups_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for panel in ("Setup", "Mail", "Replies", "Organiser", "Service", "Privacy"):
        assert panel in result.stdout
    for command in ("db", "event", "invitees", "invite", "serve", "status", "review", "demo"):
        assert f" {command} " in result.stdout


def test_a_fresh_database_is_set_up_with_three_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    code, out, _ = rsvpmail(url, "db", "upgrade")
    assert code == 0 and "migrated from empty" in out
    code, out, _ = rsvpmail(url, "db", "upgrade")
    assert code == 0 and "up to date" in out
    code, out, _ = rsvpmail(url, "event", "load", str(EVENT_TOML))
    assert code == 0 and "created event leren-van-rotterdam-zuid" in out
    code, out, _ = rsvpmail(url, "event", "load", str(EVENT_TOML))
    assert code == 0 and "updated event" in out
    code, out, _ = rsvpmail(
        url, "invitees", "import", "leren-van-rotterdam-zuid", str(INVITEES_CSV)
    )
    assert code == 0 and "60 new invitations" in out
    code, out, _ = rsvpmail(
        url, "invitees", "import", "leren-van-rotterdam-zuid", str(INVITEES_CSV)
    )
    assert code == 0 and "0 new invitations, 60 already invited" in out


def test_unmigrated_database_is_one_clear_line(tmp_path: Path) -> None:
    code, _, err = rsvpmail(f"sqlite:///{tmp_path}/empty.db", "event", "load", str(EVENT_TOML))
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "rsvpmail" in err and "db upgrade" in err and "Traceback" not in err


def test_bad_config_and_bad_csv_are_reported_without_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.db"
    rsvpmail(url, "db", "upgrade")
    bad = tmp_path / "bad.toml"
    bad.write_text('slug = "x"\n', encoding="utf-8")
    code, _, err = rsvpmail(url, "event", "load", str(bad))
    assert code == 2 and str(bad) in err and "title: missing" in err and "Traceback" not in err

    rsvpmail(url, "event", "load", str(EVENT_TOML))
    csv = tmp_path / "list.csv"
    csv.write_text("naam;email\nJan;not-an-address\n", encoding="utf-8")
    code, _, err = rsvpmail(url, "invitees", "import", "leren-van-rotterdam-zuid", str(csv))
    assert code == 2 and "line 2: invalid email address" in err and "Traceback" not in err

    code, _, err = rsvpmail(url, "invitees", "import", "no-such-event", str(INVITEES_CSV))
    assert code == 2 and "no event 'no-such-event'" in err

    code, _, err = rsvpmail(url, "event", "load", str(tmp_path / "absent.toml"))
    assert (code, err) == (2, f"error: {tmp_path / 'absent.toml'}: no such file\n")


def test_a_file_that_cannot_be_read_is_one_line_for_both_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/db.db"
    rsvpmail(url, "db", "upgrade")
    rsvpmail(url, "event", "load", str(EVENT_TOML))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lijst.csv").mkdir()
    (tmp_path / "event.toml").mkdir()
    slug = "leren-van-rotterdam-zuid"
    for args, expected in (
        (("event", "load", "nope.toml"), "error: nope.toml: no such file\n"),
        (("event", "load", "event.toml"), "error: event.toml: is a directory, not a file\n"),
        (("invitees", "import", slug, "nope.csv"), "error: nope.csv: no such file\n"),
        (
            ("invitees", "import", slug, "lijst.csv"),
            "error: lijst.csv: is a directory, not a file\n",
        ),
    ):
        assert rsvpmail(url, *args)[0::2] == (2, expected)

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)  # chmod 000 does not stop root
    for args, name in (
        (("event", "load", str(EVENT_TOML)), str(EVENT_TOML)),
        (("invitees", "import", slug, str(INVITEES_CSV)), str(INVITEES_CSV)),
    ):
        assert rsvpmail(url, *args)[0::2] == (
            2,
            f"error: {name}: cannot be read (permission denied)\n",
        )


def test_problems_are_counted_in_words_and_listed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.db"
    rsvpmail(url, "db", "upgrade")
    toml = tmp_path / "event.toml"
    text = EVENT_TOML.read_text(encoding="utf-8")
    toml.write_text(text.replace('policy = "waitlist"', 'polcy = "closed"'), encoding="utf-8")
    code, _, err = rsvpmail(url, "event", "load", str(toml))
    assert (code, err) == (
        2,
        f"error: {toml}: 1 problem:\n  late_replies.polcy: unknown key (did you mean policy?)\n",
    )
    toml.write_text(text.replace("capacity = 40", "capacty = 40"), encoding="utf-8")
    code, _, err = rsvpmail(url, "event", "load", str(toml))
    assert (code, err) == (
        2,
        f"error: {toml}: 2 problems:\n  capacity: missing\n"
        "  capacty: unknown key (did you mean capacity?)\n",
    )

    rsvpmail(url, "event", "load", str(EVENT_TOML))
    csv = tmp_path / "list.csv"
    csv.write_text("naam;email\nJan;not-an-address\n", encoding="utf-8")
    code, _, err = rsvpmail(url, "invitees", "import", "leren-van-rotterdam-zuid", str(csv))
    assert code == 2 and f"{csv}: rejected, nothing imported (1 problem):" in err


def test_loading_an_event_that_is_over_warns_but_loads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.db"
    rsvpmail(url, "db", "upgrade")
    # The example event ended on 1 February 2023 at 17:30 in Amsterdam (16:30 UTC).
    with installed_clock(datetime(2023, 2, 1, 16, 29, tzinfo=UTC)):
        code, out, err = rsvpmail(url, "event", "load", str(EVENT_TOML))
    assert (code, err) == (0, "")
    with installed_clock(datetime(2023, 2, 1, 16, 31, tzinfo=UTC)):
        code, out, err = rsvpmail(url, "event", "load", str(EVENT_TOML))
    assert code == 0 and "updated event leren-van-rotterdam-zuid" in out
    assert err == (
        "warning: event leren-van-rotterdam-zuid ended 2023-02-01 17:30 (Europe/Amsterdam), "
        "before now; loaded all the same (for reports). If it has yet to happen, check "
        "starts_at and ends_at\n"
    )


def _setup_commands() -> list[TyperCommand]:
    """The commands of jobs/commands/setup.py and capacity.py."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    found: list[TyperCommand] = []
    for name in ("capacity", "db", "event", "invitees"):
        command = group.commands[name]
        if isinstance(command, TyperGroup):
            found += [c for c in command.commands.values() if isinstance(c, TyperCommand)]
        else:
            assert isinstance(command, TyperCommand)
            found.append(command)
    return found


def test_help_paragraphs_read_as_sentences() -> None:
    """A line break inside a paragraph of a docstring shows as one in --help."""
    commands = _setup_commands()
    assert len(commands) == 6
    for command in commands:
        for paragraph in inspect.cleandoc(command.help or "").split("\n\n"):
            assert "\n" not in paragraph, (command.name, paragraph)
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "Change an event's capacity; raising it offers seats to the waitlist." in result.stdout


def test_the_event_argument_is_called_event() -> None:
    for command in _setup_commands():
        for param in command.params:
            if param.name == "event":
                assert isinstance(param, TyperArgument)
                assert param.metavar == "EVENT", command.name
    for args, metavars in (
        (["capacity", "--help"], ["EVENT", "N"]),
        (["invitees", "import", "--help"], ["EVENT", "FILE"]),
        (["event", "load", "--help"], ["FILE"]),
    ):
        result = runner.invoke(app, args, env={"COLUMNS": "200"})
        usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
        assert re.findall(r"\b[A-Z]+\b", usage.split("[OPTIONS]")[1]) == metavars
