"""The organiser's view: status, review queue, people, exports, attendance and audit trail.

The numbers come from workflows.reports (read-only) and attendance marking from
workflows.attendance; this module only parses options and draws tables. `render_status` is
public because the demo prints the same overview at the end.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from email.utils import parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from db.models import Event, InboundMessage, ParticipantStatus
from jobs.commands.common import app_context, console
from jobs.commands.corrections import organiser_actor
from jobs.commands.registry import UserError, friendly_errors
from workflows.attendance import (
    AttendanceChange,
    ListedEmail,
    listed_from_options,
    mark_attendance,
    parse_attendance_list,
)
from workflows.clock import now
from workflows.errors import RsvpError
from workflows.events import get_event
from workflows.reports import (
    PersonRow,
    ReviewItem,
    StatusReport,
    audit_trail,
    event_tz,
    find_participant,
    hidden_outbox_claims,
    people,
    review_detail,
    review_event,
    review_items,
    session_key,
    status_report,
)
from workflows.understanding import PersonMention, ReplyKind

PANEL = "Organiser"
WIDE_OUTPUT = 200
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
TIME = "%Y-%m-%d %H:%M"
# A UTC time written into a stored text, e.g. the sender's "retry at 2023-01-09 14:00:00Z".
_UTC_STAMP_RE = re.compile(r"\b(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?Z\b")
EVENT_ARGUMENT = typer.Argument(..., metavar="EVENT", help="The event's slug")


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class ResolveAs(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    TENTATIVE = "tentative"
    QUESTION = "question"
    IGNORE = "ignore"


# `ignore` closes the item without changing anything: resolve_review's "unclear".
RESOLVE_KINDS = {
    ResolveAs.ACCEPT: ReplyKind.ACCEPT,
    ResolveAs.DECLINE: ReplyKind.DECLINE,
    ResolveAs.TENTATIVE: ReplyKind.TENTATIVE,
    ResolveAs.QUESTION: ReplyKind.QUESTION,
    ResolveAs.IGNORE: ReplyKind.UNCLEAR,
}

# Column headers of the export, in the event's language (badges and lists are printed).
EXPORT_HEADERS = {
    "nl": (
        "Naam",
        "Organisatie",
        "Functie",
        "E-mail",
        "Status",
        "Deelsessie",
        "Dieetwensen",
        "Introducé van",
        "Introducés",
    ),
    "en": (
        "Name",
        "Organisation",
        "Role",
        "Email",
        "Status",
        "Session",
        "Dietary wishes",
        "Companion of",
        "Companions",
    ),
}


# Status values in the export, in the same language as its headers. English keeps the
# values `--status` takes, so a file can be checked against the command that wrote it.
EXPORT_STATUSES = {
    "nl": {
        ParticipantStatus.INVITED: "uitgenodigd",
        ParticipantStatus.REGISTERED: "aangemeld",
        ParticipantStatus.WAITLISTED: "wachtlijst",
        ParticipantStatus.OFFERED: "plaats aangeboden",
        ParticipantStatus.DECLINED: "afgezegd",
        ParticipantStatus.CANCELLED: "afgemeld",
        ParticipantStatus.EXPIRED: "aanbod vervallen",
        ParticipantStatus.ATTENDED: "aanwezig",
        ParticipantStatus.NO_SHOW: "niet verschenen",
    },
    "en": {status: status.value for status in ParticipantStatus},
}


@functools.cache
def _wide_console() -> Console:
    return Console(highlight=False, width=WIDE_OUTPUT)


def _output() -> Console:
    """The shared console on a terminal; piped or captured output gets wide tables, so that
    `rsvpmail people EVENT | grep …` sees whole rows instead of cells wrapped at 80 columns."""
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return _wide_console()


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left")


def _fold(table: Table, *, whole: Collection[str] = ()) -> Table:
    """Long reasons wrap inside their cell instead of being cut off with '…'.

    The `whole` columns hold single tokens that are unreadable when broken, e-mail addresses
    above all (rich sees one word and would fold it anywhere): a narrow terminal squeezes the
    other columns first, which wrap between words. Only when nothing else can give way is a
    `whole` cell folded too, rather than cut off.
    """
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = column.header in whole
    return table


def _t(value: object) -> Text:
    """Plain text for a table cell: names from mail must never be read as rich markup."""
    return Text("" if value is None else str(value))


def _when(moment: datetime | None) -> str:
    """A time in a table cell; the column header names the zone (see _in_zone)."""
    return "" if moment is None else f"{moment:{TIME}}"


def _zoned(moment: datetime | None) -> str:
    """A time in running text, with its zone: '2023-01-09 15:00 CET'."""
    return "" if moment is None else f"{moment:{TIME}} {moment.tzname() or ''}".rstrip()


def _zone_name(zone: tzinfo | None) -> str:
    return str(getattr(zone, "key", None) or zone or "UTC")


def _in_zone(header: str, zone: tzinfo | None) -> str:
    """A column header for times: 'since (Europe/Amsterdam)'."""
    return f"{header} ({_zone_name(zone)})"


def _local_stamps(text: str, zone: tzinfo) -> str:
    """UTC times written into a stored text ('retry at 2023-01-09 14:00:00Z') shown in `zone`,
    like every other time in the table."""

    def local(match: re.Match[str]) -> str:
        at = datetime.fromisoformat(f"{match[1]}T{match[2]}").replace(tzinfo=UTC)
        return _zoned(at.astimezone(zone))

    return _UTC_STAMP_RE.sub(local, text)


def plural(count: int, singular: str, many: str | None = None) -> str:
    """'1 message', '2 messages'; `many` for irregular plurals ('1 person', '2 people')."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


# --------------------------------------------------------------------------- status


def render_status(out: Console, report: StatusReport) -> None:
    """Draw the status overview of one event (used by `rsvpmail status` and the demo)."""
    zone = _report_zone(report)
    out.print(Text(f"{report.title} ({report.slug})", style="bold"))
    out.print(
        f"starts {_zoned(report.starts_local)} · registration deadline "
        f"{_zoned(report.registration_deadline_local)} · as of "
        f"{_zoned(report.generated_at.astimezone(zone))} · times in {_zone_name(zone)}"
    )
    out.print(
        f"Seats: {report.seats_taken} taken, {report.seats_left} left "
        f"of {report.capacity} (registered + offered count as taken)"
    )
    invitations = ", ".join(f"{n} {s}" for s, n in report.invitation_counts.items() if n)
    out.print(f"Invitations: {invitations or 'none'}")
    out.print(_status_counts(report))
    out.print(_sessions_table(report))
    _print_section(out, "Waitlist", _waitlist_table(report), len(report.waitlist))
    _print_section(out, "Open offers", _offers_table(report), len(report.offers))
    review = _review_table(report.review, zone)
    _print_section(out, "Review queue", review, len(report.review))
    _print_section(out, "Undeliverable invitations", _bounces_table(report), len(report.bounces))
    _print_section(out, "Failed mail", _failed_table(report), len(report.failed_mails))
    out.print(f"Outbox: {plural(report.outbox_pending, 'message')} waiting to be sent")


def _report_zone(report: StatusReport) -> tzinfo:
    """The event's time zone, in which the report gives every time."""
    return report.starts_local.tzinfo or UTC


def _print_section(out: Console, title: str, table: Table, rows: int) -> None:
    if rows:
        out.print(table)
    else:
        out.print(Text(f"{title}: none", style="dim"))


def _status_counts(report: StatusReport) -> Table:
    table = _table("Participants")
    table.add_column("status")
    table.add_column("count", justify="right")
    for status, count in report.counts.items():
        table.add_row(status, str(count), style=None if count else "dim")
    table.add_row("tentative (invited, said maybe)", str(report.tentative), style="italic")
    table.add_row("total", str(sum(report.counts.values())), style="bold")
    return _fold(table)


def _grid(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[RenderableType]],
    *,
    numbers: Collection[str] = (),
    whole: Collection[str] = (),
) -> Table:
    """A titled table of `rows`; the `numbers` columns are right-aligned, the `whole` columns
    are kept unbroken as long as the width allows (see _fold)."""
    table = _table(title)
    for name in columns:
        table.add_column(name, justify="right" if name in numbers else "left")
    for row in rows:
        table.add_row(*row)
    return _fold(table, whole=whole)


def _sessions_table(report: StatusReport) -> Table:
    counts = ("registered", "offered", "waitlisted", "taken", "capacity", "left")
    rows = (
        (
            _t(s.key or s.title),
            str(s.registered),
            str(s.offered),
            str(s.waitlisted),
            str(s.taken),
            "—" if s.capacity is None else str(s.capacity),
            "—" if s.left is None else str(s.left),
        )
        for s in report.sessions
    )
    return _grid("Sessions", ("session", *counts), rows, numbers=counts)


def _waitlist_table(report: StatusReport) -> Table:
    rows = (
        (
            str(w.position),
            _t(w.name),
            _t(w.organisation),
            str(w.party_size),
            _t(w.session_key or ""),
            _when(w.since_local),
        )
        for w in report.waitlist
    )
    since = _in_zone("since", _report_zone(report))
    columns = ("#", "name", "organisation", "party", "session", since)
    return _grid("Waitlist", columns, rows, numbers=("#", "party"))


def _offers_table(report: StatusReport) -> Table:
    rows = (
        (
            _t(o.name),
            _t(o.organisation),
            str(o.party_size),
            Text.assemble(_when(o.expires_local), (" overdue", "red") if o.overdue else ""),
        )
        for o in report.offers
    )
    # "overdue": the deadline has passed but the job has not expired the offer yet.
    answer_before = _in_zone("answer before", _report_zone(report))
    columns = ("name", "organisation", "party", answer_before)
    return _grid("Open offers", columns, rows, numbers=("party",))


def _review_table(items: Sequence[ReviewItem], zone: tzinfo) -> Table:
    rows = (
        (
            str(item.id),
            _when(item.received_local.astimezone(zone)),
            _t(item.from_address),
            _t(item.subject),
            _t(item.kind or "?"),
            _t(item.why),
        )
        for item in items
    )
    columns = ("id", _in_zone("received", zone), "from", "subject", "kind", "why")
    return _grid("Review queue", columns, rows, numbers=("id",), whole=("from",))


def _bounces_table(report: StatusReport) -> Table:
    rows = (
        (_t(b.name), _t(b.email), _t(b.organisation), _t(b.reason), _when(b.since_local))
        for b in report.bounces
    )
    since = _in_zone("since", _report_zone(report))
    columns = ("name", "email", "organisation", "reason", since)
    return _grid("Undeliverable invitations", columns, rows, whole=("email",))


def _failed_table(report: StatusReport) -> Table:
    rows = (
        (str(m.id), _t(m.recipient), _t(m.kind), str(m.attempts), _t(m.last_error))
        for m in report.failed_mails
    )
    columns = ("id", "recipient", "kind", "attempts", "last error")
    return _grid("Failed mail", columns, rows, numbers=("id", "attempts"), whole=("recipient",))


@friendly_errors
def status_command(
    ctx: typer.Context,
    event: str = EVENT_ARGUMENT,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON for scripts."),
) -> None:
    """Where registration stands: seats, sessions, waitlist, offers, review queue, problems."""
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        report = status_report(db, get_event(db, event))
    if as_json:
        typer.echo(json.dumps(report.to_json_dict(), ensure_ascii=False, indent=2))
    else:
        render_status(_output(), report)


# --------------------------------------------------------------------------- review


class _ReviewGroup(TyperGroup):
    """`rsvpmail review EVENT` is short for `rsvpmail review list EVENT`."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "list", self.commands["list"], args
        return super().resolve_command(ctx, args)


review_app = typer.Typer(
    cls=_ReviewGroup,
    help="Replies waiting for a human decision: `review EVENT`, `review show ID`, "
    "`review resolve ID --as …`.",
    no_args_is_help=True,
)


@review_app.command("list")
@friendly_errors
def review_list(
    ctx: typer.Context,
    event: str | None = typer.Argument(
        None, metavar="EVENT", help="The event's slug (all events when left out)"
    ),
) -> None:
    """List the messages waiting for a decision, with what the parser thought."""
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        items = review_items(db, get_event(db, event) if event else None)
    if not items:
        _output().print("nothing waiting for review")
        return
    for item in items:
        _output().print(_review_panel(item))
    _output().print(
        f"{plural(len(items), 'message')} waiting; decide with "
        "`rsvpmail review resolve ID --as accept|decline|tentative|question|ignore`"
    )


def _review_panel(item: ReviewItem, *, full: bool = False) -> Panel:
    lines = [
        Text.assemble(("subject: ", "bold"), item.subject),
        Text.assemble(("parser:  ", "bold"), item.parsed),
        Text.assemble(("why:     ", "bold"), item.why or "—"),
    ]
    if item.person_name or item.event_slug:
        matched = f"{item.person_name or '?'} ({item.event_slug or 'no event'})"
        lines.append(Text.assemble(("matched: ", "bold"), matched))
    text = item.reply_text
    if not full and text.count("\n") > 12:
        text = "\n".join(text.splitlines()[:12]) + "\n…"
    lines.append(Text(""))
    lines.append(Text(text or "(no reply text stored)", style="" if text else "dim"))
    title = Text(f"#{item.id} · {item.from_address} · {_zoned(item.received_local)}")
    return Panel(Group(*lines), title=title, title_align="left", expand=False)


@review_app.command("show")
@friendly_errors
def review_show(
    ctx: typer.Context,
    inbound_id: int = typer.Argument(..., metavar="ID", help="The message id from `review`"),
) -> None:
    """Show one message: headers, the full stripped reply and what the parser thought."""
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        detail = review_detail(db, inbound_id)
    out = _output()
    item = detail.item
    headers = Table(show_header=False, box=None, padding=(0, 1))
    headers.add_column(style="bold")
    headers.add_column()
    for name, value in detail.headers:
        headers.add_row(f"{name}:", _t(value))
    out.print(Text(f"message #{item.id} · status {item.status}", style="bold"))
    if detail.headers:
        out.print(headers)
    else:
        out.print(Text("(the raw message is no longer kept: no headers)", style="dim"))
    out.print(f"size: {detail.raw_size} bytes · received {_zoned(item.received_local)}")
    out.print(Text.assemble(("parser: ", "bold"), item.parsed))
    out.print(Text.assemble(("why:    ", "bold"), item.why or "—"))
    if detail.resolution:
        resolved = f"{_zoned(detail.resolved_local)} {detail.resolution}".lstrip()
        out.print(Text.assemble(("resolved: ", "bold"), resolved))
    label = {"classification": "reply (quotes and signature stripped)", "body": "body"}
    title = label.get(detail.text_source, "text")
    out.print(Panel(_t(detail.text or "(no text)"), title=title, title_align="left", expand=False))


@review_app.command("resolve")
@friendly_errors
def review_resolve(
    ctx: typer.Context,
    inbound_id: Annotated[int, typer.Argument(metavar="ID", help="The message id from `review`")],
    as_kind: Annotated[
        ResolveAs,
        typer.Option(
            "--as", help="What the reply means; `ignore` closes it without changing anything."
        ),
    ],
    session: str | None = typer.Option(
        None,
        "--session",
        help="Deelsessie key, e.g. wonen: one of the event's sessions (`status EVENT` lists them)",
    ),
    companion: Annotated[
        list[str] | None,
        typer.Option(
            help='A colleague who comes too: "Naam <email>" (repeatable; replaces the '
            "companions the parser found)"
        ),
    ] = None,
    no_companions: bool = typer.Option(
        False, "--no-companions", help="Ignore the companions the parser found"
    ),
    substitute: str | None = typer.Option(
        None, "--substitute", help='Someone who comes instead: "Naam <email>"'
    ),
    participant: str | None = typer.Option(
        None,
        "--participant",
        help="Who the message is about (e-mail address or participant id), when it matched no one",
    ),
    note: str = typer.Option("", "--note", help="Why you decided this (kept in the audit)"),
    by: str | None = typer.Option(
        None, "--by", help="Your name for the audit \\[default: $USER]", show_default=False
    ),
) -> None:
    """Decide what a reply means; the registration rules then run as if it said so."""
    if companion and no_companions:
        raise UserError("--companion and --no-companions contradict each other")
    companions: tuple[PersonMention, ...] | None = None  # None: keep what the parser found
    if companion or no_companions:
        companions = tuple(_mention(text, "--companion") for text in companion or ())
    replacement = _mention(substitute, "--substitute") if substitute else None
    from workflows.inbound import resolve_review

    actor = organiser_actor(by)
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        participant_id = find_participant(db, participant) if participant else None
        # A session the event does not have would be dropped silently by the rules, so it
        # is refused here, before anything changes (as `people EVENT --session` does).
        known_event = review_event(db, inbound_id, participant_id)
        if session is not None:
            session = session.strip().lower()  # the rules compare keys exactly
            if known_event is not None:
                session = session_key(db, known_event, session)
        try:
            status = resolve_review(
                db,
                inbound_id,
                as_kind=RESOLVE_KINDS[as_kind],
                session=session,
                actor=actor,
                companions=companions,
                substitute=replacement,
                participant_id=participant_id,
                note=note,
            )
        except RsvpError as exc:
            raise UserError(_name_the_option(str(exc))) from None
        message = db.get(InboundMessage, inbound_id)
        assert message is not None
        if session is not None and known_event is None and message.event_id is not None:
            # Matched only now: check the session against that event. Raising rolls the
            # whole resolution back, so still nothing has changed.
            matched = db.get(Event, message.event_id)
            assert matched is not None
            session_key(db, matched, session)
        resolution = message.resolution
    _output().print(
        Text(
            f"message #{inbound_id} resolved as {as_kind.value} by {actor}: now {status}"
            + (f" ({resolution})" if resolution else "")
        )
    )


def _name_the_option(message: str) -> str:
    """The rules ask for a `participant_id`; on the command line that is --participant."""
    return message.replace(
        "say which participant it is about (participant_id)",
        "say who it is about with --participant EMAIL (or the participant id)",
    )


def _mention(text: str, option: str) -> PersonMention:
    """'Karin Smit <k.smit@gemeente.nl>' or just 'Karin Smit' (she then gets no mail)."""
    example = '"Karin Smit <k.smit@gemeente.nl>"'
    if "<" in text or "@" in text:
        name, address = (part.strip() for part in parseaddr(text))
        if not _EMAIL_RE.match(address):
            raise UserError(f"{option} {text!r}: no valid email address; e.g. {example}")
        if not name:
            raise UserError(f"{option} {text!r}: give a name too, e.g. {example}")
        return PersonMention(name=name, email=address.lower())
    if not text.strip():
        raise UserError(f"{option}: empty; e.g. {example}")
    return PersonMention(name=text.strip(), email=None)


# --------------------------------------------------------------------------- people/export


@friendly_errors
def people_command(
    ctx: typer.Context,
    event: str = EVENT_ARGUMENT,
    status: Annotated[
        list[ParticipantStatus] | None, typer.Option(help="Only these statuses (repeatable)")
    ] = None,
    session: str | None = typer.Option(None, "--session", help="Only this deelsessie (key)"),
) -> None:
    """List the participants: name, email, organisation, role, status, session, dietary."""
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        rows = people(db, get_event(db, event), statuses=status or (), session=session)
    _output().print(people_table(f"People of {event}", rows))
    _output().print(plural(len(rows), "person", "people"))


def people_table(title: str, rows: Sequence[PersonRow]) -> Table:
    """The `people` table: addresses, statuses and session keys are kept whole."""
    columns = ("name", "email", "organisation", "role", "status", "session", "dietary")
    table_rows = (
        (
            _t(r.name),
            _t(r.email),
            _t(r.organisation),
            _t(r.role),
            # "maybe" only while still invited: a later yes or no is the answer that counts,
            # as in `status` ("tentative (invited, said maybe)").
            _t(r.status + (" (maybe)" if r.tentative else "")),
            _t(r.session_key or ""),
            _t(r.dietary),
            _t(r.companion_of_name or ""),
        )
        for r in rows
    )
    whole = ("email", "status", "session")
    return _grid(title, (*columns, "companion of"), table_rows, whole=whole)


def export_records(rows: Sequence[PersonRow], language: str) -> list[list[str]]:
    """The export's data rows, in the order of EXPORT_HEADERS, with the status values in
    `language` (the language of the headers)."""
    labels = _export_statuses(language)
    return [
        [
            r.name,
            r.organisation,
            r.role,
            r.email,
            labels.get(r.status, r.status),
            r.session_title or "",
            r.dietary,
            r.companion_of_name or "",
            ", ".join(
                f"{c.name} ({labels.get(c.status, c.status)})" if c.gone else c.name
                for c in r.companions
            ),
        ]
        for r in rows
    ]


def export_headers(language: str) -> tuple[str, ...]:
    """The export's column headers in the event's language (English for any other)."""
    return EXPORT_HEADERS.get(language, EXPORT_HEADERS["en"])


def _export_statuses(language: str) -> dict[str, str]:
    labels = EXPORT_STATUSES.get(language, EXPORT_STATUSES["en"])
    return {status.value: label for status, label in labels.items()}


def csv_bytes(headers: Sequence[str], records: Sequence[Sequence[str]]) -> bytes:
    """UTF-8 with BOM and ';' so that Dutch Excel opens it with the right columns and accents."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows([[_no_formula(cell) for cell in record] for record in records])
    return buffer.getvalue().encode("utf-8-sig")


def _no_formula(cell: str) -> str:
    # Names come from replies; "=HYPERLINK(…)" must stay text in a spreadsheet (CSV injection).
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def xlsx_bytes(headers: Sequence[str], records: Sequence[Sequence[str]], title: str) -> bytes:
    """A worksheet with a bold header row, autofilter, frozen header and fitted column widths."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]  # Excel's limit on sheet names
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for record in records:
        sheet.append(list(record))
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text from mail, never a formula
    sheet.auto_filter.ref = sheet.dimensions
    sheet.freeze_panes = "A2"
    for index, header in enumerate(headers, start=1):
        longest = max([len(header), *(len(r[index - 1]) for r in records)])
        sheet.column_dimensions[get_column_letter(index)].width = min(60, longest + 2)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@friendly_errors
def export_command(
    ctx: typer.Context,
    event: str = EVENT_ARGUMENT,
    fmt: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            help="csv or xlsx \\[default: as the --output file name says (.csv, .xlsx), else csv]",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write \\[default: <slug>-<statuses>-<date>.<format>]",
            show_default=False,
        ),
    ] = None,
    status: Annotated[
        list[ParticipantStatus] | None,
        typer.Option(
            help="Statuses to include (repeatable) \\[default: registered only; add e.g. "
            "--status registered --status offered for people with an open offer]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the list for name badges and the attendance list (CSV for Excel, or XLSX).

    By default only `registered` people are in it (not `offered` ones): choose with --status.

    Headers and status values are in the event's language.
    """
    statuses = status or [ParticipantStatus.REGISTERED]
    chosen = _export_format(fmt, output)
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        found = get_event(db, event)
        rows = people(db, found, statuses=statuses)
        slug, language = found.slug, found.language
        today = now().astimezone(event_tz(found)).date()
    headers = export_headers(language)
    records = export_records(rows, language)
    status_part = "+".join(s.value for s in statuses)
    target = output or Path(f"{slug}-{status_part}-{today.isoformat()}.{chosen.value}")
    if chosen is ExportFormat.CSV:
        data = csv_bytes(headers, records)
    else:
        data = xlsx_bytes(headers, records, title=status_part)
    target.write_bytes(data)
    written = plural(len(records), "person", "people")
    _output().print(Text(f"wrote {written} ({status_part}) as {chosen.value} to {target}"))


def _export_format(fmt: ExportFormat | None, output: Path | None) -> ExportFormat:
    """--format, else what the --output file name says (.csv, .xlsx), else CSV; a file name
    that says otherwise than --format is refused (Excel would not open it)."""
    if output is None:
        return fmt or ExportFormat.CSV
    suffix = output.suffix.lower().lstrip(".")
    named = next((f for f in ExportFormat if f.value == suffix), None)
    if fmt is not None and named is not None and fmt is not named:
        raise UserError(
            f"--format {fmt.value} contradicts --output {output} (a .{suffix} file); leave "
            f"--format out, or name the file {output.with_suffix('.' + fmt.value).name}"
        )
    return fmt or named or ExportFormat.CSV


# --------------------------------------------------------------------------- attendance


@friendly_errors
def attendance_command(
    ctx: typer.Context,
    event: str = EVENT_ARGUMENT,
    present: Annotated[
        Path | None,
        typer.Option(help="Who came: one address per line, or a CSV with an email/e-mail column"),
    ] = None,
    present_email: Annotated[
        list[str] | None,
        typer.Option(help="An address of someone who came (repeatable)"),
    ] = None,
    absent_email: Annotated[
        list[str] | None,
        typer.Option(help="Correct an earlier mark: this person did not come (repeatable)"),
    ] = None,
    absent_rest: bool | None = typer.Option(
        None,
        "--absent-rest/--no-absent-rest",
        help="Mark everyone registered but not listed as no_show "
        "\\[default: on after the event has ended]",
        show_default=False,
    ),
    by: str | None = typer.Option(
        None, "--by", help="Your name for the audit \\[default: $USER]", show_default=False
    ),
) -> None:
    """Mark who came (attended) and who did not (no_show); a list with problems is rejected."""
    listed: list[ListedEmail] = []
    if present is not None:
        listed += parse_attendance_list(present.read_bytes(), str(present))
    listed += listed_from_options(present_email or (), "--present-email")
    absent = listed_from_options(absent_email or (), "--absent-email")
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        result = mark_attendance(
            db,
            get_event(db, event),
            listed,
            absent=absent,
            absent_rest=absent_rest,
            actor=organiser_actor(by),
        )
    changes = [*result.attended, *result.no_show]
    if changes:
        _output().print(_changes_table(changes))
    _output().print(
        f"{len(result.attended)} marked attended, {len(result.no_show)} marked no_show, "
        f"{result.unchanged} already right"
        + ("" if result.absent_rest else " (people not listed were left as they are)")
    )


def _changes_table(changes: Sequence[AttendanceChange]) -> Table:
    rows = ((_t(c.name), _t(c.email), c.old_status, c.new_status) for c in changes)
    columns = ("name", "email", "was", "now")
    return _grid("Attendance changes", columns, rows, whole=("email",))


# --------------------------------------------------------------------------- audit


@friendly_errors
def audit_command(
    ctx: typer.Context,
    event: str = EVENT_ARGUMENT,
    person: str | None = typer.Option(None, "--person", help="Only what concerns this address"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the newest N entries"),
    everything: bool = typer.Option(
        False,
        "--all",
        help="Also the outbox's claim rows (pending → sending, and back when a lease ran out)",
    ),
) -> None:
    """Show the audit trail: who changed what, when, why, and which message caused it.

    One row per mail outcome by default (queued, sent, failed, …); --all shows every row.
    """
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        found = get_event(db, event)
        zone = event_tz(found)
        rows = audit_trail(db, found, person_email=person, limit=limit, outbox_claims=everything)
        hidden = 0 if everything else hidden_outbox_claims(db, found, person_email=person)
    table_rows = (
        (
            _when(r.at_local),
            _t(r.actor),
            f"{r.machine} #{r.entity_id}",
            _t(r.person_email or r.person_name or ""),
            f"{r.old_status or '∅'} → {r.new_status}",
            _t(_local_stamps(r.reason, zone)),
            _t(r.source_message_id or ""),
        )
        for r in rows
    )
    when = _in_zone("when", zone)
    columns = (when, "actor", "machine", "person", "change", "reason", "source message")
    table = _grid(f"Audit trail of {event}", columns, table_rows, whole=("person",))
    _output().print(table)
    footer = plural(len(rows), "entry", "entries")
    if hidden:
        footer += (
            f"; {plural(hidden, 'outbox claim row')} hidden (pending → sending, expired "
            "leases): --all shows them"
        )
    _output().print(footer)


def register(app: typer.Typer) -> None:
    app.command("status", rich_help_panel=PANEL)(status_command)
    app.add_typer(review_app, name="review", rich_help_panel=PANEL)
    app.command("people", rich_help_panel=PANEL)(people_command)
    app.command("export", rich_help_panel=PANEL)(export_command)
    app.command("attendance", rich_help_panel=PANEL)(attendance_command)
    app.command("audit", rich_help_panel=PANEL)(audit_command)
