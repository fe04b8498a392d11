"""Rules on small inputs: intent wording, quote stripping, headers, and never raising."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.understand._common import sessions
from workflows.understand import strip_reply, understand
from workflows.understand.language import detect_language
from workflows.understand.text import read_text
from workflows.understanding import ReplyKind

A, D, T, Q, U = (
    ReplyKind.ACCEPT,
    ReplyKind.DECLINE,
    ReplyKind.TENTATIVE,
    ReplyKind.QUESTION,
    ReplyKind.UNCLEAR,
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Ja", A),
        ("ja hoor, ik ben erbij", A),
        ("Graag! Deelsessie wonen.", A),
        ("Ik kom graag, maar kan niet blijven voor de borrel.", A),
        ("Ik kom niet alleen maar met een collega.", A),
        ("Ik neem mijn collega Anne Bakker mee.", A),
        ("Nee", D),
        ("Ja, helaas kan ik niet.", D),
        ("Helaas kan ik niet, misschien een volgende keer.", D),
        ("Ik had graag willen komen, maar ik ben helaas verhinderd.", D),
        ("Ik zal er helaas niet bij zijn.", D),
        ("Dat past helaas niet in mijn agenda.", D),
        ("I would love to come but unfortunately I can't make it.", D),
        ("I'm afraid I won't be able to attend.", D),
        ("Ik kom onder voorbehoud.", T),
        ("Misschien, ik laat het nog weten.", T),
        ("I might come, tentatively.", T),
        ("Is er parkeergelegenheid?", Q),
        ("Kan ik ook komen als ik pas om 14:00 binnen ben?", Q),
        ("Ja, ik kom graag... nee ik kan niet.", U),
        ("Nee, ik kom graag.", U),
        ("Ik kom waarschijnlijk niet.", U),
        ("Yes, I can't come.", U),
        ("Bedankt voor de uitnodiging.", U),
        ("", U),
        ("Graag uitschrijven.", U),
        ("Ik kom graag; collega De Vries komt namens mij.", U),
        ("Ik kijk even of ik kan komen.", U),
        ("Ik heb geen idee of ik kan komen.", U),
        ("Als het lukt kom ik graag.", T),
        ("Namens wethouder Bakker meld ik haar aan voor wonen.", A),
        ("De wethouder komt helaas niet.", D),
        ("Wethouder Bos komt in mijn plaats.", D),
        ("Ik ben 1 februari helaas niet beschikbaar.", D),
    ],
)
def test_intent(text: str, kind: ReplyKind) -> None:
    assert read_text(text, sessions()).kind is kind


@pytest.mark.parametrize(
    ("text", "session"),
    [
        ("Ja, deelsessie wonen", "wonen"),
        ("Ja, liefst wonen, anders onderwijs", "wonen"),
        ("Ik kom, sessie veiligheit", "veiligheid"),
        ("Ik kom, graag woonen", "wonen"),
        ("Ik kom, graag onderwys", "onderwijs"),
        ("Ik kom graag (werk en inkomen)", "werk"),
        ("Yes, the housing session please", "wonen"),
        ("Ik kom, maar moet om vier uur weer aan het werk", None),
        ("Ja ik kom, het werk roept daarna weer", None),
        ("Ik kom, geen voorkeur", None),
    ],
)
def test_session(text: str, session: str | None) -> None:
    assert read_text(text, sessions()).session == session


def test_substitute_is_a_decline_with_the_substitute() -> None:
    r = read_text("Ik kan niet, maar collega Jansen komt in mijn plaats.", sessions())
    assert r.kind is D
    assert r.substitute is not None and r.substitute.name == "Jansen"
    assert r.companions == ()


def test_companion_with_email_and_own_session() -> None:
    r = read_text(
        "Ik kom graag met mijn collega Piet de Boer (p.deboer@gemeente.nl), hij wil graag naar "
        "werk. Zelf kies ik onderwijs.",
        sessions(),
    )
    assert r.kind is A and r.session == "onderwijs"
    assert [(c.name, c.email, c.session) for c in r.companions] == [
        ("Piet de Boer", "p.deboer@gemeente.nl", "werk")
    ]


@pytest.mark.parametrize(
    ("text", "dietary"),
    [
        ("Ik ben vegetarisch", "vegetarisch"),
        ("Ik ben niet vegetarisch", None),
        ("Geen dieetwensen", None),
        ("Ik eet geen varkensvlees", "geen varkensvlees"),
        ("I'm allergic to nuts", "allergic to nuts"),
    ],
)
def test_dietary(text: str, dietary: str | None) -> None:
    assert read_text(text, sessions()).dietary == dietary


def test_cancellation_and_unsubscribe_are_distinct() -> None:
    cancel = read_text("Ik moet mij helaas afmelden.", sessions())
    assert cancel.mentions_cancellation and not cancel.wants_unsubscribe and cancel.kind is D
    unsub = read_text("Wilt u mij afmelden voor deze mailings?", sessions())
    assert unsub.wants_unsubscribe and not unsub.mentions_cancellation


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Ja", "nl"),
        ("Yes", "en"),
        ("", "nl"),
        ("Ik kom graag naar de bijeenkomst in Rotterdam", "nl"),
        ("Thank you, I will attend the meeting in Rotterdam", "en"),
    ],
)
def test_language(text: str, lang: str) -> None:
    assert detect_language(text, "nl") == lang


QUOTE = "> Komt u? Antwoord met ja of nee.\n> deelsessie wonen\n> rsvp:" + "a" * 32


@pytest.mark.parametrize(
    "reply",
    [
        f"Nee.\n\nOp wo 11 jan. 2023 om 10:12 schreef WijkWijzer <a@b.nl>:\n\n{QUOTE}",
        f"Nee.\n\nOn Wed, Jan 11, 2023 at 10:12 AM WijkWijzer <a@b.nl> wrote:\n{QUOTE}",
        "Nee.\n\nOp 11 jan. 2023 om 10:12 heeft WijkWijzer <a@b.nl> het volgende "
        f"geschreven:\n\n{QUOTE}",
        "Nee.\n\nVan: WijkWijzer <a@b.nl>\nVerzonden: woensdag 11 januari 2023 10:12\nAan: x\n"
        "Onderwerp: Uitnodiging\n\nKomt u? Ja of nee; deelsessie wonen",
        "Nee.\n\n-----Oorspronkelijk bericht-----\nVan: x\nKomt u? ja/nee",
        "Nee.\n\nMet vriendelijke groet,\n\nJan\nWethouder Wonen en Werk",
        "Nee.\n\nMvg,\nJan",
        "Nee.\n\nVerstuurd vanaf mijn iPhone",
        "Nee.\n\nDit bericht kan informatie bevatten die niet voor u is bestemd. Ja ja ja.",
        f"Op 11-01-2023 om 09:02 schreef WijkWijzer:\n{QUOTE}\n\nNee.",
    ],
)
def test_strip_leaves_only_the_answer(reply: str) -> None:
    assert strip_reply(reply) == "Nee."


def _mail(headers: str, body: str = "Ja, ik kom graag.") -> bytes:
    return (headers.strip() + "\nContent-Type: text/plain; charset=utf-8\n\n" + body).encode()


BASE = "From: Jan <Jan@Zwolle.nl>\nTo: aanmelden+" + "b" * 32 + "@x.nl\nSubject: Re: Uitnodiging"


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ("Auto-Submitted: auto-replied", ReplyKind.AUTO_REPLY),
        ("Auto-Submitted: no", ReplyKind.ACCEPT),
        ("X-Autoreply: yes", ReplyKind.AUTO_REPLY),
        ("Precedence: auto_reply", ReplyKind.AUTO_REPLY),
        ("X-MS-Exchange-Inbox-Rules-Loop: jan@zwolle.nl", ReplyKind.AUTO_REPLY),
        ("Return-Path: <>", ReplyKind.AUTO_REPLY),
        ("List-Id: <x.lists.example>", ReplyKind.AUTO_REPLY),
        ("Precedence: bulk", ReplyKind.AUTO_REPLY),
    ],
)
def test_automatic_headers(extra: str, kind: ReplyKind) -> None:
    u = understand(_mail(BASE + "\n" + extra), sessions())
    assert u.kind is kind
    assert u.is_automatic is (kind is not ReplyKind.ACCEPT)
    assert u.token == "b" * 32 and u.sender == "jan@zwolle.nl"


def test_sender_falls_back_to_sender_and_return_path() -> None:
    u = understand(_mail("Sender: Sec <SEC@zwolle.nl>\nSubject: x"), sessions())
    assert u.sender == "sec@zwolle.nl"
    u = understand(_mail("Return-Path: <rp@zwolle.nl>\nSubject: x"), sessions())
    assert u.sender == "rp@zwolle.nl"


def test_references_in_reply_to_first() -> None:
    u = understand(_mail(BASE + "\nIn-Reply-To: <b@x>\nReferences: <a@x> <b@x>"), sessions())
    assert u.references == ("<b@x>", "<a@x>")


def test_daemon_sender_is_automatic() -> None:
    u = understand(_mail("From: noreply@example.org\nSubject: Nieuwsbrief"), sessions())
    assert u.is_automatic and u.kind is ReplyKind.AUTO_REPLY


def test_human_niet_aanwezig_is_not_an_auto_reply() -> None:
    u = understand(_mail(BASE, "Ik ben helaas niet aanwezig op 1 februari."), sessions())
    assert u.kind is ReplyKind.DECLINE and not u.is_automatic


def test_html_only_and_bad_charset() -> None:
    raw = (
        BASE + "\nContent-Type: text/html; charset=x-no-such-charset\n\n"
        "<html><head><style>p{}</style><script>ja()</script></head><body>"
        "<p>Ja, ik kom graag&nbsp;- deelsessie <b>wonen</b></p>"
        "<blockquote>Nee, ik kan niet. Deelsessie werk.</blockquote></body></html>"
    ).encode()
    u = understand(raw, sessions())
    assert (u.kind, u.session) == (ReplyKind.ACCEPT, "wonen")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nja\n",
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n!!!not b64",
        b"Subject: =?utf-8?q?=ZZ=?= =?bogus?b?////?=\n\nja",
        b"Content-Type: text/calendar; method=REPLY\n\nBEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
        b"Content-Type: message/delivery-status\n\nAction: failed\n",
        b"A" * 200_000,
        b"Subject: x\n\n" + b"ja " * 100_000,
    ],
)
def test_never_raises_on_broken_input(raw: bytes) -> None:
    u = understand(raw, sessions())
    assert isinstance(u.kind, ReplyKind)


def test_deeply_nested_multipart_is_bounded() -> None:
    depth = 300
    parts = [f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n" for i in range(depth)]
    tail = "Content-Type: text/plain\n\nJa, ik kom.\n" + "".join(
        f"--b{i}--\n" for i in reversed(range(depth))
    )
    u = understand(("Subject: x\n" + "".join(parts) + tail).encode(), sessions())
    assert isinstance(u.kind, ReplyKind)


def test_oversized_reads_only_headers() -> None:
    raw = _mail(BASE + "\nMessage-ID: <big@x>", "ja " * 1000)
    u = understand(raw, sessions(), max_bytes=500)
    assert u.kind is ReplyKind.UNCLEAR and u.message_id == "<big@x>" and u.token == "b" * 32
    assert "too large" in u.notes[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_never_raises_fuzz(raw: bytes) -> None:
    assert isinstance(understand(raw, sessions()).kind, ReplyKind)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_never_raises_fuzz_text(body: str) -> None:
    raw = ("Subject: Re\nContent-Type: text/plain; charset=utf-8\n\n" + body).encode(
        "utf-8", "replace"
    )
    assert isinstance(understand(raw, sessions()).kind, ReplyKind)
