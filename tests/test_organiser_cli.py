"""The organiser's commands through the real CLI (`jobs.cli.app`) on the test database."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from db.models import (
    AuditEntry,
    InboundMessage,
    InboundStatus,
    Invitation,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
)
from jobs.cli import app
from jobs.commands.organiser import (
    EXPORT_HEADERS,
    export_records,
    people_table,
    plural,
)
from tests.factories import one_line_error
from tests.test_reports import START, Scenario, _review, build_scenario
from workflows.reports import people, status_report
from workflows.transitions import transition
from workflows.understanding import ReplyKind, Understanding


@pytest.fixture(autouse=True)
def piped_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output as when piped to a file: pytest-xdist sets COLUMNS=80 in its workers, which
    would make the commands wrap their tables like on a narrow terminal."""
    monkeypatch.delenv("COLUMNS", raising=False)


PS = ParticipantStatus
AFTER_EVENT = datetime(2023, 2, 2, 9, 0, tzinfo=UTC)
runner = CliRunner()


class Run(Protocol):
    """The `cli` fixture: `rsvpmail --database-url <test db> ARGS…`."""

    def __call__(self, *args: str) -> Result: ...


@pytest.fixture
def traveller() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=False) as t:
        yield t


@pytest.fixture
def scenario(db: Session, traveller: time_machine.Traveller) -> Scenario:
    return build_scenario(db, traveller)


@pytest.fixture
def cli(db: Session, database_url: str) -> Iterator[Run]:

    def run(*args: str) -> Result:
        # End the test's own transaction first: on SQLite it would hold the write lock.
        db.rollback()
        return runner.invoke(app, ["--database-url", database_url, *args])

    yield run


def status_of(db: Session, participant: Participant) -> ParticipantStatus:
    db.expire_all()
    refreshed = db.get(Participant, participant.id)
    assert refreshed is not None
    return refreshed.status


def test_status_shows_the_numbers(cli: Run, scenario: Scenario) -> None:
    result = cli("status", scenario.event.slug)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Seats: 7 taken, 1 left of 8" in out
    assert "Outbox: 2 messages waiting to be sent" in out
    names = ["Mohamed van der Linden", "Sanne Jansen", "Tom Dekker"]
    assert [out.index(n) for n in names] == sorted(out.index(n) for n in names)
    deadline = scenario.offer_deadline.astimezone(ZoneInfo("Europe/Amsterdam"))
    assert f"{deadline:%Y-%m-%d %H:%M}" in out  # Eva's offer deadline, in Rotterdam time
    assert "550 5.1.1" in out and "secretariaat@bergveld.example" in out
    assert "Ruud Mulder" not in out  # waits inside Sanne's party


def test_status_names_the_time_zone_of_every_time(cli: Run, scenario: Scenario) -> None:
    out = cli("status", scenario.event.slug).stdout
    assert "starts 2023-02-01 13:00 CET" in out and "times in Europe/Amsterdam" in out
    for header in ("since", "answer before", "received"):
        assert f"{header} (Europe/Amsterdam)" in out
    # Every column of the open offers has a name (the overdue mark sits with the deadline).
    offers = out[out.index("Open offers") : out.index("Review queue")]
    header_line = next(line for line in offers.splitlines() if "name" in line)
    assert [cell.strip() for cell in header_line.strip("┃ ").split("┃")] == [
        "name",
        "organisation",
        "party",
        "answer before (Europe/Amsterdam)",
    ]


def test_status_json_is_the_report(cli: Run, db: Session, scenario: Scenario) -> None:
    result = cli("status", scenario.event.slug, "--json")
    assert result.exit_code == 0, result.output
    expected = json.loads(json.dumps(status_report(db, scenario.event).to_json_dict()))
    assert json.loads(result.stdout) == expected
    assert expected["seats_left"] == 1


def test_unknown_event_is_one_clear_line(cli: Run, scenario: Scenario) -> None:
    message = one_line_error(cli("status", "bestaat-niet"))
    assert "no event 'bestaat-niet'" in message and scenario.event.slug in message


def test_review_list_and_show(cli: Run, scenario: Scenario) -> None:
    listing = cli("review", scenario.event.slug)
    assert listing.exit_code == 0, listing.output
    assert "Mevrouw Vos komt graag, deelsessie wonen, met Karel Appel." in listing.stdout
    assert "accept · session wonen · +1: Karel Appel <k.appel@bergveld.example>" in listing.stdout
    assert "sent by secretariaat@bergveld.example, not by the invitee" in listing.stdout
    assert "Is er parkeergelegenheid?" in listing.stdout  # unmatched: shown with every event
    assert "2 messages waiting" in listing.stdout
    assert "3 messages waiting" in cli("review", "list").stdout  # all events
    assert "2023-01-09 15:00 CET" in listing.stdout  # received, in the event's time

    shown = cli("review", "show", str(scenario.review_ids[0]))
    assert shown.exit_code == 0, shown.output
    assert "From: secretariaat@bergveld.example" in " ".join(shown.stdout.split())
    assert "Mevrouw Vos komt graag" in shown.stdout
    assert "Op 9 jan. 2023 schreef" not in shown.stdout
    assert "no inbound message with id 424242" in one_line_error(cli("review", "show", "424242"))


def test_review_resolve_applies_the_rules(cli: Run, db: Session, scenario: Scenario) -> None:
    pytest.importorskip("workflows.inbound", reason="resolve_review not written yet")
    secretary, unmatched = scenario.review_ids
    nina = scenario.by_email["n.vos@bergveld.example"]
    result = cli(
        "review",
        "resolve",
        str(secretary),
        "--as",
        "accept",
        "--session",
        "onderwijs",
        "--no-companions",
        "--participant",
        "n.vos@bergveld.example",
        "--by",
        "marieke",
        "--note",
        "secretaris bevestigd per telefoon",
    )
    assert result.exit_code == 0, result.output
    assert f"message #{secretary} resolved as accept by organiser:marieke" in result.stdout
    # One seat is free and people are waiting: it is offered to the first who fits it, and
    # Nina, new, waits last.
    assert status_of(db, nina) is PS.WAITLISTED
    refreshed = db.get(Participant, nina.id)
    assert refreshed is not None and refreshed.session is not None
    assert refreshed.session.key == "onderwijs"
    waiting = [w.email for w in status_report(db, scenario.event).waitlist]
    offered = [e for e in scenario.waiting_order if e not in waiting]
    assert len(offered) == 1 and status_of(db, scenario.by_email[offered[0]]) is PS.OFFERED
    assert waiting == [*(e for e in scenario.waiting_order if e not in offered), nina.person.email]
    message = db.get(InboundMessage, secretary)
    assert message is not None and message.status is InboundStatus.PROCESSED
    assert "secretaris bevestigd per telefoon" in (message.resolution or "")
    audited = db.scalars(
        select(AuditEntry).where(
            AuditEntry.machine == "participant",
            AuditEntry.entity_id == nina.id,
            AuditEntry.new_status == "waitlisted",
        )
    ).one()
    assert (audited.actor, audited.inbound_message_id) == ("organiser:marieke", secretary)

    before = status_report(db, scenario.event).counts
    ignored = cli("review", "resolve", str(unmatched), "--as", "ignore", "--by", "marieke")
    assert ignored.exit_code == 0, ignored.output
    db.expire_all()
    assert status_report(db, scenario.event).counts == before
    assert "not waiting for review" in one_line_error(
        cli("review", "resolve", str(unmatched), "--as", "ignore")
    )


def test_review_resolve_refuses_a_session_the_event_lacks(
    cli: Run, db: Session, scenario: Scenario
) -> None:
    """Like `people EVENT --session`, and before anything changes (the rules would drop it)."""
    secretary = scenario.review_ids[0]
    nina = scenario.by_email["n.vos@bergveld.example"]
    audit_rows = len(db.scalars(select(AuditEntry.id)).all())
    like_people = one_line_error(cli("people", scenario.event.slug, "--session", "koken"))
    for extra in ((), ("--participant", "n.vos@bergveld.example")):
        args = ("review", "resolve", str(secretary), "--as", "accept", "--session", "koken")
        message = one_line_error(cli(*args, *extra))
        assert message == like_people
        assert "(sessions: onderwijs, veiligheid, werk, wonen)" in message
    db.expire_all()
    assert status_of(db, nina) is PS.INVITED
    assert db.get_one(InboundMessage, secretary).status is InboundStatus.REVIEW
    assert len(db.scalars(select(AuditEntry.id)).all()) == audit_rows

    result = cli(
        "review",
        "resolve",
        str(secretary),
        "--as",
        "accept",
        "--session",
        " Wonen",  # as `people --session` takes it
        "--participant",
        "n.vos@bergveld.example",
        "--no-companions",
    )
    assert result.exit_code == 0, result.output
    db.expire_all()
    refreshed = db.get_one(Participant, nina.id)
    assert refreshed.session is not None and refreshed.session.key == "wonen"


def test_review_resolve_checks_the_session_of_a_message_matched_only_then(
    cli: Run, db: Session, scenario: Scenario
) -> None:
    """A message of no event, matched when resolved: refused, and rolled back entirely."""
    wim = scenario.by_email["w.kok@bergveld.example"]
    message = _review(
        db,
        event=None,
        sender="w.kok@bergveld.example",
        subject="Re: uitnodiging",
        understanding=Understanding(kind=ReplyKind.ACCEPT, reply_text="Ik kom."),
        why="no invitation matches this message",
        invitation=db.get(Invitation, wim.invitation_id),
    )
    message_id = message.id
    db.commit()
    args = ("review", "resolve", str(message_id), "--as", "accept")
    assert "no session 'koken'" in one_line_error(cli(*args, "--session", "koken"))
    db.expire_all()
    assert db.get_one(InboundMessage, message_id).status is InboundStatus.REVIEW
    assert status_of(db, wim) is PS.INVITED
    result = cli(*args, "--session", "Werk ")
    assert result.exit_code == 0, result.output
    db.expire_all()
    refreshed = db.get_one(Participant, wim.id)
    assert refreshed.session is not None and refreshed.session.key == "werk"


def test_review_resolve_names_the_participant_option(cli: Run, scenario: Scenario) -> None:
    unmatched = scenario.review_ids[1]
    message = one_line_error(cli("review", "resolve", str(unmatched), "--as", "accept"))
    assert "matches no invitation" in message
    assert "--participant" in message and "participant_id" not in message


def test_people_and_status_agree_after_a_maybe_became_a_yes(
    cli: Run, db: Session, scenario: Scenario
) -> None:
    wim = scenario.by_email["w.kok@bergveld.example"]
    assert "invited (maybe)" in cli("people", scenario.event.slug).stdout
    message = _review(
        db,
        event=scenario.event,
        sender="w.kok@bergveld.example",
        subject="Re: uitnodiging",
        understanding=Understanding(kind=ReplyKind.UNCLEAR, reply_text="Toch wel."),
        why="unclear",
        invitation=db.get(Invitation, wim.invitation_id),
    )
    message_id = message.id
    db.commit()
    resolved = cli("review", "resolve", str(message_id), "--as", "accept")
    assert resolved.exit_code == 0, resolved.output
    listing = cli("people", scenario.event.slug).stdout
    wim_line = next(line for line in listing.splitlines() if "Wim Kok" in line)
    assert "(maybe)" not in wim_line and status_of(db, wim).value in wim_line
    assert json.loads(cli("status", scenario.event.slug, "--json").stdout)["tentative"] == 0


def test_people_keeps_addresses_whole_on_a_narrow_terminal(db: Session, scenario: Scenario) -> None:
    from rich.console import Console

    rows = people(db, scenario.event)
    out = Console(width=110, record=True, highlight=False)
    out.print(people_table("People", rows))
    text = out.export_text()
    assert max(len(line) for line in text.splitlines()) <= 110
    for row in rows:
        if row.email:
            assert row.email in text, row.email
        assert row.status in text


def test_counts_read_as_english(cli: Run, scenario: Scenario) -> None:
    assert [plural(n, "entry", "entries") for n in (0, 1, 2)] == [
        "0 entries",
        "1 entry",
        "2 entries",
    ]
    footer = cli("audit", scenario.event.slug, "--limit", "1").stdout.splitlines()[-1]
    assert footer.startswith("1 entry;")  # then how many outbox claim rows are hidden
    one = cli("people", scenario.event.slug, "--session", "werk").stdout
    assert one.rstrip().endswith("1 person")


def test_review_resolve_rejects_a_bad_companion(cli: Run, scenario: Scenario) -> None:
    args = ("review", "resolve", str(scenario.review_ids[0]), "--as", "accept")
    assert "no valid email address" in one_line_error(cli(*args, "--companion", "Karel <kapot>"))
    assert "give a name too" in one_line_error(cli(*args, "--companion", "k@bergveld.example"))


def test_people_filtered_by_status_and_session(cli: Run, scenario: Scenario) -> None:
    result = cli("people", scenario.event.slug, "--status", "registered", "--session", "wonen")
    assert result.exit_code == 0, result.output
    assert "Lotte El Amrani" in result.stdout and "Karin Smit" in result.stdout
    assert "Piet de Vries" not in result.stdout  # wonen, but no_show
    assert "vegetarisch" in result.stdout
    assert "2 people" in result.stdout
    message = one_line_error(cli("people", scenario.event.slug, "--session", "koken"))
    assert "no session 'koken'" in message


def test_export_csv_round_trips(cli: Run, db: Session, scenario: Scenario, tmp_path: Path) -> None:
    target = tmp_path / "badges.csv"
    result = cli("export", scenario.event.slug, "--format", "csv", "--output", str(target))
    assert result.exit_code == 0, result.output
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))
    registered = people(db, scenario.event, statuses=[PS.REGISTERED])
    assert rows[0] == list(EXPORT_HEADERS["nl"])
    assert rows[1:] == export_records(registered, "nl")
    assert {r[4] for r in rows[1:]} == {"aangemeld"}  # Dutch headers, Dutch values
    lotte = next(r for r in rows if r[0] == "Lotte El Amrani")
    assert lotte[5] == "Wonen: herstructurering en leefbaarheid"
    assert lotte[6] == "vegetarisch" and lotte[8] == "Karin Smit"
    karin = next(r for r in rows if r[0] == "Karin Smit")
    assert karin[7] == "Lotte El Amrani"


def test_export_default_file_name_and_statuses(
    cli: Run, scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("export", scenario.event.slug, "--status", "registered", "--status", "offered")
    assert result.exit_code == 0, result.output
    expected = tmp_path / f"{scenario.event.slug}-registered+offered-{START.date()}.csv"
    assert expected.exists(), list(tmp_path.iterdir())
    rows = list(csv.reader(io.StringIO(expected.read_text("utf-8-sig")), delimiter=";"))
    assert {r[4] for r in rows[1:]} == {"aangemeld", "plaats aangeboden"}
    assert "wrote 5 people (registered+offered) as csv" in result.stdout


def test_export_xlsx_round_trips(cli: Run, db: Session, scenario: Scenario, tmp_path: Path) -> None:
    target = tmp_path / "badges.xlsx"
    result = cli("export", scenario.event.slug, "--format", "xlsx", "-o", str(target))
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(target).active
    values = [["" if c is None else c for c in row] for row in sheet.iter_rows(values_only=True)]
    records = export_records(people(db, scenario.event, statuses=[PS.REGISTERED]), "nl")
    assert values == [list(EXPORT_HEADERS["nl"]), *records]
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.auto_filter.ref == f"A1:I{len(records) + 1}"
    assert sheet.freeze_panes == "A2"
    longest_name = max(len(r[0]) for r in records)
    assert sheet.column_dimensions["A"].width >= longest_name


def test_export_format_follows_the_file_name(cli: Run, scenario: Scenario, tmp_path: Path) -> None:
    target = tmp_path / "badges.xlsx"
    result = cli("export", scenario.event.slug, "-o", str(target))
    assert result.exit_code == 0, result.output
    assert "as xlsx" in result.stdout
    assert openpyxl.load_workbook(target).active["A1"].value == "Naam"
    plain = tmp_path / "badges.txt"  # no format in the name: the default, CSV
    assert cli("export", scenario.event.slug, "-o", str(plain)).exit_code == 0
    assert plain.read_text("utf-8-sig").startswith("Naam;")

    wrong = tmp_path / "out.csv"
    message = one_line_error(
        cli("export", scenario.event.slug, "-o", str(wrong), "--format", "xlsx")
    )
    assert "--format xlsx contradicts --output" in message and "out.xlsx" in message
    assert not wrong.exists()


def test_export_values_follow_the_event_language(
    cli: Run, db: Session, scenario: Scenario, tmp_path: Path
) -> None:
    # Ingrid cancelled; as Lotte's companion she is listed with her status.
    ingrid = scenario.by_email["i.bos@dijkstad.example"]
    ingrid.companion_of_id = scenario.by_email["l.elamrani@zwaanshoek.example"].id
    db.commit()

    def lotte(language: str) -> list[str]:
        scenario.event.language = language
        db.commit()
        target = tmp_path / f"{language}.csv"
        assert cli("export", scenario.event.slug, "-o", str(target)).exit_code == 0
        text = target.read_text("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
        assert rows[0] == list(EXPORT_HEADERS[language])
        return next(r for r in rows if r[0] == "Lotte El Amrani")

    assert lotte("nl")[4] == "aangemeld" and lotte("nl")[8] == "Karin Smit, Ingrid Bos (afgemeld)"
    assert lotte("en")[4] == "registered" and lotte("en")[8] == "Karin Smit, Ingrid Bos (cancelled)"


def test_export_help_states_the_defaults() -> None:
    result = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "250"})
    text = " ".join(result.stdout.split())
    assert "[default: registered only;" in text
    assert "By default only `registered` people are in it (not `offered` ones)" in text
    assert "[default: as the --output file name says (.csv, .xlsx), else csv]" in text


def test_export_never_turns_names_into_formulas(
    cli: Run, db: Session, scenario: Scenario, tmp_path: Path
) -> None:
    jan = scenario.by_email["j.meijer@bergveld.example"]
    jan.person.name = '=HYPERLINK("http://evil.example","Jan")'
    db.commit()
    cli("export", scenario.event.slug, "-o", str(tmp_path / "x.csv"))
    cli("export", scenario.event.slug, "--format", "xlsx", "-o", str(tmp_path / "x.xlsx"))
    text = (tmp_path / "x.csv").read_text("utf-8-sig")
    assert "'=HYPERLINK(" in text
    sheet = openpyxl.load_workbook(tmp_path / "x.xlsx").active
    cell = next(c for c in sheet["A"] if str(c.value).startswith("=HYPERLINK"))
    assert cell.data_type == "s"


def test_attendance_from_a_file(
    cli: Run, db: Session, scenario: Scenario, traveller: time_machine.Traveller, tmp_path: Path
) -> None:
    door = tmp_path / "aanwezig.txt"
    door.write_text("l.elamrani@zwaanshoek.example\nFemke Visser <f.visser@oosterdijk.example>\n")
    too_early = one_line_error(cli("attendance", scenario.event.slug, "--present", str(door)))
    assert "has not started yet" in too_early

    traveller.move_to(AFTER_EVENT)
    result = cli("attendance", scenario.event.slug, "--present", str(door), "--by", "marieke")
    assert result.exit_code == 0, result.output
    assert "2 marked attended, 2 marked no_show" in result.stdout
    by_email = scenario.by_email
    assert status_of(db, by_email["l.elamrani@zwaanshoek.example"]) is PS.ATTENDED
    assert status_of(db, by_email["f.visser@oosterdijk.example"]) is PS.ATTENDED
    assert status_of(db, by_email["k.smit@zwaanshoek.example"]) is PS.NO_SHOW
    assert status_of(db, by_email["j.meijer@bergveld.example"]) is PS.NO_SHOW

    again = cli("attendance", scenario.event.slug, "--present", str(door))
    assert "0 marked attended, 0 marked no_show, 2 already right" in again.stdout


def test_attendance_problems_are_one_line_and_change_nothing(
    cli: Run, db: Session, scenario: Scenario, traveller: time_machine.Traveller
) -> None:
    traveller.move_to(AFTER_EVENT)
    before = status_report(db, scenario.event).counts
    message = one_line_error(
        cli(
            "attendance",
            scenario.event.slug,
            "--present-email",
            "l.elamrani@zwaanshoek.example",
            "--present-email",
            "onbekend@elders.example",
            "--present-email",
            "s.jansen@havenstad.example",
        )
    )
    assert "rejected, nothing marked (2 problems)" in message
    assert "--present-email #2: onbekend@elders.example is not a participant" in message
    assert "--present-email #3: s.jansen@havenstad.example is waitlisted" in message
    db.expire_all()
    assert status_report(db, scenario.event).counts == before
    bad_file = one_line_error(cli("attendance", scenario.event.slug, "--present", "/nonexistent"))
    assert "/nonexistent" in bad_file


def test_audit_times_are_in_the_events_zone(cli: Run, db: Session, scenario: Scenario) -> None:
    """The 'when' column and the UTC times the sender writes into its reasons alike."""
    sending = db.scalars(
        select(OutboundMessage).where(OutboundMessage.status == OutboundStatus.SENDING)
    ).one()
    transition(
        db,
        sending,
        OutboundStatus.PENDING,
        reason="temporary failure, retry at 2023-01-09 14:00:00Z: 451 4.7.1 try later",
    )
    db.commit()
    out = cli("audit", scenario.event.slug, "--limit", "1").stdout
    assert "when (Europe/Amsterdam)" in out
    newest = db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert f"{newest.at.astimezone(ZoneInfo('Europe/Amsterdam')):%Y-%m-%d %H:%M} " in out
    assert "retry at 2023-01-09 15:00 CET" in " ".join(out.split())
    assert "14:00:00Z" not in out


def test_audit_of_one_person(cli: Run, scenario: Scenario) -> None:
    result = cli("audit", scenario.event.slug, "--person", "e.smits@kerkdorp.example")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "invited → waitlisted" in out and "waitlisted → offered" in out
    assert out.index("invited → waitlisted") < out.index("waitlisted → offered")
    assert "4 entries" in out
    everything = cli("audit", scenario.event.slug, "--limit", "5")
    assert "5 entries" in everything.stdout


# --------------------------------------------------------------------------- help and usage


def help_text(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    "command",
    [("status",), ("people",), ("export",), ("attendance",), ("audit",), ("preview",)],
)
def test_usage_names_the_event_argument_event(command: tuple[str, ...]) -> None:
    usage = next(line for line in help_text(*command).splitlines() if "Usage:" in line)
    assert "{EVENT}" in usage and "event}" not in usage


def test_usage_of_the_other_arguments_is_upper_case_too() -> None:
    assert "[EVENT]" in help_text("review", "list")
    assert "{EMAIL}" in help_text("privacy", "forget")
    assert "{EMAIL}" in help_text("privacy", "export")
    assert "{EVENT} {KIND}" in help_text("preview")
    assert "{FILE}..." in help_text("classify")


def test_help_paragraphs_read_as_one_line() -> None:
    """rich keeps the line breaks of a docstring; each paragraph must be written on one line."""
    listing = help_text()
    preview_line = next(line for line in listing.splitlines() if " preview " in line)
    assert preview_line.rstrip(" │").endswith("sends nothing and changes nothing.")
    forget = help_text("privacy", "forget")
    assert "A registered seat stays taken: cancel first if they give it up" in forget


def test_preview_to_takes_an_invitee_of_the_event(cli: Run, scenario: Scenario) -> None:
    text = " ".join(help_text("preview").split())
    assert "The e-mail address of someone invited to EVENT" in text
    assert "Leave it out to render for a sample person" in text
    message = one_line_error(cli("preview", scenario.event.slug, "invitation", "--to", "a@b.nl"))
    assert f"nobody with that e-mail address is invited to {scenario.event.slug}" in message
    assert "leave it out to render for a sample person" in message
    other = one_line_error(
        cli("preview", scenario.other_event.slug, "invitation", "--to", "w.kok@bergveld.example")
    )
    assert "is not invited to ander-evenement" in other and "leave it out" in other


def test_classify_event_is_a_toml_path(tmp_path: Path) -> None:
    text = " ".join(help_text("classify").split())
    assert "Path of the event's TOML file, e.g. events/my-event.toml (not its slug" in text
    eml = tmp_path / "reply.eml"
    eml.write_bytes(b"From: a@b.example\r\nSubject: ja\r\n\r\nIk kom graag.\r\n")
    result = runner.invoke(app, ["classify", "--event", "leren-van-rotterdam-zuid", str(eml)])
    assert result.exit_code == 2
    assert "takes the path of the event's TOML file" in result.stderr


def test_outbox_list_shows_times_in_the_event_zone(
    cli: Run, scenario: Scenario, db: Session
) -> None:
    rows = db.scalars(
        select(OutboundMessage).where(OutboundMessage.event_id == scenario.event.id)
    ).all()
    zone = ZoneInfo("Europe/Amsterdam")
    result = cli("outbox", "list", scenario.event.slug)
    assert result.exit_code == 0, result.output
    assert "times in Europe/Amsterdam" in result.stdout
    for row in rows:
        when = row.sent_at if row.status is OutboundStatus.SENT else row.next_attempt_at
        if when is not None:
            assert f"{when.astimezone(zone):%Y-%m-%d %H:%M}" in result.stdout
