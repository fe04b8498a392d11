"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

Each backend is migrated once per test session into a template (a file for SQLite, a
template database for PostgreSQL); every test then gets its own copy, so tests never see
each other's rows or leftovers of earlier runs, and migrations are exercised on both engines.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_sessionmaker, upgrade

if TYPE_CHECKING:
    from tests.mailfactory import ManualClock

pytest_plugins = ["tests.fixtures_mail"]

REPO = Path(__file__).resolve().parents[1]
EVENT_TOML = REPO / "events" / "leren-van-rotterdam-zuid.toml"
INVITEES_CSV = REPO / "events" / "leren-van-rotterdam-zuid-invitees.csv"

PG_ADMIN_DSN = os.environ.get(
    "RSVPMAIL_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Commands run in-process (typer's CliRunner) set up logging on the root logger, bound to
    the runner's stderr; left behind, that handler writes to a closed stream in later tests,
    and the "--- Logging error ---" it prints lands in another command's output."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # a clear reason beats a wall of errors
        pytest.fail(f"PostgreSQL at {PG_ADMIN_DSN!r} is not reachable: {exc}", pytrace=False)


def pg_url(dbname: str) -> str:
    params = dict(p.split("=", 1) for p in PG_ADMIN_DSN.split())
    return (
        f"postgresql+psycopg://{params.get('user', 'postgres')}@"
        f"{params.get('host', '127.0.0.1')}:{params.get('port', '5432')}/{dbname}"
    )


def create_pg_database(name: str, template: str | None = None) -> None:
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')


def drop_pg_database(name: str) -> None:
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def worker_tag(worker_id: str) -> str:
    return f"{os.getpid()}_{worker_id}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template(worker_tag: str) -> Iterator[str]:
    name = f"rsvpmail_tpl_{worker_tag}"
    create_pg_database(name)
    engine = make_engine(pg_url(name))
    upgrade(engine)
    engine.dispose()
    yield name
    drop_pg_database(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.applymarker(pytest.mark.integration)
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of its own for this test, on `backend`."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "rsvpmail.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    template_name: str = request.getfixturevalue("pg_template")
    name = f"rsvpmail_t_{uuid.uuid4().hex[:12]}"
    create_pg_database(name, template=template_name)
    try:
        yield pg_url(name)
    finally:
        drop_pg_database(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session for the test body; the test commits when it wants rows to be visible."""
    with sessions() as session:
        yield session


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """The one clock (workflows.clock.now), frozen at the example's default start; tests move
    it by hand. A test module may define its own `clock` to start elsewhere."""
    from tests.mailfactory import installed_clock

    with installed_clock() as c:
        yield c
