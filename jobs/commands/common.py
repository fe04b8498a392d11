"""What every command shares: the database chosen by --database-url, and rich output."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.engine import database_url, ensure_migrated, make_engine, make_sessionmaker

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class AppContext:
    database_url: str
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.database_url)
        return self._engine

    def sessions(self, *, require_migrated: bool = True) -> sessionmaker[Session]:
        """A session factory; refuses an un-migrated database unless told otherwise."""
        if require_migrated:
            ensure_migrated(self.engine)
        return make_sessionmaker(self.engine)


def app_context(ctx: typer.Context) -> AppContext:
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext(database_url(None))
    return root.obj


def install_root_options(app: typer.Typer) -> None:
    @app.callback()
    def root(
        ctx: typer.Context,
        database_url_option: str | None = typer.Option(
            None,
            "--database-url",
            envvar="RSVPMAIL_DATABASE_URL",
            help="SQLAlchemy URL of the database [default: sqlite:///rsvpmail.db]",
            show_envvar=True,
        ),
    ) -> None:
        """Run the registration of an invitation-only event by email."""
        ctx.obj = AppContext(database_url(database_url_option))
