"""What every command shares: the database and settings the root options choose, rich output.

One way of choosing the database, for every command:

1. `--database-url URL` (or $RSVPMAIL_DATABASE_URL),
2. else the `[database] url` of the service config file: `rsvpmail --config/-c FILE …` (or
   $RSVPMAIL_CONFIG), or the `--config/-c FILE` of serve, check, inbox read, invite and
   outbox send, which is the same option given after the command,
3. else sqlite:///rsvpmail.db in the working directory.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.engine import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    DatabaseNotReady,
    DatabaseUrlError,
    check_connection,
    check_sqlite_directory,
    display_url,
    ensure_migrated,
    make_engine,
    make_sessionmaker,
    sqlite_file,
)
from jobs.commands.registry import UserError
from jobs.settings import ServiceSettings, SettingsError, database_url_in_file, load_settings

T = TypeVar("T")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

CONFIG_ENV = "RSVPMAIL_CONFIG"

# The commands that may create a database where there is none; any other command refuses a
# SQLite file that does not exist rather than creating an empty one (a mistyped path, or a
# command run in another directory, would silently start a second database).
CREATES_DATABASE = frozenset({"db upgrade"})

CONFIG_HELP = (
    "Service settings TOML (see rsvpmail.example.toml). Its \\[database] url is used by every "
    "command unless --database-url is given; serve, check, inbox read, invite and outbox send "
    "also use its mail settings."
)

# The per-command --config (serve, check, inbox read, invite, outbox send): the root option
# given after the command name, for the commands that always documented one.
CONFIG_OPTION = typer.Option(
    None,
    "--config",
    "-c",
    help=CONFIG_HELP + " The same as `rsvpmail -c FILE COMMAND`.",
    envvar=CONFIG_ENV,
    show_envvar=True,
)


@dataclass
class AppContext:
    """How this run chose its database and settings, and the engine (made once)."""

    database_url_option: str | None = None  # --database-url or $RSVPMAIL_DATABASE_URL
    database_url_from: str = "--database-url"  # or "$RSVPMAIL_DATABASE_URL"
    config: Path | None = None
    config_from: str = "--config"  # or "$RSVPMAIL_CONFIG"
    command: str = ""  # the command being run, e.g. "db upgrade" (set by app_context)
    _engine: Engine | None = field(default=None, repr=False)
    _settings: ServiceSettings | None = field(default=None, repr=False)
    _chosen: tuple[str, str] | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls) -> AppContext:
        """What the root options would say when none is given (their variables)."""
        config = os.environ.get(CONFIG_ENV)
        return cls(
            database_url_option=os.environ.get(DATABASE_URL_ENV) or None,
            database_url_from=f"${DATABASE_URL_ENV}",
            config=Path(config) if config else None,
            config_from=f"${CONFIG_ENV}",
        )

    # -- the database ----------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return self._choice()[0]

    @property
    def database_origin(self) -> str:
        """Where the database URL came from, for messages."""
        return self._choice()[1]

    def describe_database(self) -> str:
        """The database and where that choice came from, password hidden."""
        return f"{display_url(self.database_url)} ({self.database_origin})"

    def _choice(self) -> tuple[str, str]:
        """(URL, where it came from); the config file is read once."""
        if self._chosen is None:
            self._chosen = self._choose()
        return self._chosen

    def _choose(self) -> tuple[str, str]:
        if self.database_url_option:
            origin = "from " + self.database_url_from
            if self.database_url_from.startswith("--"):
                origin = "given with " + self.database_url_from
            return self.database_url_option, origin
        if self.config is not None:
            try:
                url = database_url_in_file(self.config)
            except SettingsError as exc:
                raise UserError(str(exc)) from None
            if url:
                return url, f"from [database] url in {self.config}"
            return DEFAULT_DATABASE_URL, f"the default: {self.config} has no [database] url"
        return DEFAULT_DATABASE_URL, "the default: neither --database-url nor --config was given"

    def upgrade_command(self) -> str:
        """`rsvpmail … db upgrade` for this very database, to quote in messages."""
        if self.database_url_option is None and self.config is not None:
            return f"rsvpmail -c {shlex.quote(str(self.config))} db upgrade"
        url = shlex.quote(display_url(self.database_url))
        return f"rsvpmail --database-url {url} db upgrade"

    @property
    def engine(self) -> Engine:
        """The engine, connected once: a URL that cannot work is DatabaseUrlError here, and a
        missing SQLite file is DatabaseNotReady (outside `db upgrade`), before any work."""
        if self._engine is None:
            try:
                engine = make_engine(self.database_url)
            except DatabaseUrlError as exc:
                exc.origin = self.database_origin
                raise
            path = sqlite_file(engine.url)
            if path is not None and not path.exists() and self.command not in CREATES_DATABASE:
                engine.dispose()
                self._check(check_sqlite_directory, engine.url)
                other = ""
                if self.database_url_option is None and self.config is None:
                    other = ", or choose another with --config/-c FILE or --database-url URL"
                raise DatabaseNotReady(
                    f"no database at {path.absolute()} ({self.database_origin}); "
                    f"create it with `{self.upgrade_command()}`{other}"
                )
            try:
                self._check(check_connection, engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    def _check(self, check: Callable[[T], None], what: T) -> None:
        try:
            check(what)
        except DatabaseUrlError as exc:
            exc.origin = self.database_origin
            raise

    def ensure_migrated(self) -> None:
        ensure_migrated(self.engine, upgrade_command=self.upgrade_command())

    def sessions(self, *, require_migrated: bool = True) -> sessionmaker[Session]:
        """A session factory; refuses an un-migrated database unless told otherwise."""
        if require_migrated:
            self.ensure_migrated()
        return make_sessionmaker(self.engine)

    # -- the service settings --------------------------------------------------------------

    def use_config(self, ctx: typer.Context, config: Path | None) -> None:
        """A command's own --config: the root option, given after the command name.

        From the command line it beats $RSVPMAIL_CONFIG; from $RSVPMAIL_CONFIG it is what the
        root option already read (which a root `-c FILE` beats). Two different files on the
        command line are refused: which database to use must never be a guess.
        """
        if config is None or _from_environment(ctx, "config"):
            return
        if self.config is not None and self.config_from.startswith("-"):
            if self.config.resolve() != config.resolve():
                raise UserError(
                    f"two config files given: `rsvpmail -c {self.config}` and "
                    f"`{self.command} --config {config}`; give one"
                )
            return
        before = self.database_url if self._engine is not None else None
        self.config, self.config_from = config, "--config"
        self._settings = self._chosen = None
        if self._engine is not None and before != self.database_url:
            self._engine.dispose()
            self._engine = None

    def settings(self) -> ServiceSettings:
        """The config file's settings with the environment's overrides (defaults without one)."""
        if self._settings is None:
            try:
                self._settings = load_settings(self.config)
            except SettingsError as exc:
                raise UserError(str(exc)) from None
        return self._settings


def _from_environment(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "ENVIRONMENT"


def app_context(ctx: typer.Context) -> AppContext:
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext.from_environment()
    app: AppContext = root.obj
    names = []
    current: Any = ctx  # a click Context: typer's and click's types differ for mypy
    while current is not None and current.parent is not None:
        names.append(current.info_name or "")
        current = current.parent
    app.command = " ".join(reversed(names))
    return app


def settings_for(ctx: typer.Context, config: Path | None) -> ServiceSettings:
    """The settings of the config file chosen by the root or the command's --config."""
    app = app_context(ctx)
    app.use_config(ctx, config)
    return app.settings()


def install_root_options(app: typer.Typer) -> None:
    @app.callback()
    def root(
        ctx: typer.Context,
        database_url_option: str | None = typer.Option(
            None,
            "--database-url",
            envvar=DATABASE_URL_ENV,
            help="SQLAlchemy URL of the database: sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/NAME. Beats the config file's \\[database] url. "
            f"\\[default: {DEFAULT_DATABASE_URL}]",
            show_envvar=True,
        ),
        config: Path | None = typer.Option(
            None,
            "--config",
            "-c",
            envvar=CONFIG_ENV,
            help=CONFIG_HELP,
            show_envvar=True,
        ),
    ) -> None:
        """Run the registration of an invitation-only event by email."""
        ctx.obj = AppContext(
            database_url_option=database_url_option or None,
            database_url_from=(
                f"${DATABASE_URL_ENV}"
                if _from_environment(ctx, "database_url_option")
                else "--database-url"
            ),
            config=config,
            config_from=f"${CONFIG_ENV}" if _from_environment(ctx, "config") else "--config",
        )
