"""Importing an invitee list (CSV) for an event: all or nothing, every problem by line number."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Event, Invitation, InvitationStatus, Participant, ParticipantStatus, Person
from workflows.errors import RsvpError
from workflows.tokens import new_token
from workflows.transitions import record_creation

# Accepted header spellings (lowercased, spaces/underscores ignored) → canonical column.
HEADER_ALIASES = {
    "naam": "name",
    "name": "name",
    "volledigenaam": "name",
    "email": "email",
    "e-mail": "email",
    "emailadres": "email",
    "e-mailadres": "email",
    "mail": "email",
    "organisatie": "organisation",
    "organisation": "organisation",
    "organization": "organisation",
    "gemeente": "organisation",
    "functie": "role",
    "role": "role",
    "rol": "role",
    "portefeuille": "role",
    "taal": "language",
    "language": "language",
    "batch": "batch",
    "groep": "batch",
}
REQUIRED = ("name", "email")
LANGUAGE_ALIASES = {
    "": None,
    "nl": "nl",
    "nederlands": "nl",
    "dutch": "nl",
    "en": "en",
    "engels": "en",
    "english": "en",
}
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class InviteeImportError(RsvpError):
    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  {p}" for p in self.problems)
        count = f"{len(self.problems)} problem{'' if len(self.problems) == 1 else 's'}"
        super().__init__(f"{source}: rejected, nothing imported ({count}):\n{listing}")


@dataclass(frozen=True)
class InviteeRow:
    line: int
    name: str
    email: str
    organisation: str
    role: str
    language: str | None
    batch: str


@dataclass(frozen=True)
class ImportResult:
    rows: int
    new_people: int
    updated_people: int
    new_invitations: int
    already_invited: int


def parse_invitee_csv(data: bytes, source: str = "<csv>") -> list[InviteeRow]:
    """Parse and validate the whole file; raise InviteeImportError listing every problem."""
    problems: list[str] = []
    text = _decode(data, source)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InviteeImportError(source, ["line 1: the file is empty; expected a header row"])
    delimiter = _sniff_delimiter(lines[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise InviteeImportError(source, [f"line 1: {exc}"]) from exc
    columns = _map_header(header, problems)
    if problems:
        raise InviteeImportError(source, problems)

    rows: list[InviteeRow] = []
    first_line_of: dict[str, int] = {}
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # Excel leaves blank lines at the end
            if len(record) > len(header) and any(c.strip() for c in record[len(header) :]):
                problems.append(
                    f"line {line}: {len(record)} fields but the header has {len(header)} "
                    f"(is a value containing '{delimiter}' missing its quotes?)"
                )
                continue
            row = _row(record, columns, line, problems)
            if row is None:
                continue
            if row.email in first_line_of:
                first = first_line_of[row.email]
                problems.append(f"line {line}: duplicate email {row.email} (also on line {first})")
                continue
            first_line_of[row.email] = line
            rows.append(row)
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: {exc}")
    if problems:
        raise InviteeImportError(source, problems)
    if not rows:
        raise InviteeImportError(source, ["the file has a header but no invitees"])
    return rows


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        bad_lines = []
        for number, raw_line in enumerate(data.split(b"\n"), start=1):
            try:
                raw_line.decode("utf-8")
            except UnicodeDecodeError:
                bad_lines.append(number)
        shown = ", ".join(str(n) for n in bad_lines[:10]) + (", …" if len(bad_lines) > 10 else "")
        where = f"line {shown}" if len(bad_lines) == 1 else f"lines {shown}"
        raise InviteeImportError(
            source,
            [f"line {n}: not UTF-8 text" for n in bad_lines[:10]]
            + [
                f"the file is not UTF-8 ({where}); in Excel choose "
                "'Save as' → 'CSV UTF-8 (comma delimited)'"
            ],
        ) from None


def _sniff_delimiter(header_line: str) -> str:
    # Dutch Excel uses ';' because ',' is the decimal separator.
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _map_header(header: list[str], problems: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = re.sub(r"[\s_]", "", cell.strip().lower())
        canonical = HEADER_ALIASES.get(key)
        if canonical is None:
            if key:
                problems.append(
                    f"line 1: unknown column {cell.strip()!r} "
                    f"(known: naam/name, email/e-mail, organisatie/organisation, functie/role, "
                    "taal/language, batch)"
                )
            continue
        if canonical in columns:
            problems.append(f"line 1: column {canonical!r} appears twice")
        columns[canonical] = index
    for required in REQUIRED:
        if required not in columns:
            problems.append(
                f"line 1: missing column {required!r} ({'/'.join(_spellings(required))})"
            )
    return columns


def _spellings(canonical: str) -> list[str]:
    return [k for k, v in HEADER_ALIASES.items() if v == canonical][:3]


def _row(
    record: list[str], columns: dict[str, int], line: int, problems: list[str]
) -> InviteeRow | None:
    def cell(name: str) -> str:
        index = columns.get(name)
        return record[index].strip() if index is not None and index < len(record) else ""

    before = len(problems)
    name = cell("name")
    if not name:
        problems.append(f"line {line}: name is empty")
    elif any(ch in name for ch in "\r\n<>"):
        problems.append(f"line {line}: name contains a line break or angle brackets")
    raw_email = cell("email")
    email = parseaddr(raw_email)[1].lower() if raw_email else ""
    if not raw_email:
        problems.append(f"line {line}: email is empty")
    elif not _EMAIL_RE.match(email):
        problems.append(f"line {line}: invalid email address {raw_email!r}")
    language_text = cell("language").lower()
    if language_text not in LANGUAGE_ALIASES:
        problems.append(f"line {line}: unknown language {cell('language')!r} (use nl or en)")
    if len(problems) > before:
        return None
    return InviteeRow(
        line=line,
        name=name,
        email=email,
        organisation=cell("organisation"),
        role=cell("role"),
        language=LANGUAGE_ALIASES[language_text],
        batch=cell("batch"),
    )


def import_invitees(db: Session, event: Event, rows: Sequence[InviteeRow]) -> ImportResult:
    """Upsert people and create their invitations (status pending) in the caller's transaction.

    Re-importing the same list changes nothing but corrected details; nobody is invited twice.
    """
    emails = [r.email for r in rows]
    people = {p.email: p for p in db.scalars(select(Person).where(Person.email.in_(emails)))}
    invited = set(
        db.scalars(
            select(Invitation.person_id).where(
                Invitation.event_id == event.id,
                Invitation.person_id.in_([p.id for p in people.values()]),
            )
        )
    )
    new_people = updated = new_invitations = already = 0
    for row in rows:
        person = people.get(row.email)
        if person is None:
            person = Person(email=row.email)
            db.add(person)
            new_people += 1
        elif (person.name, person.organisation, person.role) != (
            row.name,
            row.organisation or person.organisation,
            row.role or person.role,
        ):
            updated += 1
        person.name = row.name
        person.organisation = row.organisation or person.organisation
        person.role = row.role or person.role
        person.language = row.language or person.language or event.language
        db.flush()
        if person.id in invited:
            already += 1
            continue
        add_invitation(db, event, person, batch=row.batch, reason=f"imported (line {row.line})")
        new_invitations += 1
    return ImportResult(len(rows), new_people, updated, new_invitations, already)


def add_invitation(
    db: Session,
    event: Event,
    person: Person,
    *,
    batch: str,
    reason: str,
    status: InvitationStatus = InvitationStatus.PENDING,
    inbound_message_id: int | None = None,
) -> tuple[Invitation, Participant]:
    """An invitation (with a fresh token) and the participant row it starts as `invited`."""
    invitation = Invitation(
        event_id=event.id, person_id=person.id, token=new_token(), batch=batch, status=status
    )
    db.add(invitation)
    db.flush()
    participant = Participant(
        event_id=event.id,
        person_id=person.id,
        invitation_id=invitation.id,
        status=ParticipantStatus.INVITED,
    )
    db.add(participant)
    record_creation(db, invitation, reason=reason, inbound_message_id=inbound_message_id)
    record_creation(db, participant, reason=reason, inbound_message_id=inbound_message_id)
    return invitation, participant
