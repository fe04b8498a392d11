"""Real phrasing the first version missed: companions, substitutes with surname particles,
unsubscribe wording, answers in the subject, List-Unsubscribe mailto requests and a PS."""

from __future__ import annotations

import re

import pytest

from tests.understand._common import REPO, sessions
from workflows.understand import strip_reply, understand
from workflows.understand import subject as subject_line
from workflows.understand.text import read_text
from workflows.understanding import ReplyKind

A, D, T, Q, U = (
    ReplyKind.ACCEPT,
    ReplyKind.DECLINE,
    ReplyKind.TENTATIVE,
    ReplyKind.QUESTION,
    ReplyKind.UNCLEAR,
)
TOKEN = "c" * 32


def _companions(text: str) -> list[tuple[str, str | None]]:
    return [(c.name, c.email) for c in read_text(text, sessions()).companions]


def test_the_users_own_example() -> None:
    for text in (
        "Ja, ik kom graag, deelsessie wonen, met mijn collega Karin Smit",
        "Ja, ik kom graag, deelsessie wonen, met mijn collega Karin Smit.",
    ):
        r = read_text(text, sessions())
        assert (r.kind, r.session) == (A, "wonen")
        assert _companions(text) == [("Karin Smit", None)]
    text = (
        "Ja, ik kom graag, deelsessie wonen, met mijn collega Karin Smit (k.smit@gemeente.example)"
    )
    assert _companions(text) == [("Karin Smit", "k.smit@gemeente.example")]


@pytest.mark.parametrize(
    ("text", "kind", "companions"),
    [
        (
            "Mijn collega Karin Smit (k.smit@gemeente.example) komt ook mee.",
            A,
            [("Karin Smit", "k.smit@gemeente.example")],
        ),
        ("Ja, ik kom. Mijn collega komt niet mee.", A, []),
        ("Ik kan niet. Mijn collega Karin Smit komt ook mee.", U, [("Karin Smit", None)]),
        ("Ja, ik kom graag met collega Karin.", A, [("Karin", None)]),
        ("Ja, ik kom samen met wethouder Anouk.", A, [("Anouk", None)]),
        ("Ja, ik kom graag met Karin Smit.", A, [("Karin Smit", None)]),
        # A first name alone, without a role before it, is not enough.
        ("Ja, ik kom graag met Karin.", A, []),
        ("Ik kom met de trein, deelsessie werk.", A, []),
        ("Ik kom samen met de Rotterdamse wethouder.", A, []),
        ("Ik kom met collega de Boer.", A, [("de Boer", None)]),
        ("Ja, met plezier. Met Kerstmis ben ik er niet maar 1 februari wel.", A, []),
        (
            "Ik kom graag met mijn collega's Karin Smit en Jan de Boer.",
            A,
            [("Karin Smit", None), ("Jan de Boer", None)],
        ),
        (
            "Wij komen met z'n tweeën: ik en wethouder Pieter Bakker (p.bakker@x.nl), beiden "
            "wonen.",
            A,
            [("Pieter Bakker", "p.bakker@x.nl")],
        ),
        (
            "I'd be happy to attend. My colleague John Smith will join me.",
            A,
            [("John Smith", None)],
        ),
    ],
)
def test_companions(text: str, kind: ReplyKind, companions: list[tuple[str, str | None]]) -> None:
    assert read_text(text, sessions()).kind is kind
    assert _companions(text) == companions


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("In mijn plaats komt Jan de Boer (j.deboer@gemeente.example)", "Jan de Boer"),
        ("Ik kan niet, in mijn plaats komt de heer Jan van der Berg.", "Jan van der Berg"),
        ("In mijn plaats komt mevrouw Fatima Yilmaz.", "Fatima Yilmaz"),
        (
            "Ik ben verhinderd; collega Mieke van der Laan neemt mijn plaats in.",
            "Mieke van der Laan",
        ),
        (
            "Wethouder Jansen is verhinderd. Collega Petra de Lange komt in zijn plaats.",
            "Petra de Lange",
        ),
        (
            "I'm afraid I can't make it, but my colleague Jane Doe (jane.doe@x.nl) would like "
            "to come instead.",
            "Jane Doe",
        ),
    ],
)
def test_substitute_keeps_surname_particles(text: str, name: str) -> None:
    r = read_text(text, sessions())
    assert r.kind is D
    assert r.substitute is not None and r.substitute.name == name


def test_nobody_in_my_place_is_no_substitute() -> None:
    r = read_text("In mijn plaats komt niemand, sorry.", sessions())
    assert r.substitute is None and r.kind is U


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Ik kom graag met collega De Vries.", "De Vries"),
        ("Ik kom graag met collega van der Berg.", "van der Berg"),
        ("Ik neem mijn collega Sanne van 't Hof mee.", "Sanne van 't Hof"),
        ("Ik neem mijn beleidsmedewerker Ahmed El Amrani mee.", "Ahmed El Amrani"),
        ("Ik kom samen met mevrouw J. van der Meer.", "J. van der Meer"),
        ("Ik kom met mijn collega Fleur ter Horst.", "Fleur ter Horst"),
    ],
)
def test_names_keep_particles(text: str, name: str) -> None:
    assert [n for n, _ in _companions(text)] == [name]


@pytest.mark.parametrize(
    ("text", "unsubscribe"),
    [
        ("Haal mij van de mailinglijst", True),
        ("Haal me alstublieft van uw verzendlijst.", True),
        ("Ik wil geen mails meer ontvangen", True),
        ("Ik wil geen uitnodigingen meer ontvangen.", True),
        ("graag uitschrijven", True),
        ("Please take me off your mailing list.", True),
        ("No more emails please.", True),
        ("Haal mij niet van de lijst!", False),
        ("Ik kom graag, zet mij op de lijst.", False),
        ("Ik moet mij helaas afmelden.", False),
    ],
)
def test_unsubscribe_wording(text: str, unsubscribe: bool) -> None:
    r = read_text(text, sessions())
    assert r.wants_unsubscribe is unsubscribe
    if unsubscribe:
        assert r.kind is U


@pytest.mark.parametrize(
    ("text", "kind", "session"),
    [
        (
            "Namens wethouder De Vries laat ik u weten dat zij graag komt, deelsessie werk",
            A,
            "werk",
        ),
        ("Namens wethouder De Vries laat ik u weten dat zij helaas niet komt.", D, None),
        ("Namens de burgemeester laat ik weten dat hij er niet bij is.", D, None),
        ("Namens wethouder Jansen vraag ik of zij ook later kan komen?", Q, None),
        ("ja graag, werk", A, "werk"),
        ("Ik schuif graag aan bij veiligheid", A, "veiligheid"),
        ("Count me in — housing session", A, "wonen"),
        ("Ja - is er parkeergelegenheid?", A, None),
        ("Nee - kan ik de presentaties later krijgen?", D, None),
        ("Helaas kan ik niet; mijn collega gaat wel mee.", U, None),
        ("Helaas, ik zit die dag in de gemeenteraad.", U, None),
    ],
)
def test_intent_and_session(text: str, kind: ReplyKind, session: str | None) -> None:
    r = read_text(text, sessions())
    assert (r.kind, r.session) == (kind, session)


def test_a_statement_before_a_dashed_question_still_counts() -> None:
    r = read_text("Yes, I'll come. I'm vegan - will there be a vegan lunch option?", sessions())
    assert (r.kind, r.dietary, r.has_question) == (A, "vegan", True)


# --- the subject ------------------------------------------------------------------------------

SUBJECT = "Uitnodiging: Leren van Rotterdam Zuid: wethouders in de wijk, 1 feb"


@pytest.mark.parametrize(
    ("subject", "words"),
    [
        ("Ja, ik kom", "Ja, ik kom"),
        ("Re: Ja, ik kom", "Ja, ik kom"),
        (f"RE: {SUBJECT} — ja", "ja"),
        (f"Antw: {SUBJECT} - Nee helaas", "Nee helaas"),
        (f"Re: {SUBJECT} [rsvp:{TOKEN}]", ""),
        (f"Re: {SUBJECT} [rsvp:{TOKEN}] ja graag, wonen", "ja graag, wonen"),
        (f"RE: RE: {SUBJECT}", ""),
        (f"Fwd: {SUBJECT}", ""),
        ("RE: Uw afmelding is verwerkt: Leren van Rotterdam Zuid", ""),
        ("Re: Komt u ook? Leren van Rotterdam Zuid op 1 feb", ""),
        ("Re: Invitation: Learning from Rotterdam Zuid, 1 Feb", ""),
        ("", ""),
    ],
)
def test_own_words_of_a_subject(subject: str, words: str) -> None:
    assert subject_line.own_words(subject) == words


def _subject_openings() -> list[tuple[str, str]]:
    """The literal start of every subject template (before the first "{{")."""
    out: list[tuple[str, str]] = []
    for path in sorted((REPO / "mail_templates").glob("*/*.subject.j2")):
        text = re.sub(r"{%.*?%}|{#.*?#}", "", path.read_text("utf-8"), flags=re.DOTALL)
        opening = text.split("{{")[0].split("{%")[0].strip()
        out.append((f"{path.parent.name}/{path.name}", opening))
    return out


@pytest.mark.parametrize(("template", "opening"), _subject_openings())
def test_every_subject_we_send_is_known(template: str, opening: str) -> None:
    """Keeps subject.py in step with mail_templates: a reply that only repeats one of our
    subjects ("Uw afmelding is verwerkt") must never be read as the sender's answer."""
    if not opening:  # e.g. the organiser notice starts with a variable
        pytest.skip(f"{template} has no fixed opening")
    assert subject_line.is_ours(f"{opening} Leren van Rotterdam Zuid"), template
    assert subject_line.own_words(f"Re: {opening} Leren van Rotterdam Zuid") == ""


def _mail(subject: str, body: str, extra: str = "") -> bytes:
    head = f"From: Jan <jan@zwolle.nl>\nTo: aanmelden+{TOKEN}@x.nl\nSubject: {subject}\n{extra}"
    return (head.strip() + "\nContent-Type: text/plain; charset=utf-8\n\n" + body).encode()


QUOTE = (
    f"\n\nOp wo 11 jan. 2023 om 09:02 schreef WijkWijzer:\n> Komt u? Ja of nee.\n> rsvp:{TOKEN}\n"
)


@pytest.mark.parametrize(
    ("subject", "body", "kind", "session"),
    [
        ("Ja, ik kom", "", A, None),
        ("Ja, ik kom", QUOTE, A, None),
        (f"RE: {SUBJECT} — ja", QUOTE, A, None),
        (f"RE: {SUBJECT} — nee, helaas", "", D, None),
        ("Ja graag, deelsessie werk", "Zie onderwerp.", A, "werk"),
        ("Ja, ik kom", "Helaas kan ik niet.", D, None),  # the body has an answer: it decides
        ("RE: Uw afmelding is verwerkt: Leren van Rotterdam Zuid", "", U, None),
        (f"Re: {SUBJECT} [rsvp:{TOKEN}]", QUOTE, U, None),
        ("Vraag", "Groet, Jan", U, None),
    ],
)
def test_answer_in_the_subject(
    subject: str, body: str, kind: ReplyKind, session: str | None
) -> None:
    u = understand(_mail(subject, body), sessions())
    assert (u.kind, u.session) == (kind, session), u.notes


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        ("This message was automatically generated by Gmail.", ""),
        ("unsubscribe", ""),
        ("", ""),
        ("This message was automatically generated by Gmail.", "Auto-Submitted: auto-generated"),
    ],
)
def test_list_unsubscribe_mailto(body: str, extra: str) -> None:
    u = understand(_mail("unsubscribe", body, extra), sessions())
    assert u.kind is U and u.wants_unsubscribe and not u.has_question
    assert u.token == TOKEN
    assert u.is_automatic is bool(extra)  # only what the headers say


def test_a_long_mail_titled_unsubscribe_is_read_as_text() -> None:
    body = "Ik kom graag, deelsessie werk. " * 3 + "Daarna wil ik graag uitschrijven."
    u = understand(_mail("unsubscribe", body), sessions())
    assert u.kind is A and u.session == "werk" and u.wants_unsubscribe


# --- stripping ---------------------------------------------------------------------------------


def test_postscript_below_the_signature_is_kept() -> None:
    reply = (
        "Bedankt!\n\nMet vriendelijke groet,\n\nJan Jansen\nWethouder Wonen en Werk\n\n"
        "PS Ik kom graag, deelsessie onderwijs.\nMijn collega komt ook mee.\n\n"
        "Op 11-01-2023 om 09:02 schreef WijkWijzer:\n> PS: nee\n> deelsessie werk"
    )
    assert (
        strip_reply(reply)
        == "Bedankt!\n\nIk kom graag, deelsessie onderwijs.\nMijn collega komt ook mee."
    )


@pytest.mark.parametrize("label", ["PS", "PS:", "P.S.", "Ps.", "NB:"])
def test_postscript_labels(label: str) -> None:
    assert (
        strip_reply(f"Ja.\n\nMvg,\nJan\n\n{label} vegetarisch graag") == "Ja.\n\nvegetarisch graag"
    )


def test_signature_without_postscript_still_cut() -> None:
    assert strip_reply("Ja.\n\nMvg,\nJan\nPsycholoog\nPlanning en Samenwerking") == "Ja."


@pytest.mark.parametrize(
    "attribution",
    [
        "Op 11-01-2023 om 09:02 schreef WijkWijzer namens BZK:",
        "Op wo 11 jan. 2023 om 09:02 schreef WijkWijzer <\naanmelden@x.nl>:",
        "On Wed, Jan 11, 2023 at 9:02 AM WijkWijzer <\naanmelden@x.nl> wrote:",
    ],
)
@pytest.mark.parametrize("gap", ["\n", "\n\n"])
def test_an_address_above_the_attribution_is_not_part_of_it(attribution: str, gap: str) -> None:
    own = "Ja, ik kom graag, met mijn collega Karin Smit (k.smit@gemeente.example)"
    reply = f"{own}{gap}{attribution}\n> Komt u? Ja of nee.\n> deelsessie werk"
    assert strip_reply(reply) == own


def test_wrapped_attribution_still_cut() -> None:
    reply = (
        "Nee.\n\nOp 11 jan. 2023 om 10:12 heeft WijkWijzer <a@b.nl> het\nvolgende geschreven:\n\n"
        "Komt u? Ja!"
    )
    assert strip_reply(reply) == "Nee."


def test_a_yes_taken_back_is_not_an_acceptance() -> None:
    """Seen in the demo: "Ja. Of nee, …" was read as accept; a human must look instead."""
    from workflows.event_config import load_event_config
    from workflows.understand import understand
    from workflows.understanding import ReplyKind

    sessions = load_event_config("events/leren-van-rotterdam-zuid.toml").sessions
    for text in (
        "Ja. Of nee, eigenlijk weet ik het nog niet. Mijn secretaresse neemt contact op.",
        "Ja, of nee: ik weet het nog niet.",
        "Yes. Or no, actually I don't know yet.",
    ):
        raw = (
            "From: A <a@gemeente.example>\r\nTo: aanmelden@wijkwijzer.example\r\n"
            "Subject: Re: Uitnodiging\r\nMessage-ID: <t@gemeente.example>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n"
        ).encode()
        assert understand(raw, sessions).kind is ReplyKind.UNCLEAR, text
