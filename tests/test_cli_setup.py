"""The setup commands as an organiser uses them: one clear line and a non-zero exit on errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from jobs.cli import app
from tests.conftest import EVENT_TOML, INVITEES_CSV

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
    assert "rsvpmail db upgrade" in err and "Traceback" not in err


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
    assert code == 2 and "cannot read file" in err
