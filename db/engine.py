"""Engines and sessions, with the settings each backend needs to be safe under concurrency."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DATABASE_URL = "sqlite:///rsvpmail.db"
DATABASE_URL_ENV = "RSVPMAIL_DATABASE_URL"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Seconds to wait for PostgreSQL to answer: an unreachable host is an error, not a hang.
PG_CONNECT_TIMEOUT = 10
_URL_FORMS = "sqlite:///PATH (SQLite) or postgresql+psycopg://USER@HOST:PORT/NAME (PostgreSQL)"


class DatabaseNotReady(Exception):
    """The database is missing tables or behind the code's migrations."""


class DatabaseUrlError(Exception):
    """The database URL cannot work: malformed, an unsupported backend, a driver we do not
    ship, or nothing to connect to. Raised when the engine is made or first connects, never
    for what a command does afterwards.

    Reads `database URL URL (ORIGIN): PROBLEM`; the CLI sets `origin` (where the URL came
    from: --database-url, a variable, a config file).
    """

    def __init__(self, url: str, problem: str, origin: str = "") -> None:
        super().__init__(url, problem, origin)
        self.url, self.problem, self.origin = url, problem, origin

    def __str__(self) -> str:
        origin = f" ({self.origin})" if self.origin else ""
        return f"database URL {self.url}{origin}: {self.problem}"


def database_url(explicit: str | None = None) -> str:
    """--database-url wins, then $RSVPMAIL_DATABASE_URL, then SQLite in the working directory."""
    return explicit or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def display_url(url: str | URL) -> str:
    """The URL as a person would write it, password hidden."""
    if isinstance(url, str):
        text = url
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            # Unparseable: hide what looks like the password of user:password@host.
            return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", text)
    if url.get_backend_name() == "sqlite":
        return f"{url.drivername}://" + (f"/{url.database}" if url.database else "")
    return url.render_as_string(hide_password=True)


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for other backends, in-memory and URI-style names."""
    url = make_url(url) if isinstance(url, str) else url
    if url.get_backend_name() != "sqlite" or "uri" in url.query:
        return None
    if not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for `url`; DatabaseUrlError when the URL cannot work (no connection made)."""
    parsed = _parse(database_url(url))
    if parsed.get_backend_name() == "sqlite":
        engine = _create(parsed, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "connect_timeout" not in parsed.query:
        kwargs.setdefault("connect_args", {"connect_timeout": PG_CONNECT_TIMEOUT})
    return _create(parsed, **kwargs)


def _parse(text: str) -> URL:
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        problem = "not a URL" if "://" not in text else f"cannot be read ({_first_line(exc)})"
        hint = f"sqlite:///{text} for a SQLite file" if "://" not in text else _URL_FORMS
        raise DatabaseUrlError(repr(display_url(text)), f"{problem}; write {hint}") from None
    backend = url.get_backend_name()
    if backend == "postgres":
        fixed = url.set(drivername="postgresql+psycopg")
        raise DatabaseUrlError(
            display_url(url),
            f"the scheme postgres:// is not understood; write {display_url(fixed)}",
        )
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseUrlError(
            display_url(url),
            f"{backend} is not supported (rsvpmail runs on SQLite or PostgreSQL); use {_URL_FORMS}",
        )
    if url.drivername == "postgresql":
        # psycopg 3 is the driver we ship; the bare scheme would pick psycopg2.
        url = url.set(drivername="postgresql+psycopg")
    return url


def _create(url: URL, **kwargs: Any) -> Engine:
    try:
        return create_engine(url, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        driver = url.drivername.partition("+")[2] or url.drivername
        raise DatabaseUrlError(
            display_url(url),
            f"driver {driver} is not available ({_first_line(exc)}); use {_URL_FORMS}",
        ) from None
    except ArgumentError as exc:
        raise DatabaseUrlError(display_url(url), _first_line(exc)) from None


def check_connection(engine: Engine) -> None:
    """Connect once: DatabaseUrlError, in one line, when there is nothing to connect to.

    Only this first connection is translated; errors later on, inside a command's work, stay
    what they are (a lock timeout, a bug).
    """
    check_sqlite_directory(engine.url)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise DatabaseUrlError(display_url(engine.url), _cannot_connect(engine.url, exc)) from None


def check_sqlite_directory(url: URL) -> None:
    """DatabaseUrlError when a SQLite file's directory does not exist (nothing to open)."""
    path = sqlite_file(url)
    if path is not None and not path.absolute().parent.is_dir():
        raise DatabaseUrlError(
            display_url(url),
            f"cannot open {path}: the directory {path.absolute().parent} does not exist",
        )


def _cannot_connect(url: URL, exc: OperationalError) -> str:
    reason = _first_line(exc.orig if exc.orig is not None else exc)
    path = sqlite_file(url)
    if path is not None:
        return f"cannot open {path} ({reason}); check the file's and directory's permissions"
    return (
        f"cannot connect: {reason}; check that PostgreSQL runs there and that the URL's "
        "host, port, user, password and database name are right"
    )


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock at BEGIN. A deferred transaction that reads and then
        # writes can fail with "database is locked" without waiting; this one waits instead.
        # Sent to the driver directly: every transaction begins here, and the full statement
        # machinery cost as much as the outbox sender's whole per-mail UPDATE.
        try:
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            # What exec_driver_sql would raise: callers tell "database busy, try again" from
            # a bad message by catching SQLAlchemy's OperationalError.
            raise DBAPIError.instance("BEGIN IMMEDIATE", (), exc, sqlite3.Error) from exc


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as db, db.begin():
        yield db


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` (what `rsvpmail db upgrade` runs)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def ensure_migrated(engine: Engine, *, upgrade_command: str = "rsvpmail db upgrade") -> None:
    """Refuse to work on a database that is not at the code's migration head.

    `upgrade_command` is the command the message tells to run; the CLI passes one that
    names this database (`rsvpmail --database-url URL db upgrade`, `rsvpmail -c FILE …`).
    """
    current, head = current_revision(engine), head_revision()
    if current != head:
        where = display_url(engine.url)
        state = (
            "not initialised" if current is None else f"at revision {current}, code needs {head}"
        )
        raise DatabaseNotReady(f"database {where} is {state}; run `{upgrade_command}` first")
