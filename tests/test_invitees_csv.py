"""Invitee CSV import: Excel quirks accepted, every problem reported by line, all or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AuditEntry, Invitation, Participant, ParticipantStatus, Person
from tests.conftest import INVITEES_CSV
from tests.factories import make_event
from workflows.invitees import InviteeImportError, import_invitees, parse_invitee_csv


def test_the_example_list_is_valid_and_realistic() -> None:
    rows = parse_invitee_csv(INVITEES_CSV.read_bytes(), str(INVITEES_CSV))
    assert 55 <= len(rows) <= 65
    assert all(r.email.split("@")[1].endswith(".example") for r in rows)
    assert {r.language for r in rows} == {"nl", "en"}
    assert all(r.role.startswith("Wethouder") for r in rows)


def test_excel_semicolons_bom_and_dutch_headers() -> None:
    data = (
        "\ufeffNaam;E-mail;Organisatie;Functie;Taal\r\n"
        "Jan Jansen;Jan@Zwaanshoek.example;Gemeente Zwaanshoek;Wethouder Wonen;NL\r\n"
        ";;;;\r\n"
    )
    rows = parse_invitee_csv(data.encode("utf-8"))
    assert len(rows) == 1
    assert rows[0].email == "jan@zwaanshoek.example"
    assert rows[0].organisation == "Gemeente Zwaanshoek"
    assert rows[0].language == "nl"


def test_english_headers_with_commas_and_quotes() -> None:
    data = (
        b"name,email,organisation,role,language,batch\n"
        b'"Smit, Karin",k.smit@a.example,Municipality A,Alderman,English,b1\n'
    )
    rows = parse_invitee_csv(data)
    assert (rows[0].name, rows[0].language, rows[0].batch) == ("Smit, Karin", "en", "b1")


def test_every_problem_is_listed_with_its_line() -> None:
    data = (
        b"naam;email;organisatie\n"
        b"Jan;jan@a.example;A\n"
        b"Piet;not-an-address;B\n"
        b";empty@a.example;C\n"
        b"Klaas;JAN@a.example;D\n"
        b"Kees;kees@a.example;E;extra\n"
    )
    with pytest.raises(InviteeImportError) as raised:
        parse_invitee_csv(data, "list.csv")
    problems = raised.value.problems
    assert any(p.startswith("line 3:") and "invalid email" in p for p in problems)
    assert any(p.startswith("line 4:") and "name is empty" in p for p in problems)
    assert any(p.startswith("line 5:") and "duplicate" in p and "line 2" in p for p in problems)
    assert any(p.startswith("line 6:") and "fields" in p for p in problems)
    assert str(raised.value).startswith("list.csv: rejected, nothing imported (4 problems)")


def test_missing_column_is_reported() -> None:
    with pytest.raises(InviteeImportError, match="missing column 'email'"):
        parse_invitee_csv(b"naam;organisatie\nJan;A\n")


def test_unknown_column_is_reported() -> None:
    with pytest.raises(InviteeImportError, match="unknown column 'telefoon'"):
        parse_invitee_csv(b"naam;email;telefoon\nJan;jan@a.example;06\n")


def test_wrong_encoding_is_reported_with_a_hint() -> None:
    data = "naam;email\nHélène Dubois;h@a.example\n".encode("cp1252")
    with pytest.raises(InviteeImportError) as raised:
        parse_invitee_csv(data)
    assert "line 2: not UTF-8 text" in raised.value.problems
    assert "CSV UTF-8" in str(raised.value)
    assert raised.value.problems[-1].startswith("the file is not UTF-8 (line 2);")
    assert str(raised.value).startswith("<csv>: rejected, nothing imported (2 problems):\n")


def test_lines_not_in_utf8_are_counted_in_words() -> None:
    bad = "Hélène;h{}@a.example\n".encode("cp1252")
    data = b"naam;email\n" + b"".join(bad.replace(b"{}", str(n).encode()) for n in range(12))
    with pytest.raises(InviteeImportError) as raised:
        parse_invitee_csv(data)
    assert raised.value.problems[-1].startswith(
        "the file is not UTF-8 (lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, …);"
    )


def test_one_problem_is_one_problem() -> None:
    with pytest.raises(InviteeImportError) as raised:
        parse_invitee_csv(b"naam;email\nJan;not-an-address\n", "list.csv")
    assert str(raised.value) == (
        "list.csv: rejected, nothing imported (1 problem):\n"
        "  line 2: invalid email address 'not-an-address'"
    )


def test_unknown_language_and_empty_file() -> None:
    with pytest.raises(InviteeImportError, match="line 2: unknown language 'fr'"):
        parse_invitee_csv(b"naam,email,taal\nJan,jan@a.example,fr\n")
    with pytest.raises(InviteeImportError, match="empty"):
        parse_invitee_csv(b"")
    with pytest.raises(InviteeImportError, match="no invitees"):
        parse_invitee_csv(b"naam,email\n")


def test_import_creates_invitations_once(db: Session) -> None:
    event = make_event(db)
    rows = parse_invitee_csv(INVITEES_CSV.read_bytes())
    first = import_invitees(db, event, rows)
    db.commit()
    assert first.new_invitations == len(rows) == first.new_people
    second = import_invitees(db, event, rows)
    db.commit()
    assert (second.new_invitations, second.already_invited) == (0, len(rows))
    assert db.scalar(select(func.count()).select_from(Invitation)) == len(rows)
    statuses = set(db.scalars(select(Participant.status)))
    assert statuses == {ParticipantStatus.INVITED}
    tokens = list(db.scalars(select(Invitation.token)))
    assert len(set(tokens)) == len(tokens) and all(len(t) == 32 for t in tokens)
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == 2 * len(rows)


def test_reimport_updates_details_without_reinviting(db: Session) -> None:
    event = make_event(db)
    import_invitees(
        db, event, parse_invitee_csv(b"naam;email;functie\nJan;jan@a.example;Wethouder\n")
    )
    result = import_invitees(
        db,
        event,
        parse_invitee_csv(b"naam;email;functie\nJan de Boer;jan@a.example;Wethouder Wonen\n"),
    )
    db.commit()
    person = db.scalar(select(Person).where(Person.email == "jan@a.example"))
    assert person is not None and (person.name, person.role) == ("Jan de Boer", "Wethouder Wonen")
    assert (result.updated_people, result.new_invitations) == (1, 0)
