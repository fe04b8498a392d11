"""Running the service: serve, check."""

from __future__ import annotations

import dataclasses
import json
import smtplib
import ssl
from pathlib import Path

import typer
from rich.markup import escape

from db.engine import DatabaseNotReady, DatabaseUrlError, display_url
from jobs.commands.common import CONFIG_OPTION as CONFIG_OPTION  # inbox.py imports it from here
from jobs.commands.common import app_context, console
from jobs.commands.common import settings_for as settings_for  # and this
from jobs.commands.registry import UserError, friendly_errors
from jobs.locks import InstanceConflict
from jobs.logsetup import configure_logging
from jobs.settings import ImapSettings, SmtpSettings


def serve(
    ctx: typer.Context,
    config: Path | None = CONFIG_OPTION,
    once: bool = typer.Option(
        False, "--once", help="Run every job once, print a JSON summary and exit (for cron)"
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING"),
) -> None:
    """Run the service: read replies, apply the rules, send mail, run the event timelines.

    SIGTERM or Ctrl-C finishes the mail in hand, releases the locks and exits 0. With
    --once the exit code is 1 when a job failed (the others still ran).
    """
    from jobs.service import Service, failed_jobs

    try:
        configure_logging(log_level)
    except ValueError as exc:
        raise UserError(f"--log-level: {exc}") from None
    settings = settings_for(ctx, config)
    app = app_context(ctx)
    app.ensure_migrated()  # a missing or old database, named with the command that fixes it
    service = Service(settings=settings, engine=app.engine)
    try:
        if once:
            report = service.run_once()
            # Plain stdout, not the rich console: it would wrap the JSON at the terminal width.
            typer.echo(json.dumps({k: _plain(v) for k, v in report.items()}, default=str))
            if failed_jobs(report):
                raise typer.Exit(1)
            return
        service.install_signal_handlers()
        service.start()
    except InstanceConflict as exc:
        raise UserError(str(exc)) from None
    try:
        service.wait()
    finally:
        service.stop()


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def check(ctx: typer.Context, config: Path | None = CONFIG_OPTION) -> None:
    """Verify the configuration, the database and both mail connections; say what is wrong."""
    settings = settings_for(ctx, config)
    _report(True, "settings", settings.source)
    results = [
        _check_database(ctx),
        _check_imap(settings.imap),
        _check_smtp(settings.smtp),
    ]
    if not all(results):
        raise typer.Exit(1)


def _report(ok: bool, what: str, detail: str) -> bool:
    mark = "[green]✓[/]" if ok else "[red]✗[/]"
    # One line per check, however narrow the terminal: scripts and people grep these.
    console.print(f"{mark} {what}: {escape(detail)}", soft_wrap=True)
    return ok


def _check_database(ctx: typer.Context) -> bool:
    app = app_context(ctx)
    where = display_url(app.database_url)
    try:
        app.ensure_migrated()
    except (DatabaseNotReady, DatabaseUrlError) as exc:
        return _report(False, "database", str(exc))
    except Exception as exc:  # anything else the first queries run into
        return _report(False, "database", f"{where}: cannot connect: {_first_line(exc)}")
    return _report(True, "database", f"{where} is migrated ({app.database_origin})")


def _check_imap(imap: ImapSettings) -> bool:
    from jobs.imap_reader import connect

    where = f"IMAP {imap.user or '(no user)'}@{imap.host}:{imap.port} ({imap.tls})"
    try:
        with connect(imap) as mailbox:
            status = mailbox.folder.status(imap.folder)
    except Exception as exc:
        return _report(False, where, _first_line(exc))
    count = status.get("MESSAGES", "?")
    return _report(True, where, f"logged in; {imap.folder} holds {count} messages")


def _check_smtp(smtp: SmtpSettings) -> bool:
    where = f"SMTP {smtp.host}:{smtp.port} ({smtp.tls})"
    try:
        client: smtplib.SMTP
        if smtp.tls == "ssl":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            client.ehlo()
            if smtp.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if smtp.user:
                client.login(smtp.user, smtp.password)
            client.noop()
    except Exception as exc:
        return _report(False, where, _first_line(exc))
    return _report(True, where, "connected" + (f", logged in as {smtp.user}" if smtp.user else ""))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def register(app: typer.Typer) -> None:
    app.command("serve", rich_help_panel="Service")(friendly_errors(serve))
    app.command("check", rich_help_panel="Service")(friendly_errors(check))
