"""Three wrong readings a user found walking through the product, and their neighbours.

1. A companion's name paired with someone else's address: "Karin Smit heeft zich helaas
   afgemeld maar Ahmed Benali (a.benali@…) gaat mee" gave Karin Smit <a.benali@…>. An address
   belongs to the name written right next to it; someone said not to come is no companion;
   when it is unclear whose address is whose, `people.pairing_doubt` says so.
2. A deelsessie word that is an inflection of an alias ("Fietsen graag." for alias "fiets")
   got no session. Simple plural/verb forms count now, only where they are unambiguous and
   the clause does nothing but choose.
3. An organiser's reply to our "E-mail niet afgeleverd" notice, quoting the mail server's
   text, was read as a bounce and dropped. Bounce words count only in machine-sent mail.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from tests.understand._common import sessions
from workflows.event_config import SessionSpec
from workflows.understand import bounce, mime, people, understand
from workflows.understand.sessions import find_sessions
from workflows.understand.text import _statement_text, read_text
from workflows.understanding import ReplyKind

A, D, U = ReplyKind.ACCEPT, ReplyKind.DECLINE, ReplyKind.UNCLEAR
KARIN, AHMED = "k.smit@zeist.example", "a.benali@zeist.example"


def _mail(body: str, subject: str = "RE: Uitnodiging Leren van Rotterdam Zuid") -> bytes:
    m = EmailMessage()
    m["From"] = "Jan Jansen <j.jansen@zeist.example>"
    m["To"] = "aanmelden@wijkwijzer.example"
    m["Subject"] = subject
    m["Message-ID"] = "<walkthrough@zeist.example>"
    m.set_content(body)
    return bytes(m)


def _pairs(text: str) -> list[tuple[str, str | None]]:
    return [(c.name, c.email) for c in read_text(text, sessions()).companions]


def _doubt(text: str) -> str | None:
    statements = _statement_text(text)
    substitute = people.find_substitute(statements)
    companions = people.find_companions(statements, substitute)
    return people.pairing_doubt(statements, companions, substitute)


# --------------------------------------------------------------------------- 1. companions


def test_the_users_companion_case() -> None:
    text = (
        "Wij komen met z'n tweeën, Karin Smit heeft zich helaas afgemeld maar Ahmed Benali "
        f"({AHMED}) gaat mee."
    )
    u = understand(_mail(text), sessions())
    assert u.kind is A
    assert [(c.name, c.email) for c in u.companions] == [("Ahmed Benali", AHMED)]
    assert _doubt(text) is None


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        # The forms that pair a name and an address.
        (f"Ik kom met Karin Smit ({KARIN}).", [("Karin Smit", KARIN)]),
        (f"Ik kom met Karin Smit <{KARIN}>.", [("Karin Smit", KARIN)]),
        (f"Ik kom met Karin Smit [{KARIN}].", [("Karin Smit", KARIN)]),
        (f"Ik kom met mijn collega Karin Smit, {KARIN}.", [("Karin Smit", KARIN)]),
        (f"Ik kom met mijn collega Karin Smit: {KARIN}", [("Karin Smit", KARIN)]),
        (f"Ik kom met mijn collega Karin Smit - {KARIN}", [("Karin Smit", KARIN)]),
        (f"Ik kom met mijn collega Karin Smit (e-mail: {KARIN}).", [("Karin Smit", KARIN)]),
        (f"Ik kom met mijn collega Karin Smit (mailadres {KARIN}).", [("Karin Smit", KARIN)]),
        (f"Ik kom met {KARIN} (Karin Smit).", [("Karin Smit", KARIN)]),
        (f"Ja, ik kom. Mijn collega Karin Smit ({KARIN}) komt ook mee.", [("Karin Smit", KARIN)]),
        ("Ik kom, met collega r.visser@zwolle.nl.", [("", "r.visser@zwolle.nl")]),
        # Several people: each keeps their own address, or none.
        (
            f"Ik kom met mijn collega's Karin Smit ({KARIN}) en Ahmed Benali ({AHMED}).",
            [("Karin Smit", KARIN), ("Ahmed Benali", AHMED)],
        ),
        (
            f"Ik kom met mijn collega's Karin Smit en Ahmed Benali ({AHMED}).",
            [("Karin Smit", None), ("Ahmed Benali", AHMED)],
        ),
        (
            f"Ik kom met mijn collega's Karin Smit ({KARIN}) en Ahmed Benali.",
            [("Karin Smit", KARIN), ("Ahmed Benali", None)],
        ),
        # An address further on in the sentence is nobody's.
        (
            f"Ik kom met mijn collega Karin Smit, haar adres is {KARIN}.",
            [("Karin Smit", None)],
        ),
        (
            f"Ja, ik kom met mijn collega Karin Smit en neem ook Ahmed Benali mee ({AHMED}).",
            [("Karin Smit", None), ("Ahmed Benali", None)],
        ),
        # Someone not coming, before or after the one who comes.
        (
            f"Ja ik kom. Karin Smit kan niet maar Ahmed Benali ({AHMED}) gaat mee.",
            [("Ahmed Benali", AHMED)],
        ),
        (
            f"Karin Smit kan helaas niet, Ahmed Benali ({AHMED}) gaat wel mee.",
            [("Ahmed Benali", AHMED)],
        ),
        (
            f"Karin Smit ({KARIN}) kan helaas niet, maar Ahmed Benali gaat mee.",
            [("Ahmed Benali", None)],
        ),
        (f"Ahmed Benali ({AHMED}) gaat mee, Karin Smit niet.", [("Ahmed Benali", AHMED)]),
        (f"Ahmed Benali gaat mee, Karin Smit ({KARIN}) niet.", [("Ahmed Benali", None)]),
        (
            f"Ik kom graag. Karin Smit komt niet, collega Ahmed Benali ({AHMED}) komt ook mee.",
            [("Ahmed Benali", AHMED)],
        ),
        (
            f"Ik kom graag, zonder Karin Smit maar met collega Ahmed Benali ({AHMED}).",
            [("Ahmed Benali", AHMED)],
        ),
        (
            f"Ik kom met collega Ahmed Benali ({AHMED}). Karin Smit is verhinderd.",
            [("Ahmed Benali", AHMED)],
        ),
        (
            f"Ik kom met collega Ahmed Benali ({AHMED}); Karin Smit moet helaas afzeggen.",
            [("Ahmed Benali", AHMED)],
        ),
        # English.
        (
            f"Yes, I will attend. Karin Smit can't make it but Ahmed Benali ({AHMED}) will join "
            "me.",
            [("Ahmed Benali", AHMED)],
        ),
        (
            f"Yes, I will attend. Karin Smit can’t make it, but my colleague Ahmed Benali "
            f"({AHMED}) will join me.",
            [("Ahmed Benali", AHMED)],
        ),
        (
            f"Yes, I will attend together with Ahmed Benali ({AHMED}); Karin Smit cannot come.",
            [("Ahmed Benali", AHMED)],
        ),
        (
            f"I'll be there with my colleague Ahmed Benali <{AHMED}>. Karin Smit has cancelled.",
            [("Ahmed Benali", AHMED)],
        ),
        (
            f"I will attend, without Karin Smit but with my colleague Ahmed Benali ({AHMED}).",
            [("Ahmed Benali", AHMED)],
        ),
    ],
)
def test_an_address_goes_with_the_name_beside_it(
    text: str, pairs: list[tuple[str, str | None]]
) -> None:
    assert _pairs(text) == pairs


@pytest.mark.parametrize(
    "text",
    [
        f"Wij komen met z'n tweeën, Karin Smit heeft zich helaas afgemeld maar Ahmed Benali "
        f"({AHMED}) gaat mee.",
        f"Karin Smit heeft zich afgemeld. Ahmed Benali ({AHMED}) gaat mee.",
        f"Ik kom met mijn collega's Karin Smit en Ahmed Benali ({AHMED}). Karin kan toch niet.",
        f"Ik kom met Karin Smit en Ahmed Benali ({AHMED}), maar Karin Smit komt toch niet.",
        f"Ik neem Karin Smit en Ahmed Benali ({AHMED}) mee; mevrouw Smit meldt zich af.",
        f"Karin Smit zegt af, maar collega Ahmed Benali ({AHMED}) komt ook.",
        f"I'm coming with Karin Smit and Ahmed Benali ({AHMED}). Karin isn't coming after all.",
        f"Karin Smit is unable to attend, but Ahmed Benali ({AHMED}) will join me.",
        f"Karin Smit won't be there; Ahmed Benali ({AHMED}) will come along.",
    ],
)
def test_someone_said_not_to_come_is_never_a_companion(text: str) -> None:
    for reading in (read_text(text, sessions()), understand(_mail(text), sessions())):
        assert all("Karin" not in c.name and c.email != KARIN for c in reading.companions)
        # Ahmed's address is only ever Ahmed's.
        assert all(c.name in ("Ahmed Benali", "") for c in reading.companions if c.email == AHMED)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # Someone named as coming and as not coming.
        (
            f"Ik kom met mijn collega's Karin Smit en Ahmed Benali ({AHMED}). Karin kan toch niet.",
            "as not coming",
        ),
        # An address next to no name while a companion has none.
        (f"Ik kom met Karin Smit en Ahmed Benali; het adres is {AHMED}.", "next to no name"),
        (f"Ik kom met mijn collega Karin Smit. Haar adres is {KARIN}.", "next to no name"),
        (f"Ik kom met mijn collega Karin Smit, haar adres is {KARIN}.", "next to no name"),
        (
            f"Ja, ik kom met mijn collega Karin Smit en neem ook Ahmed Benali mee ({AHMED}).",
            "next to no name",
        ),
        (
            f"Ik kom met collega Ahmed Benali ({AHMED}) en het adres van Karin is {KARIN}.",
            "next to no name",
        ),
        # Names and addresses given apart.
        (f"Ik kom met Karin Smit en {AHMED}.", "apart"),
    ],
)
def test_pairing_doubt_when_unclear_whose_address(text: str, reason: str) -> None:
    doubt = _doubt(text)
    assert doubt is not None and reason in doubt
    # Whatever the reading, no name is paired with an address not written beside it.
    pairs = {(c.name, c.email) for c in read_text(text, sessions()).companions if c.email}
    assert pairs <= {("Ahmed Benali", AHMED), ("", AHMED), ("", KARIN)}


@pytest.mark.parametrize(
    "text",
    [
        f"Ik kom met Karin Smit ({KARIN}) en Ahmed Benali ({AHMED}).",
        f"Ik kom met mijn collega's Karin Smit en Ahmed Benali ({AHMED}).",
        f"Wij komen met z'n tweeën, Karin Smit heeft zich helaas afgemeld maar Ahmed Benali "
        f"({AHMED}) gaat mee.",
        "Ja, ik kom met mijn collega Karin Smit.",
        f"In mijn plaats komt Jan de Boer (j.deboer@{AHMED[9:]}).",
    ],
)
def test_no_doubt_when_each_address_is_beside_its_name(text: str) -> None:
    assert _doubt(text) is None


def test_met_zn_tweeen_is_an_unnamed_companion() -> None:
    assert _pairs("Ja, ik kom met z'n tweeën.") == [("", None)]
    assert _pairs(f"Wij komen met z'n tweeën: ik en collega Karin Smit ({KARIN}).") == [
        ("Karin Smit", KARIN)
    ]


# --------------------------------------------------------------------------- 2. sessions

CYCLING = SessionSpec(
    key="mobiliteit", title="Mobiliteit: de wijk op de fiets", aliases=("fiets", "verkeer")
)
WITH_CYCLING = (*sessions(), CYCLING)


def _keys(text: str, specs: tuple[SessionSpec, ...] = WITH_CYCLING) -> list[str]:
    return [m.key for m in find_sessions(text, specs)]


def test_the_users_session_case() -> None:
    u = understand(_mail("Ja, ik kom. Fietsen graag."), WITH_CYCLING)
    assert (u.kind, u.session) == (A, "mobiliteit")


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("Ja, ik kom. Fietsen graag.", ["mobiliteit"]),
        ("Ja, ik kom, fietsen graag.", ["mobiliteit"]),
        ("Graag fietsen.", ["mobiliteit"]),
        ("Deelsessie: fietsen", ["mobiliteit"]),
        ("Graag de deelsessie fietsen.", ["mobiliteit"]),
        ("Ik kies fietsen.", ["mobiliteit"]),
        ("Ja, ik kom graag. Scholen graag.", ["onderwijs"]),
        ("Ja, ik kom. Woningbouwen graag.", ["wonen"]),
        ("Yes, I'll come. Schools please.", ["onderwijs"]),
        # An ordinary sentence with the same word chooses nothing.
        ("Ja, ik kom. Wij fietsen graag.", []),
        ("Ja, ik kom graag. Mijn fietsen staan buiten.", []),
        ("Ik kom niet fietsen.", []),
        ("Ik twijfel tussen fietsen en wonen.", []),
        ("Ik kom met de fiets.", []),
        ("Ik kom met de fiets, deelsessie wonen.", ["wonen"]),
        # A common word is never a session, whatever surrounds it.
        ("Ik wil graag werken aan mijn netwerk.", []),
        ("Werken graag.", []),
        # "woningen" is no form of "woningbouw" or "wonen".
        ("Woningen graag.", []),
    ],
)
def test_inflected_session_words(text: str, keys: list[str]) -> None:
    assert _keys(text) == keys


def test_a_form_of_two_sessions_counts_for_none() -> None:
    green = (
        SessionSpec(key="groen", title="Groen in de wijk", aliases=("groen",)),
        SessionSpec(key="energie", title="Energie: de groene wijk", aliases=("groene",)),
    )
    assert _keys("Groenen graag.", green) == []  # "groen" + en, "groene" + n
    assert _keys("Groen graag.", green) == ["groen"]
    assert _keys("Groene graag.", green) == ["energie"]


def test_a_form_of_one_session_and_a_misspelling_of_another_counts_for_none() -> None:
    specs = (CYCLING, SessionSpec(key="fietser", title="Fietsers", aliases=("fietser",)))
    assert _keys("Fietsen graag.", specs) == []
    assert _keys("Fietsen graag.") == ["mobiliteit"]


def test_a_misspelling_of_two_sessions_counts_for_none() -> None:
    specs = (
        SessionSpec(key="sport", title="Sport in de wijk"),
        SessionSpec(key="spoor", title="Spoor en station"),
    )
    assert _keys("Deelsessie sporr graag.", specs) == []
    assert _keys("Deelsessie sportt graag.", specs) == ["sport"]


def test_no_wrong_session_beside_an_unsure_inflection() -> None:
    u = understand(_mail("Ja, ik kom. Wij fietsen graag, dus ik kom op de fiets."), WITH_CYCLING)
    assert u.kind is A and u.session is None


# --------------------------------------------------------------------------- 3. bounces

NOTICE_TEXT = (
    "De e-mail aan Karin Smit <k.smit@zeist.example> kon niet worden afgeleverd. Melding van "
    "de mailserver: 550 5.1.1 <k.smit@zeist.example>: Recipient address rejected: User "
    "unknown in virtual mailbox table\n\n"
    "Delivery Status Notification (Failure)\n"
    "This is an automatically generated Delivery Status Notification.\n"
    "Delivery to the following recipient failed permanently: k.smit@zeist.example\n\n"
    "Verbeter het adres in de genodigdenlijst en importeer die opnieuw, of neem op een andere "
    "manier contact op met Karin Smit.\n"
)
SANNE_OWN = (
    "Dank, ik heb Karin gebeld, het juiste adres is karin.smit@zeist.example. Willen jullie "
    "de uitnodiging daar opnieuw heen sturen?\n\n"
    "Met vriendelijke groet,\nSanne Bakker\nGemeente Zeist\n"
)


def _sanne(body: str, subject: str = "RE: E-mail niet afgeleverd: k.smit@zeist.example") -> bytes:
    """The organiser answers our notice from Outlook (Exchange headers, a reply, no robot)."""
    m = EmailMessage()
    m["Return-Path"] = "<s.bakker@gemeente.example>"
    m["From"] = "Sanne Bakker <s.bakker@gemeente.example>"
    m["To"] = "WijkWijzer namens BZK <aanmelden@wijkwijzer.example>"
    m["Subject"] = subject
    m["Date"] = "Tue, 17 Jan 2023 10:12:00 +0100"
    m["Message-ID"] = "<AM0PR09MB1234.sanne@gemeente.example>"
    m["In-Reply-To"] = "<notice-undeliverable-42@wijkwijzer.example>"
    m["References"] = "<notice-undeliverable-42@wijkwijzer.example>"
    m["Thread-Topic"] = "E-mail niet afgeleverd: k.smit@zeist.example"
    m["Thread-Index"] = "AQHZKlnotice42AAAAAA=="
    m["Content-Language"] = "nl-NL"
    m["X-MS-Has-Attach"] = ""
    m["X-MS-Exchange-Organization-AuthAs"] = "Internal"
    m.set_content(body)
    return bytes(m)


OUTLOOK_QUOTE = (
    "Van: WijkWijzer namens BZK <aanmelden@wijkwijzer.example>\n"
    "Verzonden: dinsdag 17 januari 2023 09:58\n"
    "Aan: Bakker, Sanne <s.bakker@gemeente.example>\n"
    "Onderwerp: E-mail niet afgeleverd: k.smit@zeist.example\n\n" + NOTICE_TEXT
)
GT_QUOTE = "Op di 17 jan. 2023 om 09:58 schreef WijkWijzer <aanmelden@wijkwijzer.example>:\n\n" + (
    "".join(f"> {line}\n" for line in NOTICE_TEXT.splitlines())
)


@pytest.mark.parametrize(
    ("body", "subject"),
    [
        (f"{SANNE_OWN}\n{OUTLOOK_QUOTE}", "RE: E-mail niet afgeleverd: k.smit@zeist.example"),
        (f"{SANNE_OWN}\n{GT_QUOTE}", "Re: E-mail niet afgeleverd: k.smit@zeist.example"),
        (f"{SANNE_OWN}\n{OUTLOOK_QUOTE}", "Antw: E-mail niet afgeleverd: k.smit@zeist.example"),
        # Her own words say the address is wrong, in a message of her own (no RE:).
        (f"{SANNE_OWN}\n{OUTLOOK_QUOTE}", "E-mail niet afgeleverd: k.smit@zeist.example"),
        # She forwards the notice with a word of her own.
        (f"{SANNE_OWN}\n{OUTLOOK_QUOTE}", "FW: E-mail niet afgeleverd: k.smit@zeist.example"),
        # Only the quote, nothing typed: still hers, for a human.
        (f"\n{OUTLOOK_QUOTE}", "RE: E-mail niet afgeleverd: k.smit@zeist.example"),
    ],
)
def test_a_reply_to_our_bounce_notice_is_no_bounce(body: str, subject: str) -> None:
    raw = _sanne(body, subject)
    u = understand(raw, sessions())
    assert u.kind not in (ReplyKind.BOUNCE, ReplyKind.AUTO_REPLY), u.notes
    assert u.kind in (U, ReplyKind.QUESTION), u.notes
    assert not u.is_automatic
    assert u.bounced_recipients == ()
    msg = mime.parse(raw)
    assert not bounce.machine_sent(msg)


def test_the_users_bounce_case() -> None:
    u = understand(_sanne(f"{SANNE_OWN}\n{OUTLOOK_QUOTE}"), sessions())
    assert u.kind is ReplyKind.QUESTION and not u.is_automatic
    assert "karin.smit@zeist.example" in u.reply_text


DAEMON_BOUNCE = (
    "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.gemeente.example>\n"
    "Date: Tue, 17 Jan 2023 09:50:00 +0100\n"
    "Subject: Undelivered Mail Returned to Sender\n"
    "To: s.bakker@gemeente.example\n\n"
    "This is the mail system at host mx.gemeente.example.\n"
    "I'm sorry to have to inform you that your message could not be delivered.\n\n"
    "<k.smit@zeist.example>: host mx.zeist.example said: 550 5.1.1 <k.smit@zeist.example>: "
    "Recipient address rejected: User unknown\n"
)


def _person(body: str, subject: str) -> bytes:
    m = EmailMessage()
    m["From"] = "Sanne Bakker <s.bakker@gemeente.example>"
    m["To"] = "aanmelden@wijkwijzer.example"
    m["Subject"] = subject
    m["Message-ID"] = "<fw@gemeente.example>"
    m.set_content(body)
    return bytes(m)


def test_a_forwarded_bounce_with_nothing_said_is_still_a_bounce() -> None:
    """Passing a bounce on ("FYI" above it) is how sisimai's lhost-sendmail-14 reads."""
    fwd = "---------- Forwarded message ---------\n" + DAEMON_BOUNCE
    for own in ("", "FYI\n\n", "Zie hieronder.\nSanne\n\n", "Forward the message.\n\n"):
        u = understand(_person(own + fwd, "Fwd: Undelivered Mail Returned to Sender"), sessions())
        assert u.kind is ReplyKind.BOUNCE, (own, u.notes)
        assert "k.smit@zeist.example" in u.bounced_recipients


@pytest.mark.parametrize(
    ("body", "subject"),
    [
        # A forwarded bounce with words of her own: she says something, a human reads it.
        (
            "Karin heeft een nieuw adres: karin.smit@zeist.example. Graag opnieuw sturen.\n\n"
            "---------- Forwarded message ---------\n" + DAEMON_BOUNCE,
            "Fwd: Undelivered Mail Returned to Sender",
        ),
        # A reply quoting a bounce she got herself.
        (
            "Het adres van Karin is veranderd, zie hieronder.\n\n"
            + "".join(f"> {line}\n" for line in DAEMON_BOUNCE.splitlines()),
            "RE: Undelivered Mail Returned to Sender",
        ),
        # Her own message about a failed delivery.
        (
            "Mijn mail aan Karin kon niet worden bezorgd (user unknown). Haar nieuwe adres is "
            "karin.smit@zeist.example.",
            "Mail niet afgeleverd bij Karin",
        ),
    ],
)
def test_a_person_writing_about_a_bounce_is_no_bounce(body: str, subject: str) -> None:
    u = understand(_person(body, subject), sessions())
    assert u.kind is not ReplyKind.BOUNCE and not u.is_automatic, u.notes


def _attached_dsn(own: str) -> bytes:
    """A person forwards a DSN as an attachment ("Forward as attachment")."""
    return (
        "From: Sanne Bakker <s.bakker@gemeente.example>\n"
        "To: aanmelden@wijkwijzer.example\n"
        "Subject: FW: Undelivered Mail Returned to Sender\n"
        "Message-ID: <fwatt@gemeente.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="outer"\n\n'
        "--outer\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        f"{own}\n"
        "--outer\n"
        "Content-Type: message/rfc822\n"
        'Content-Disposition: attachment; filename="bounce.eml"\n\n'
        "From: MAILER-DAEMON@mx.gemeente.example\n"
        "To: s.bakker@gemeente.example\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"\n\n'
        "--dsn\n"
        "Content-Type: text/plain\n\n"
        "Your message could not be delivered.\n"
        "--dsn\n"
        "Content-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.gemeente.example\n\n"
        "Final-Recipient: rfc822; k.smit@zeist.example\n"
        "Action: failed\n"
        "Status: 5.1.1\n"
        "--dsn--\n"
        "--outer--\n"
    ).encode()


def test_an_attached_dsn_from_a_person() -> None:
    said = understand(_attached_dsn("Karin heeft een nieuw adres: karin.smit@zeist.example."),
                      sessions())  # fmt: skip
    assert said.kind is not ReplyKind.BOUNCE and not said.is_automatic, said.notes
    silent = understand(_attached_dsn("FYI"), sessions())
    assert silent.kind is ReplyKind.BOUNCE, silent.notes


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied\n",
        "Return-Path: <>\n",
        "X-Failed-Recipients: k.smit@zeist.example\n",
        "X-MS-Exchange-Message-Is-Ndr: \n",
    ],
)
def test_machine_sent_text_bounces_still_count(headers: str) -> None:
    raw = (
        "From: Systeembeheer <it@gemeente.example>\n"
        "To: aanmelden@wijkwijzer.example\n"
        "Subject: Onbestelbaar: Uitnodiging Leren van Rotterdam Zuid\n"
        f"{headers}"
        "Content-Type: text/plain; charset=utf-8\n\n"
        "Uw bericht kon niet worden bezorgd aan k.smit@zeist.example: user unknown.\n"
    ).encode()
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.BOUNCE, u.notes
    assert u.bounced_recipients == ("k.smit@zeist.example",)


@pytest.mark.parametrize(
    ("text", "name", "email"),
    [
        (
            "Ik kan helaas niet. Mijn collega Jan de Boer komt in mijn plaats, "
            "zijn e-mailadres is j.deboer@gemeente1.example.",
            "Jan de Boer",
            "j.deboer@gemeente1.example",
        ),
        (
            "Ik kan niet, maar collega Ria Vos gaat in mijn plaats. Haar mailadres: r.vos@x.nl",
            "Ria Vos",
            "r.vos@x.nl",
        ),
        (
            "I can't come; my deputy Mark Jansen will attend in my place, his email is m@x.org",
            "Mark Jansen",
            "m@x.org",
        ),
    ],
)
def test_a_substitutes_address_given_with_a_pronoun(text: str, name: str, email: str) -> None:
    # "…, zijn adres is x@y": the address of the one just named, not an address beside nobody.
    u = understand(_mail(text), sessions())
    assert u.kind.value == "decline", u.notes
    assert u.substitute is not None
    assert (u.substitute.name, u.substitute.email) == (name, email)
