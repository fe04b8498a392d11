"""Choosing the database and the settings: one way for every command, and clear errors.

Precedence of the database: --database-url / $RSVPMAIL_DATABASE_URL, else the [database] url
of the config file (`rsvpmail --config/-c FILE`, $RSVPMAIL_CONFIG, or a command's own
--config/-c), else sqlite:///rsvpmail.db in the working directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import select
from typer.testing import CliRunner, Result

from db.engine import DatabaseUrlError, display_url, make_engine
from db.models import OutboundMessage, OutboundStatus
from jobs.cli import app
from jobs.commands.common import AppContext
from jobs.commands.mailing import smtp_server
from jobs.settings import SettingsError, load_settings
from jobs.smtp_sender import SendReport
from tests.conftest import EVENT_TOML, INVITEES_CSV

SLUG = "leren-van-rotterdam-zuid"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RSVPMAIL_* from the caller's shell; the working directory is the test's own."""
    for name in list(os.environ):
        if name.startswith("RSVPMAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def one_error_line(result: Result) -> str:
    """The whole of stderr: one `error: …` line, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def migrated(tmp_path: Path, sqlite_template: Path) -> Path:
    """A migrated, empty SQLite database at tmp_path/walk.db."""
    target = tmp_path / "walk.db"
    shutil.copyfile(sqlite_template, target)
    return target


def config_file(path: Path, database: Path | str | None, extra: str = "") -> Path:
    text = ""
    if database is not None:
        url = database if isinstance(database, str) else f"sqlite:///{database}"
        text = f'[database]\nurl = "{url}"\n'
    path.write_text(text + extra, encoding="utf-8")
    return path


def quiet_mail(port: int) -> str:
    """Mail settings that fail at once: nothing listens on `port`."""
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 2\n'
        f'[imap]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 2\n'
    )


# ====================================================================== precedence


def test_the_root_config_chooses_the_database_of_every_command(
    tmp_path: Path, migrated: Path
) -> None:
    config = config_file(tmp_path / "rsvpmail.toml", migrated)
    result = run("-c", str(config), "event", "load", str(EVENT_TOML))
    assert result.exit_code == 0, result.output
    result = run("--config", str(config), "invitees", "import", SLUG, str(INVITEES_CSV))
    assert result.exit_code == 0 and "60 new invitations" in result.stdout, result.output
    result = run("status", SLUG, env={"RSVPMAIL_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    # Nothing went to ./rsvpmail.db, the default.
    assert not (tmp_path / "rsvpmail.db").exists()


def test_database_url_beats_the_config_file(tmp_path: Path, migrated: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    config = config_file(tmp_path / "rsvpmail.toml", elsewhere)
    url = f"sqlite:///{migrated}"
    result = run("--database-url", url, "-c", str(config), "outbox", "list", "x")
    assert "no event 'x'" in one_error_line(result)  # it looked in the migrated database
    result = run("-c", str(config), "outbox", "list", "x", env={"RSVPMAIL_DATABASE_URL": url})
    assert "no event 'x'" in one_error_line(result)
    assert not elsewhere.exists()


def test_without_url_or_config_the_default_is_rsvpmail_db_here(tmp_path: Path) -> None:
    line = one_error_line(run("outbox", "list", "x"))
    assert f"no database at {tmp_path / 'rsvpmail.db'}" in line
    assert "neither --database-url nor --config" in line
    assert "--config/-c FILE" in line  # the way to choose another


def test_a_config_without_a_database_url_means_the_default(tmp_path: Path) -> None:
    config = config_file(tmp_path / "mail-only.toml", None, quiet_mail(closed_port()))
    line = one_error_line(run("-c", str(config), "outbox", "list", "x"))
    assert f"no database at {tmp_path / 'rsvpmail.db'}" in line
    assert f"{config} has no [database] url" in line


def test_choosing_the_database_needs_only_the_database_section(
    tmp_path: Path, migrated: Path
) -> None:
    """A command that sends no mail does not need the mail passwords' variables."""
    config = config_file(
        tmp_path / "rsvpmail.toml", migrated, '[imap]\npassword_env = "NOT_SET_ANYWHERE"\n'
    )
    assert "no event 'x'" in one_error_line(run("-c", str(config), "outbox", "list", "x"))
    line = one_error_line(run("-c", str(config), "outbox", "send", "--once"))
    assert "$NOT_SET_ANYWHERE is not set" in line


def test_a_typo_in_the_config_is_refused_not_ignored(tmp_path: Path) -> None:
    config = tmp_path / "rsvpmail.toml"
    config.write_text('[databse]\nurl = "sqlite:///x.db"\n', encoding="utf-8")
    line = one_error_line(run("-c", str(config), "outbox", "list", "x"))
    assert f"{config}: [databse]: unknown section" in line
    line = one_error_line(run("-c", str(tmp_path / "absent.toml"), "outbox", "list", "x"))
    assert "absent.toml: cannot read" in line


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["serve", "--once"],
        ["invite", SLUG, "--dry-run"],
        ["outbox", "send", "--once"],
        ["inbox", "read", "--once"],
    ],
)
def test_a_command_config_also_chooses_the_database(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "from-config.db"
    config = config_file(tmp_path / "rsvpmail.toml", missing, quiet_mail(closed_port()))
    for option in ("--config", "-c"):
        result = run(*command, option, str(config))
        text = result.stdout if command == ["check"] else one_error_line(result)
        assert f"no database at {missing}" in text, result.output
        assert f"create it with `rsvpmail -c {config} db upgrade`" in text
        assert result.exit_code == (1 if command == ["check"] else 2)
    assert not missing.exists() and not (tmp_path / "rsvpmail.db").exists()


def test_a_command_config_shows_its_envvar_and_short_option() -> None:
    for command in (["serve"], ["check"], ["inbox", "read"], ["invite"], ["outbox", "send"]):
        result = run(*command, "--help")
        assert result.exit_code == 0
        assert "--config" in result.stdout and "-c " in result.stdout, command
        assert "RSVPMAIL_CONFIG" in result.stdout, command


def test_root_help_shows_the_default_database_and_the_config_option() -> None:
    result = run("--help")
    assert "[default: sqlite:///rsvpmail.db]" in result.stdout
    assert "RSVPMAIL_DATABASE_URL" in result.stdout
    assert "--config" in result.stdout and "RSVPMAIL_CONFIG" in result.stdout


def test_a_command_config_beats_the_variable_and_agrees_with_the_root(
    tmp_path: Path, migrated: Path
) -> None:
    good = config_file(tmp_path / "good.toml", migrated, quiet_mail(closed_port()))
    other = config_file(tmp_path / "other.toml", tmp_path / "other.db")
    # On the command line, a command's --config beats $RSVPMAIL_CONFIG …
    result = run("invite", SLUG, "--dry-run", "-c", str(good), env={"RSVPMAIL_CONFIG": str(other)})
    assert f"no event '{SLUG}'" in one_error_line(result)
    # … a root -c beats the variable as the command's option reads it too …
    result = run("-c", str(good), "invite", SLUG, "--dry-run", env={"RSVPMAIL_CONFIG": str(other)})
    assert f"no event '{SLUG}'" in one_error_line(result)
    # … the same file twice is fine, two different ones are refused.
    result = run("-c", str(good), "invite", SLUG, "--dry-run", "-c", str(good))
    assert f"no event '{SLUG}'" in one_error_line(result)
    line = one_error_line(run("-c", str(good), "invite", SLUG, "--dry-run", "-c", str(other)))
    assert "two config files given" in line
    assert not (tmp_path / "other.db").exists()


# ====================================================================== hints name the database


def _run_hint(line: str) -> Result:
    """Run the `rsvpmail …` command quoted in a message."""
    command = line.split("`")[1]
    words = shlex.split(command)
    assert words[0] == "rsvpmail"
    return run(*words[1:])


@pytest.mark.parametrize("how", ["config", "variable", "option", "default"])
def test_the_upgrade_hint_names_the_database_and_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    target = tmp_path / "walk.db"
    config = config_file(tmp_path / "rsvpmail.toml", target)
    before: list[str] = []
    if how == "config":
        before = ["-c", str(config)]
    elif how == "variable":
        monkeypatch.setenv("RSVPMAIL_DATABASE_URL", f"sqlite:///{target}")
    elif how == "option":
        before = ["--database-url", f"sqlite:///{target}"]
    else:
        target = tmp_path / "rsvpmail.db"
    line = one_error_line(run(*before, "event", "load", str(EVENT_TOML)))
    assert f"no database at {target}" in line and "db upgrade" in line
    with monkeypatch.context() as bare:
        bare.delenv("RSVPMAIL_DATABASE_URL", raising=False)  # the hint must say it all
        result = _run_hint(line)
    assert result.exit_code == 0 and f"{target.name} migrated from empty" in result.stdout
    assert run(*before, "event", "load", str(EVENT_TOML)).exit_code == 0


def test_an_unmigrated_database_names_the_command_that_migrates_it(tmp_path: Path) -> None:
    target = tmp_path / "empty.db"
    sqlite3.connect(target).close()  # exists, no tables
    config = config_file(tmp_path / "rsvpmail.toml", target)
    line = one_error_line(run("-c", str(config), "outbox", "list", "x"))
    assert f"database sqlite:///{target} is not initialised" in line
    assert f"run `rsvpmail -c {config} db upgrade` first" in line
    line = one_error_line(run("--database-url", f"sqlite:///{target}", "outbox", "list", "x"))
    assert f"run `rsvpmail --database-url sqlite:///{target} db upgrade` first" in line
    assert _run_hint(line).exit_code == 0


def test_the_hint_hides_the_password() -> None:
    app = AppContext(database_url_option="postgresql://rsvp:s3cret@db.example/rsvpmail")
    command = app.upgrade_command()
    assert "s3cret" not in command and "***" in command
    assert command.endswith(" db upgrade") and "db.example/rsvpmail" in command
    assert "s3cret" not in app.describe_database()


def test_describe_database_says_where_the_choice_came_from(tmp_path: Path) -> None:
    config = config_file(tmp_path / "rsvpmail.toml", tmp_path / "walk.db")
    described = AppContext(config=config).describe_database()
    assert described == f"sqlite:///{tmp_path / 'walk.db'} (from [database] url in {config})"
    described = AppContext(database_url_option="sqlite:///x.db").describe_database()
    assert described == "sqlite:///x.db (given with --database-url)"


# ====================================================================== bad URLs


BAD_URLS = [
    ("sqlite:///nonexistent/dir/x.db", "the directory"),
    ("postgres://rsvp:s3cret@127.0.0.1/x", "write postgresql+psycopg://rsvp:***@127.0.0.1/x"),
    ("walk.db", "not a URL; write sqlite:///walk.db"),
    ("mysql://rsvp@127.0.0.1/x", "mysql is not supported"),
    ("postgresql+psycopg2://rsvp@127.0.0.1/x", "driver psycopg2 is not available"),
    ("postgresql://rsvp:s3cret@127.0.0.1:{port}/x", "cannot connect"),
]


@pytest.mark.parametrize(("url", "problem"), BAD_URLS)
@pytest.mark.parametrize(
    "command",
    [
        ["status", "E"],
        ["db", "upgrade"],
        ["db", "status"],
        ["outbox", "list", "E"],
        ["serve", "--once"],
        ["invite", "E", "--dry-run"],
    ],
)
def test_a_bad_database_url_is_one_line(url: str, problem: str, command: list[str]) -> None:
    url = url.format(port=closed_port())
    result = run("--database-url", url, *command)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith("error: database URL ") and "(given with --database-url)" in line
    assert problem in line and "s3cret" not in line


@pytest.mark.parametrize(("url", "problem"), BAD_URLS)
def test_check_reports_a_bad_database_url_and_checks_the_rest(
    tmp_path: Path, url: str, problem: str
) -> None:
    url = url.format(port=closed_port())
    config = config_file(tmp_path / "rsvpmail.toml", url, quiet_mail(closed_port()))
    result = run("check", "-c", str(config))
    assert result.exit_code == 1 and "Traceback" not in result.output
    [database] = [line for line in result.stdout.splitlines() if "database" in line]
    assert database.startswith("✗ database: database URL ")
    assert f"(from [database] url in {config})" in database and problem in database
    assert "s3cret" not in result.output
    assert len(result.stdout.splitlines()) == 4  # settings, database, IMAP, SMTP


def test_make_engine_explains_without_connecting() -> None:
    with pytest.raises(DatabaseUrlError, match="postgres:// is not understood"):
        make_engine("postgres://h/x")
    engine = make_engine("postgresql://rsvp@127.0.0.1/x")  # the bare scheme: psycopg 3
    assert engine.url.drivername == "postgresql+psycopg"
    assert display_url("sqlite:///:memory:") == "sqlite:///:memory:"


def test_errors_inside_a_command_keep_their_traceback(
    migrated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only making the engine and its first connection are translated; a database error in
    the command's own work is not dressed up as a bad URL."""
    import jobs.commands.mailing

    def broken(*_args: object) -> None:
        raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("disk I/O error"))

    run("--database-url", f"sqlite:///{migrated}", "event", "load", str(EVENT_TOML))
    monkeypatch.setattr(jobs.commands.mailing, "outbox_rows", broken)
    result = run("--database-url", f"sqlite:///{migrated}", "outbox", "list", SLUG)
    assert isinstance(result.exception, sqlalchemy.exc.OperationalError)
    assert "database URL" not in result.output


# ====================================================================== no silent SQLite files


@pytest.mark.parametrize(
    "command",
    [
        ["status", SLUG],
        ["db", "status"],
        ["event", "load", str(EVENT_TOML)],
        ["invitees", "import", SLUG, str(INVITEES_CSV)],
        ["invite", SLUG],
        ["outbox", "list", SLUG],
        ["inbox", "quarantine"],
        ["serve", "--once"],
    ],
)
def test_no_command_but_db_upgrade_creates_a_database(tmp_path: Path, command: list[str]) -> None:
    target = tmp_path / "typo.db"
    line = one_error_line(run("--database-url", f"sqlite:///{target}", *command))
    assert line == (
        f"error: no database at {target} (given with --database-url); "
        f"create it with `rsvpmail --database-url sqlite:///{target} db upgrade`"
    )
    assert not target.exists()
    result = run("--database-url", f"sqlite:///{target}", "db", "upgrade")
    assert result.exit_code == 0 and target.exists()


# ====================================================================== sending: which server


@pytest.fixture
def invited(tmp_path: Path, migrated: Path) -> Path:
    """A config whose SMTP server refuses connections, and a database with an event."""
    config = config_file(tmp_path / "rsvpmail.toml", migrated, quiet_mail(closed_port()))
    for args in (
        ["event", "load", str(EVENT_TOML)],
        ["invitees", "import", SLUG, str(INVITEES_CSV)],
    ):
        assert run("-c", str(config), *args).exit_code == 0
    return config


def _statuses(database: Path) -> set[OutboundStatus]:
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            return set(connection.scalars(select(OutboundMessage.status)))
    finally:
        engine.dispose()


def test_invite_names_the_smtp_server_and_fails_when_nothing_went_out(
    invited: Path, migrated: Path
) -> None:
    port = load_settings(invited, env={}).smtp.port
    result = run("invite", SLUG, "--batch", "eerste-ronde", "-c", str(invited))
    assert result.exit_code == 1, result.output
    server = f"SMTP server 127.0.0.1:{port} (from {invited})"
    assert f"sending 40 mails through {server}" in result.stdout
    assert "ConnectionRefusedError" in result.stdout
    assert result.stdout.count("ConnectionRefusedError") == 1  # one line for the same error
    # (Log lines may come first when an earlier test in this process configured logging.)
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: nothing could be sent through {server}")
    assert "40 mail(s) stay queued (nothing is lost)" in line
    assert _statuses(migrated) == {OutboundStatus.PENDING}


def test_outbox_send_names_the_smtp_server_and_its_origin(
    invited: Path, migrated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("-c", str(invited), "invite", SLUG, "--no-send").exit_code == 0
    port = closed_port()
    monkeypatch.setenv("RSVPMAIL_SMTP_PORT", str(port))
    result = run("-c", str(invited), "outbox", "send", "--once")
    assert result.exit_code == 1, result.output
    assert f"SMTP server 127.0.0.1:{port} (host from {invited}, port from $RSVPMAIL_SMTP_PORT)" in (
        result.stdout
    )
    assert "stay queued (nothing is lost)" in result.stderr
    assert _statuses(migrated) == {OutboundStatus.PENDING}
    # Nothing due now (the retries wait): nothing to fail at.
    result = run("-c", str(invited), "outbox", "send", "--once")
    assert result.exit_code == 0 and "sent 0, to retry later 0" in result.stdout


def test_invite_succeeds_when_some_mail_went_out(
    invited: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs.commands.mailing

    def partly(*_args: object, **_kwargs: object) -> SendReport:
        return SendReport(sent=39, retried=1, errors=["7: SMTPServerDisconnected: gone"])

    monkeypatch.setattr(jobs.commands.mailing, "send_due", partly)
    result = run("-c", str(invited), "invite", SLUG, "--batch", "eerste-ronde")
    assert result.exit_code == 0, result.output
    assert "sent 39, to retry later 1" in result.stdout and result.stderr == ""


def test_the_smtp_server_says_where_its_setting_came_from(tmp_path: Path) -> None:
    assert smtp_server(load_settings(None, env={})) == (
        "SMTP server 127.0.0.1:1025 (the default: no --config file given)"
    )
    empty = config_file(tmp_path / "empty.toml", None)
    assert smtp_server(load_settings(empty, env={})) == (
        f"SMTP server 127.0.0.1:1025 (the default: {empty} sets no [smtp] host or port)"
    )
    config = config_file(tmp_path / "r.toml", None, '[smtp]\nhost = "smtp.x.example"\n')
    assert smtp_server(load_settings(config, env={"RSVPMAIL_SMTP_PORT": "2525"})) == (
        f"SMTP server smtp.x.example:2525 (host from {config}, port from $RSVPMAIL_SMTP_PORT)"
    )
    assert smtp_server(load_settings(config, env={})) == (
        f"SMTP server smtp.x.example:1025 (host from {config}, port the default)"
    )


def test_without_a_config_invite_says_the_default_server_and_how_to_choose(
    migrated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs.commands.mailing

    def refused(*_args: object, **_kwargs: object) -> SendReport:
        return SendReport(
            retried=2, errors=["1: ConnectionRefusedError: x", "2: ConnectionRefusedError: x"]
        )

    url = f"sqlite:///{migrated}"
    for args in (
        ["event", "load", str(EVENT_TOML)],
        ["invitees", "import", SLUG, str(INVITEES_CSV)],
    ):
        assert run("--database-url", url, *args).exit_code == 0
    monkeypatch.setattr(jobs.commands.mailing, "send_due", refused)
    result = run("--database-url", url, "invite", SLUG, "--only", "f.visser@oosterdijk.example")
    assert result.exit_code == 1
    assert "SMTP server 127.0.0.1:1025 (the default: no --config file given)" in result.stdout
    assert "ConnectionRefusedError: x (outbox id 1, 2)" in result.stdout
    assert "rsvpmail -c rsvpmail.toml" in result.stderr and "nothing is lost" in result.stderr


# ====================================================================== settings from variables


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("RSVPMAIL_SMTP_PORT", "abc", "expected int, got 'abc'"),
        ("RSVPMAIL_SMTP_PORT", "70000", "70000 is not a TCP port"),
        ("RSVPMAIL_IMAP_TLS", "tls", "must be one of none, starttls, ssl"),
        ("RSVPMAIL_IMAP_IDLE", "sometimes", "expected true or false"),
        ("RSVPMAIL_TICKS_OUTBOX", "0", "must be above 0 seconds"),
    ],
)
def test_a_bad_value_from_a_variable_names_the_variable(
    tmp_path: Path, variable: str, value: str, problem: str
) -> None:
    config = config_file(tmp_path / "rsvpmail.toml", None, "[smtp]\nport = 587\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(config, env={variable: value})
    message = str(caught.value)
    assert message.startswith(f"environment variable {variable} (sets [")
    assert problem in message and not message.startswith(str(config))


def test_check_blames_the_variable_not_the_file(tmp_path: Path, migrated: Path) -> None:
    config = config_file(tmp_path / "rsvpmail.toml", migrated, quiet_mail(closed_port()))
    result = run("check", "--config", str(config), env={"RSVPMAIL_SMTP_PORT": "abc"})
    line = one_error_line(result)
    assert line == (
        "error: environment variable RSVPMAIL_SMTP_PORT (sets [smtp] port): expected int, got 'abc'"
    )
    assert result.exit_code == 2


def test_settings_remember_where_each_value_came_from(tmp_path: Path) -> None:
    config = config_file(tmp_path / "rsvpmail.toml", None, '[smtp]\nhost = "smtp.x.example"\n')
    settings = load_settings(
        config, env={"RSVPMAIL_SMTP_PORT": "2525", "RSVPMAIL_IMAP_PASSWORD": "p"}
    )
    assert settings.origin("smtp", "host") == str(config)
    assert settings.origin("smtp", "port") == "$RSVPMAIL_SMTP_PORT"
    assert settings.origin("smtp", "tls") == "default"
    assert settings.origin("imap", "password") == "$RSVPMAIL_IMAP_PASSWORD"  # never the value
