# ruff: noqa: E501  (fixture data: realistic reply lines and headers are long)
"""Generate the reply fixtures in tests/understand/replies/ and their expected.json sidecar.

    .venv/bin/python tests/understand/make_replies.py

Each case is one realistic reply as a mail client would send it (Gmail, Outlook plain and
HTML-only, Apple Mail, Thunderbird, calendar clients, auto-replies, bounces), quoting the
original invitation, which itself says "aanmelden", "deelsessie", "ja/nee", every session and
the rsvp marker, so the tests prove that quoted text never counts. Output is deterministic;
tests check that the files on disk match this script.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "replies"
REPLY_DOMAIN = "wijkwijzer.example"
ORGANISER = f"WijkWijzer namens BZK <aanmelden@{REPLY_DOMAIN}>"
SUBJECT_NL = "Uitnodiging: Leren van Rotterdam Zuid, 1 februari 2023"
SUBJECT_EN = "Invitation: Learning from Rotterdam Zuid, 1 February 2023"


def token_for(name: str) -> str:
    return base64.b32encode(hashlib.sha1(name.encode()).digest()).decode().lower()


def invitation_nl(token: str) -> str:
    return textwrap.dedent(f"""\
        Geachte wethouder,

        Graag nodigen wij u uit voor "Leren van Rotterdam Zuid: wethouders in de wijk" op
        woensdag 1 februari 2023 van 13:00 tot 17:30 in het Huis van de Wijk Zuidplein.

        Komt u? Antwoord dan op deze e-mail met ja of nee. U kunt zich aanmelden voor een
        van de vier deelsessies:
        - onderwijs: Onderwijs: kansen voor kinderen op Zuid
        - werk: Werk: van uitkering naar baan
        - wonen: Wonen: herstructurering en leefbaarheid
        - veiligheid: Veiligheid: samen sterk in de wijk

        Noem de deelsessie van uw voorkeur. U mag een collega meenemen; noem dan zijn of haar
        naam. Heeft u dieetwensen (vegetarisch, glutenvrij)? Laat het ons weten.
        Bijvoorbeeld: "Ja, ik kom graag, deelsessie wonen" of "Nee, ik kan helaas niet".
        Wilt u geen uitnodigingen meer ontvangen? Dan kunt u zich afmelden.

        Met vriendelijke groet,
        Marieke de Vries
        WijkWijzer namens BZK

        rsvp:{token}
        """)


def invitation_en(token: str) -> str:
    return textwrap.dedent(f"""\
        Dear alderman,

        You are invited to "Learning from Rotterdam Zuid" on Wednesday 1 February 2023,
        13:00-17:30, Huis van de Wijk Zuidplein, Rotterdam.

        Will you attend? Simply reply yes or no to this e-mail and register for one of the
        sessions: education, work, housing or safety. You may bring one colleague.
        For example: "Yes, I will come, session housing" or "No, unfortunately I can't".

        Kind regards,
        Marieke de Vries

        rsvp:{token}
        """)


SIGNATURE_NL = textwrap.dedent("""\
    Met vriendelijke groet,

    {name}
    Wethouder Wonen, Werk en Onderwijs
    Gemeente {town}
    T 038 498 0000""")
SIGNATURE_NL_SHORT = "Mvg,\n{name}"
SIGNATURE_EN = "Kind regards,\n\n{name}\nAlderman for Housing and Safety, Municipality of {town}"
DISCLAIMER = (
    "Dit bericht kan informatie bevatten die niet voor u is bestemd. Indien u niet de "
    "geadresseerde bent of dit bericht abusievelijk aan u is toegezonden, wordt u verzocht dat "
    "aan de afzender te melden en het bericht te verwijderen. De Staat aanvaardt geen "
    "aansprakelijkheid voor schade, van welke aard ook, die verband houdt met risico's "
    "verbonden aan het elektronisch verzenden van berichten."
)


@dataclass
class Case:
    name: str
    client: str
    body: str
    expected: dict[str, Any]
    lang: str = "nl"
    sender_name: str = "Jan Jansen"
    town: str = "Zwolle"
    signature: str = "nl"  # nl, nl_short, en, none
    disclaimer: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)
    subject: str | None = None
    postscript: str = ""  # typed below the signature ("PS …")

    @property
    def token(self) -> str:
        return token_for(self.name)

    @property
    def sender(self) -> str:
        local = self.sender_name.lower().replace(" ", ".")
        return f"{local}@{self.town.lower().replace(' ', '')}.nl"


def _signature(case: Case) -> str:
    template = {
        "nl": SIGNATURE_NL,
        "nl_short": SIGNATURE_NL_SHORT,
        "en": SIGNATURE_EN,
        "none": "",
    }[case.signature]
    sig = template.format(name=case.sender_name, town=case.town)
    if case.disclaimer:
        sig += "\n\n" + DISCLAIMER
    return sig


def _base(case: Case, subject_prefix: str = "RE: ") -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"{case.sender_name} <{case.sender}>"
    msg["To"] = f"WijkWijzer namens BZK <aanmelden+{case.token}@{REPLY_DOMAIN}>"
    original = SUBJECT_NL if case.lang == "nl" else SUBJECT_EN
    msg["Subject"] = case.subject if case.subject is not None else subject_prefix + original
    msg["Date"] = "Wed, 11 Jan 2023 10:12:00 +0100"
    msg["Message-ID"] = f"<{case.name}@mail.{case.town.lower().replace(' ', '')}.nl>"
    msg["In-Reply-To"] = f"<invite-{case.token[:8]}@{REPLY_DOMAIN}>"
    msg["References"] = f"<invite-{case.token[:8]}@{REPLY_DOMAIN}>"
    for key, value in case.extra_headers.items():
        msg[key] = value
    return msg


def _invitation(case: Case) -> str:
    return invitation_nl(case.token) if case.lang == "nl" else invitation_en(case.token)


def _quote(text: str) -> str:
    return "\n".join(("> " + line) if line else ">" for line in text.splitlines())


def _own_part(case: Case) -> str:
    sig = _signature(case)
    own = case.body.rstrip() + ("\n\n" + sig if sig else "")
    return own + ("\n\n" + case.postscript if case.postscript else "")


# --- clients ----------------------------------------------------------------------------------


def gmail(case: Case) -> bytes:
    msg = _base(case, "Re: ")
    if case.lang == "nl":
        attr = f"Op wo 11 jan. 2023 om 09:02 schreef WijkWijzer namens BZK <\naanmelden+{case.token}@{REPLY_DOMAIN}>:"
    else:
        attr = f"On Wed, Jan 11, 2023 at 9:02 AM WijkWijzer namens BZK <\naanmelden+{case.token}@{REPLY_DOMAIN}> wrote:"
    plain = f"{_own_part(case)}\n\n{attr}\n\n{_quote(_invitation(case))}\n"
    own_html = "".join(
        f"<div>{html.escape(line) or '<br>'}</div>" for line in _own_part(case).splitlines()
    )
    inv_html = "<br>".join(html.escape(line) for line in _invitation(case).splitlines())
    rich = (
        f'<div dir="ltr">{own_html}</div><br><div class="gmail_quote"><div dir="ltr" '
        f'class="gmail_attr">{html.escape(attr.replace(chr(10), ""))}<br></div>'
        f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
        f'rgb(204,204,204);padding-left:1ex">{inv_html}</blockquote></div>'
    )
    msg.set_content(plain, charset="utf-8", cte="quoted-printable")
    msg.add_alternative(rich, subtype="html", charset="utf-8", cte="quoted-printable")
    msg.set_boundary(f"000000000000{case.token[:16]}")
    return msg.as_bytes()


def _outlook_header_block(case: Case) -> list[str]:
    if case.lang == "nl":
        return [
            f"Van: WijkWijzer namens BZK <aanmelden+{case.token}@{REPLY_DOMAIN}>",
            "Verzonden: woensdag 11 januari 2023 09:02",
            f"Aan: {case.sender_name} <{case.sender}>",
            f"Onderwerp: {SUBJECT_NL}",
        ]
    return [
        f"From: WijkWijzer namens BZK <aanmelden+{case.token}@{REPLY_DOMAIN}>",
        "Sent: Wednesday, January 11, 2023 9:02 AM",
        f"To: {case.sender_name} <{case.sender}>",
        f"Subject: {SUBJECT_EN}",
    ]


def outlook_plain(case: Case) -> bytes:
    """Outlook desktop, plain text, windows-1252 quoted-printable, "Van:" block."""
    msg = _base(case, "RE: ")
    block = "\n".join(_outlook_header_block(case))
    text = f"{_own_part(case)}\n\n________________________________\n{block}\n\n{_invitation(case)}"
    msg.set_content(text, charset="windows-1252", cte="quoted-printable")
    return msg.as_bytes()


def outlook_original(case: Case) -> bytes:
    """Older Outlook: "-----Oorspronkelijk bericht-----" separator, iso-8859-1 8bit."""
    msg = _base(case, "Antw: " if case.lang == "nl" else "RE: ")
    sep = "-----Oorspronkelijk bericht-----" if case.lang == "nl" else "-----Original Message-----"
    block = "\n".join(_outlook_header_block(case))
    text = f"{_own_part(case)}\n\n{sep}\n{block}\n\n{_invitation(case)}"
    msg.set_content(text, charset="iso-8859-1", cte="8bit")
    return msg.as_bytes()


def outlook_html(case: Case) -> bytes:
    """Outlook/Exchange HTML-only with WordSection1, windows-1252, quoted-printable."""
    msg = _base(case, "RE: ")
    msg["Thread-Topic"] = SUBJECT_NL
    msg["X-MS-Has-Attach"] = ""

    def paras(text: str) -> str:
        return "\n".join(
            f"<p class=MsoNormal>{html.escape(line)}<o:p></o:p></p>"
            if line
            else "<p class=MsoNormal><o:p>&nbsp;</o:p></p>"
            for line in text.splitlines()
        )

    labels = (
        ["Van", "Verzonden", "Aan", "Onderwerp"]
        if case.lang == "nl"
        else ["From", "Sent", "To", "Subject"]
    )
    values = [line.split(": ", 1)[1] for line in _outlook_header_block(case)]
    header_html = "<br>\n".join(
        f"<b>{label}:</b> {html.escape(value)}" for label, value in zip(labels, values, strict=True)
    )
    doc = f"""<html xmlns:o="urn:schemas-microsoft-com:office:office">
<head><meta http-equiv=Content-Type content="text/html; charset=windows-1252">
<style><!-- p.MsoNormal {{margin:0cm; font-size:11.0pt; font-family:"Calibri",sans-serif;}}
.ja {{ color: red }} --></style>
<!--[if gte mso 9]><xml><o:shapedefaults v:ext="edit" spidmax="1026" /></xml><![endif]-->
</head>
<body lang=NL link="#0563C1" vlink="#954F72" style='word-wrap:break-word'>
<div class=WordSection1>
{paras(_own_part(case))}
<p class=MsoNormal><o:p>&nbsp;</o:p></p>
<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>
<p class=MsoNormal>{header_html}<o:p></o:p></p>
</div>
<p class=MsoNormal><o:p>&nbsp;</o:p></p>
{paras(_invitation(case))}
</div>
</body>
</html>
"""
    msg.set_content(doc, subtype="html", charset="windows-1252", cte="quoted-printable")
    return msg.as_bytes()


def apple(case: Case) -> bytes:
    """Apple Mail on iPhone: "Verstuurd vanaf mijn iPhone", base64 or QP, quote with "> "."""
    msg = _base(case, "Re: ")
    if case.lang == "nl":
        device = "Verstuurd vanaf mijn iPhone"
        attr = "Op 11 jan. 2023 om 09:02 heeft WijkWijzer namens BZK <aanmelden@wijkwijzer.example> het volgende geschreven:"
    else:
        device = "Sent from my iPhone"
        attr = (
            "On 11 Jan 2023, at 09:02, WijkWijzer namens BZK <aanmelden@wijkwijzer.example> wrote:"
        )
    own = case.body.rstrip()
    text = f"{own}\n\n{device}\n\n> {attr}\n>\n{_quote(_invitation(case))}\n"
    msg.set_content(text, charset="utf-8", cte="base64")
    return msg.as_bytes()


def thunderbird(case: Case) -> bytes:
    """Thunderbird, iso-8859-1 quoted-printable, format=flowed-ish "Op … schreef …:"."""
    msg = _base(case, "Re: ")
    attr = (
        "Op 11-01-2023 om 09:02 schreef WijkWijzer namens BZK:"
        if case.lang == "nl"
        else ("On 11/01/2023 09:02, WijkWijzer namens BZK wrote:")
    )
    text = f"{_own_part(case)}\n\n{attr}\n{_quote(_invitation(case))}\n"
    msg.set_content(text, charset="iso-8859-1", cte="quoted-printable")
    return msg.as_bytes()


def interleaved(case: Case) -> bytes:
    """Answer typed below the quoted question, quote first (bottom-posting)."""
    msg = _base(case, "Re: ")
    inv = _invitation(case).splitlines()
    text = "\n".join(
        [
            "Op 11-01-2023 om 09:02 schreef WijkWijzer namens BZK:",
            *("> " + line for line in inv[:7]),
            "",
            case.body.rstrip(),
            "",
            *("> " + line for line in inv[7:]),
            "",
            _signature(case),
        ]
    )
    msg.set_content(text, charset="utf-8", cte="8bit")
    return msg.as_bytes()


def forwarded(case: Case) -> bytes:
    """Gmail "Forward": the answer on top of the forwarded invitation (not "> " quoted), e.g.
    a secretary answering after the wethouder forwarded the invitation to her."""
    msg = _base(case, "Fwd: ")
    block = "\n".join(
        [
            "---------- Forwarded message ---------",
            f"From: WijkWijzer namens BZK <aanmelden+{case.token}@{REPLY_DOMAIN}>",
            "Date: wo 11 jan. 2023 om 09:02",
            f"Subject: {SUBJECT_NL}",
            f"To: {case.sender_name} <{case.sender}>",
        ]
    )
    text = f"{_own_part(case)}\n\n{block}\n\n\n{_invitation(case)}"
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()


def unsubscribe_mailto(case: Case) -> bytes:
    """What a mail client sends for our List-Unsubscribe mailto (Gmail's one-click unsubscribe
    puts its own line in the body): no quote, no In-Reply-To."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"{case.sender_name} <{case.sender}>"
    msg["To"] = f"aanmelden+{case.token}@{REPLY_DOMAIN}"
    msg["Subject"] = case.subject or "unsubscribe"
    msg["Date"] = "Wed, 11 Jan 2023 10:12:00 +0100"
    msg["Message-ID"] = f"<{case.name}@mail.gmail.example>"
    msg.set_content(case.body + "\n", charset="utf-8")
    return msg.as_bytes()


CLIENTS: dict[str, Callable[[Case], bytes]] = {
    "gmail": gmail,
    "outlook": outlook_plain,
    "outlook_original": outlook_original,
    "outlook_html": outlook_html,
    "apple": apple,
    "thunderbird": thunderbird,
}


# --- calendar replies ------------------------------------------------------------------------


def _ics(case: Case, partstat: str, *, organizer: bool, comment: str | None) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "PRODID:"
        + (
            "Microsoft Exchange Server 2010"
            if not organizer
            else "-//Google Inc//Google Calendar 70.9054//EN"
        ),
        "VERSION:2.0",
        "METHOD:REPLY",
        "BEGIN:VEVENT",
    ]
    if organizer:
        lines.append(
            f"ORGANIZER;CN=WijkWijzer namens BZK:mailto:aanmelden+{case.token}@{REPLY_DOMAIN}"
        )
    lines.append(
        f"ATTENDEE;PARTSTAT={partstat};CN={case.sender_name}:mailto:{case.sender.upper() if not organizer else case.sender}"
    )
    if comment:
        escaped = (
            comment.replace("\\", "\\\\")
            .replace(",", "\\,")
            .replace(";", "\\;")
            .replace("\n", "\\n")
        )
        lines.append(f"COMMENT;LANGUAGE=nl-NL:{escaped}" if not organizer else f"COMMENT:{escaped}")
    lines += [
        f"UID:{case.token}@rsvpmail",
        "SUMMARY:Leren van Rotterdam Zuid",
        "DTSTART:20230201T120000Z",
        "DTEND:20230201T163000Z",
        "DTSTAMP:20230111T091200Z",
        "SEQUENCE:0",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def calendar_outlook(case: Case, partstat: str) -> bytes:
    """Outlook meeting response: no ORGANIZER; the typed text is in the body."""
    prefix = {"ACCEPTED": "Geaccepteerd", "DECLINED": "Geweigerd", "TENTATIVE": "Voorlopig"}[
        partstat
    ]
    case.subject = f"{prefix}: Leren van Rotterdam Zuid"
    msg = _base(case)
    msg.set_content(case.body or "", charset="utf-8")
    msg.add_alternative(
        _ics(case, partstat, organizer=False, comment=None),
        subtype="calendar",
        charset="utf-8",
        params={"method": "REPLY"},
    )
    msg.set_boundary(f"_000_{case.token[:20]}_")
    return msg.as_bytes()


def calendar_gmail(case: Case, partstat: str) -> bytes:
    """Google Calendar reply: ORGANIZER, COMMENT, boilerplate body mentioning the event."""
    verb = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentatively accepted"}[
        partstat
    ]
    case.subject = f"Invitation: Leren van Rotterdam Zuid @ Wed 1 Feb 2023 13:00 - 17:30 ({verb})"
    msg = _base(case, "")
    boiler = textwrap.dedent(f"""\
        {case.sender_name} has {verb} this invitation.

        Leren van Rotterdam Zuid
        Deelsessies onderwijs, werk, wonen en veiligheid. Aanmelden: ja of nee.
        When: Wed 1 Feb 2023 13:00 - 17:30 (CET)

        Invitation from Google Calendar
        """)
    msg.set_content(boiler, charset="utf-8")
    msg.add_alternative(
        _ics(case, partstat, organizer=True, comment=case.body or None),
        subtype="calendar",
        charset="utf-8",
        params={"method": "REPLY"},
    )
    msg.set_boundary(f"_000_{case.token[:20]}_")
    return msg.as_bytes()


# --- auto-replies ----------------------------------------------------------------------------


def auto_reply(
    case: Case, headers: dict[str, str], subject: str, body: str, cte: str = "8bit"
) -> bytes:
    case.subject = subject
    msg = _base(case, "")
    del msg["In-Reply-To"]
    del msg["References"]
    for key, value in headers.items():
        msg[key] = value
    msg.set_content(body, charset="utf-8", cte=cte)
    return msg.as_bytes()


# --- bounces ---------------------------------------------------------------------------------


def _original_invitation(token: str, to: str) -> str:
    return textwrap.dedent(f"""\
        Return-Path: <bounces@{REPLY_DOMAIN}>
        From: {ORGANISER}
        Reply-To: aanmelden+{token}@{REPLY_DOMAIN}
        To: {to}
        Subject: {SUBJECT_NL}
        Message-ID: <invite-{token[:8]}@{REPLY_DOMAIN}>
        Date: Wed, 11 Jan 2023 09:02:00 +0100
        Content-Type: text/plain; charset=utf-8

        Geachte wethouder,

        Komt u? Antwoord met ja of nee; deelsessies onderwijs, werk, wonen, veiligheid.

        rsvp:{token}
        """)


def dsn(
    case: Case,
    *,
    recipient: str,
    action: str,
    status: str,
    diagnostic: str,
    human: str,
    subject: str,
    from_: str,
    headers_only: bool = False,
) -> bytes:
    boundary = f"dsn-{case.token[:10]}"
    original = _original_invitation(case.token, recipient)
    if headers_only:
        original_part = (
            f"Content-Type: text/rfc822-headers\n\n{original.split(chr(10) + chr(10))[0]}\n"
        )
    else:
        original_part = f"Content-Type: message/rfc822\n\n{original}"
    text = textwrap.dedent(f"""\
        Return-Path: <>
        From: {from_}
        To: bounces@{REPLY_DOMAIN}
        Subject: {subject}
        Date: Wed, 11 Jan 2023 09:03:00 +0100
        Message-ID: <bounce-{case.name}@mx.example.net>
        Auto-Submitted: auto-replied
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

        --{boundary}
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit

        {{human}}

        --{boundary}
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.example.net
        Arrival-Date: Wed, 11 Jan 2023 09:02:10 +0100

        Final-Recipient: rfc822; {recipient}
        Original-Recipient: rfc822;{recipient}
        Action: {action}
        Status: {status}
        Diagnostic-Code: smtp; {diagnostic}

        --{boundary}
        {{original_part}}
        --{boundary}--
        """).format(human=human, original_part=original_part)
    return text.replace("\n", "\r\n").encode("utf-8")


def plain_bounce(case: Case, text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


# --- the cases -------------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "session": None,
    "companions": [],
    "substitute": None,
    "dietary": None,
    "has_question": False,
    "mentions_cancellation": False,
    "wants_unsubscribe": False,
}


def person(name: str, email: str | None = None, session: str | None = None) -> dict[str, Any]:
    return {"name": name, "email": email, "session": session}


# (name, language, body, expected, options). Expected keys not given take DEFAULTS.
HUMAN: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    # --- plain acceptances
    ("ja-kort", "nl", "Ja", {"kind": "accept"}, {}),
    ("ja-graag", "nl", "Ja, graag!", {"kind": "accept"}, {}),
    (
        "ja-ik-kom-wonen-karin",
        "nl",
        "Ja, ik kom graag, deelsessie wonen, met mijn collega Karin Smit.",
        {"kind": "accept", "session": "wonen", "companions": [person("Karin Smit")]},
        {},
    ),
    (
        "kom-graag-onderwijs",
        "nl",
        "Beste Marieke,\n\nIk kom graag. Mijn voorkeur gaat uit naar de deelsessie onderwijs.\n\nDank voor de uitnodiging!",
        {"kind": "accept", "session": "onderwijs"},
        {},
    ),
    (
        "aanmelden-werk",
        "nl",
        "Hierbij meld ik mij aan voor de bijeenkomst op 1 februari, deelsessie Werk.",
        {"kind": "accept", "session": "werk"},
        {},
    ),
    (
        "graag-aanwezig-veiligheid",
        "nl",
        "Goedemorgen,\n\nWethouder Jansen is graag aanwezig. Ik ben er graag bij en kies voor veiligheid.",
        {"kind": "accept", "session": "veiligheid"},
        {},
    ),
    (
        "zeker-van-de-partij",
        "nl",
        "Zeker! Ik ben van de partij. Sessie wonen graag.",
        {"kind": "accept", "session": "wonen"},
        {},
    ),
    (
        "ik-zal-aanwezig-zijn",
        "nl",
        "Ik zal aanwezig zijn bij de deelsessie over werk en inkomen.",
        {"kind": "accept", "session": "werk"},
        {},
    ),
    (
        "jazeker-alias-huisvesting",
        "nl",
        "Jazeker, ik schuif graag aan bij huisvesting.",
        {"kind": "accept", "session": "wonen"},
        {},
    ),
    (
        "ja-geen-voorkeur",
        "nl",
        "Ja, ik kom. Geen voorkeur voor een deelsessie.",
        {"kind": "accept"},
        {},
    ),
    ("natuurlijk-kom-ik", "nl", "Natuurlijk kom ik! Tot 1 februari.", {"kind": "accept"}, {}),
    (
        "wij-komen",
        "nl",
        "Wij komen graag met z'n tweeën: ikzelf en mijn beleidsadviseur Sanne de Graaf (s.degraaf@zwolle.nl). Onderwijs heeft onze voorkeur.",
        {
            "kind": "accept",
            "session": "onderwijs",
            "companions": [person("Sanne de Graaf", "s.degraaf@zwolle.nl")],
        },
        {},
    ),
    (
        "deelnemen-wonen",
        "nl",
        "Ik neem graag deel aan de deelsessie Wonen: herstructurering en leefbaarheid.",
        {"kind": "accept", "session": "wonen"},
        {},
    ),
    # --- misspellings and several choices
    (
        "misspelling-veiligheit",
        "nl",
        "Ja ik kom, deelsessie veiligheit",
        {"kind": "accept", "session": "veiligheid"},
        {},
    ),
    (
        "misspelling-woonen",
        "nl",
        "Graag aanmelden voor woonen.",
        {"kind": "accept", "session": "wonen"},
        {},
    ),
    (
        "misspelling-onderwys",
        "nl",
        "Ik kom graag naar de sessie onderwys",
        {"kind": "accept", "session": "onderwijs"},
        {},
    ),
    (
        "liefst-wonen-anders-onderwijs",
        "nl",
        "Ja, ik kom. Liefst wonen, anders onderwijs.",
        {"kind": "accept", "session": "wonen"},
        {},
    ),
    (
        "eerste-keuze-werk",
        "nl",
        "Ik kom graag. Eerste keuze werk, tweede keuze veiligheid.",
        {"kind": "accept", "session": "werk"},
        {},
    ),
    (
        "werk-of-wonen",
        "nl",
        "Ik ben erbij! Werk of wonen, maakt me niet zoveel uit.",
        {"kind": "accept", "session": "werk"},
        {},
    ),
    (
        "niet-wonen-liever-werk",
        "nl",
        "Ja ik kom graag. Niet wonen maar liever werk.",
        {"kind": "accept", "session": "werk"},
        {},
    ),
    (
        "werk-als-gewoon-woord",
        "nl",
        "Ja, ik kom graag, deelsessie onderwijs. Ik moet wel om 16:00 weer aan het werk.",
        {"kind": "accept", "session": "onderwijs"},
        {},
    ),
    # --- companions
    (
        "niet-alleen-collega",
        "nl",
        "Ik kom niet alleen maar met een collega.",
        {"kind": "accept", "companions": [person("")]},
        {},
    ),
    (
        "companion-email",
        "nl",
        "Ja, ik kom graag met mijn collega Piet de Boer (p.deboer@zwolle.nl). Deelsessie wonen.",
        {
            "kind": "accept",
            "session": "wonen",
            "companions": [person("Piet de Boer", "p.deboer@zwolle.nl")],
        },
        {},
    ),
    (
        "companion-own-session",
        "nl",
        "Ik kom graag, deelsessie onderwijs. Mijn collega Karin Smit komt ook mee, zij kiest voor veiligheid.",
        {
            "kind": "accept",
            "session": "onderwijs",
            "companions": [person("Karin Smit", None, "veiligheid")],
        },
        {},
    ),
    (
        "companion-neem-mee",
        "nl",
        "Ik neem mijn beleidsmedewerker Ahmed El Amrani mee. Wij gaan allebei naar werk.",
        {"kind": "accept", "session": "werk", "companions": [person("Ahmed El Amrani")]},
        {},
    ),
    (
        "companion-mevrouw",
        "nl",
        "Ja, ik kom samen met mevrouw J. van der Meer, onze programmamanager. Wonen graag.",
        {"kind": "accept", "session": "wonen", "companions": [person("J. van der Meer")]},
        {},
    ),
    (
        "companion-unnamed-neem",
        "nl",
        "Ik kom graag en neem een collega mee, naam volgt nog. Deelsessie werk.",
        {"kind": "accept", "session": "werk", "companions": [person("")]},
        {},
    ),
    (
        "companion-email-only",
        "nl",
        "Ik kom, met collega r.visser@zwolle.nl. Sessie veiligheid.",
        {
            "kind": "accept",
            "session": "veiligheid",
            "companions": [person("", "r.visser@zwolle.nl")],
        },
        {},
    ),
    # --- substitutes (kind decline + substitute)
    (
        "substitute-jansen",
        "nl",
        "Ik kan niet, maar collega Jansen komt in mijn plaats.",
        {"kind": "decline", "substitute": person("Jansen")},
        {},
    ),
    (
        "substitute-in-mijn-plaats",
        "nl",
        "Helaas ben ik verhinderd. In mijn plaats komt mevrouw Fatima Yilmaz (f.yilmaz@zwolle.nl), deelsessie wonen.",
        {"kind": "decline", "substitute": person("Fatima Yilmaz", "f.yilmaz@zwolle.nl", "wonen")},
        {},
    ),
    (
        "substitute-namens-mij",
        "nl",
        "Namens mij gaat onze wethouder Peter van Dijk.",
        {"kind": "decline", "substitute": person("Peter van Dijk")},
        {},
    ),
    (
        "substitute-laat-vervangen",
        "nl",
        "Ik ben die dag helaas op werkbezoek en laat mij vervangen door mijn collega-wethouder Linda Bos.",
        {"kind": "decline", "substitute": person("Linda Bos")},
        {},
    ),
    (
        "substitute-vervangt",
        "nl",
        "Dhr. K. de Wit vervangt mij, hij komt graag naar de sessie veiligheid.",
        {"kind": "decline", "substitute": person("K. de Wit", None, "veiligheid")},
        {},
    ),
    # --- dietary
    (
        "dieet-vegetarisch",
        "nl",
        "Ja, ik kom graag. Ik ben vegetarisch.",
        {"kind": "accept", "dietary": "vegetarisch"},
        {},
    ),
    (
        "dieet-glutenvrij",
        "nl",
        "Ik kom, deelsessie werk. Graag glutenvrij eten.",
        {"kind": "accept", "session": "werk", "dietary": "glutenvrij"},
        {},
    ),
    (
        "dieet-allergie",
        "nl",
        "Ik ben erbij. Let op: ik ben allergisch voor noten.",
        {"kind": "accept", "dietary": "allergisch voor noten"},
        {},
    ),
    ("dieet-halal", "nl", "Ja ik kom, graag halal.", {"kind": "accept", "dietary": "halal"}, {}),
    ("dieet-geen", "nl", "Ja, ik kom graag. Geen dieetwensen.", {"kind": "accept"}, {}),
    (
        "dieet-veganistisch-companion",
        "nl",
        "Ik kom met mijn collega Eva Mulder, zij is veganistisch. Wonen.",
        {
            "kind": "accept",
            "session": "wonen",
            "companions": [person("Eva Mulder")],
            "dietary": "veganistisch",
        },
        {},
    ),
    # --- questions
    (
        "vraag-parkeren",
        "nl",
        "Is er parkeergelegenheid bij het Huis van de Wijk?",
        {"kind": "question", "has_question": True},
        {},
    ),
    (
        "vraag-met-ja",
        "nl",
        "Ja, ik kom graag. Is er parkeergelegenheid?",
        {"kind": "accept", "has_question": True},
        {},
    ),
    (
        "vraag-collega-meenemen",
        "nl",
        "Mag ik ook een collega meenemen?",
        {"kind": "question", "has_question": True},
        {},
    ),
    (
        "vraag-kan-ik-komen-als",
        "nl",
        "Kan ik ook komen als ik pas om 14:00 binnen ben? Dan mis ik de lunch.",
        {"kind": "question", "has_question": True},
        {},
    ),
    (
        "vraag-programma",
        "nl",
        "Kunt u mij laten weten hoe laat het programma precies eindigt.",
        {"kind": "question", "has_question": True},
        {},
    ),
    (
        "vraag-zonder-vraagteken-ja",
        "nl",
        "Ik kom graag, ik vraag me af of er een vegetarische lunch is",
        {"kind": "accept", "has_question": True, "dietary": "vegetarische"},
        {},
    ),
    # --- declines
    ("nee-kort", "nl", "Nee", {"kind": "decline"}, {}),
    (
        "helaas-kan-niet",
        "nl",
        "Helaas kan ik niet op 1 februari, ik heb dan een raadsvergadering.",
        {"kind": "decline"},
        {},
    ),
    ("ja-helaas-kan-niet", "nl", "Ja, helaas kan ik niet.", {"kind": "decline"}, {}),
    (
        "verhinderd",
        "nl",
        "Beste organisatie,\n\nWethouder De Jong is op 1 februari helaas verhinderd.",
        {"kind": "decline"},
        {},
    ),
    (
        "had-graag-gekomen",
        "nl",
        "Ik had graag willen komen, maar het past helaas niet in mijn agenda.",
        {"kind": "decline"},
        {},
    ),
    (
        "niet-aanwezig-mens",
        "nl",
        "Ik ben helaas niet aanwezig op 1 februari. Succes met de bijeenkomst!",
        {"kind": "decline"},
        {},
    ),
    (
        "lukt-niet",
        "nl",
        "Dat gaat mij helaas niet lukken. Misschien een volgende keer.",
        {"kind": "decline"},
        {},
    ),
    (
        "ben-er-niet-bij",
        "nl",
        "Ik ben er helaas niet bij vanwege een begrotingsbehandeling.",
        {"kind": "decline"},
        {},
    ),
    ("kom-niet", "nl", "Ik kom niet.", {"kind": "decline"}, {}),
    (
        "andere-verplichtingen",
        "nl",
        "Vanwege andere verplichtingen moet ik verstek laten gaan.",
        {"kind": "decline"},
        {},
    ),
    # --- cancellations
    (
        "afmelden-helaas",
        "nl",
        "Ik moet mij helaas afmelden, er is iets tussengekomen.",
        {"kind": "decline", "mentions_cancellation": True},
        {},
    ),
    (
        "kan-toch-niet",
        "nl",
        "Ik had mij aangemeld maar ik kan toch niet komen. Excuses!",
        {"kind": "decline", "mentions_cancellation": True},
        {},
    ),
    (
        "aanmelding-intrekken",
        "nl",
        "Wilt u mijn aanmelding intrekken? Ik ben ziek.",
        {"kind": "decline", "mentions_cancellation": True},
        {},
    ),
    # --- unsubscribe
    (
        "uitschrijven",
        "nl",
        "Graag uitschrijven, ik wil geen mails meer ontvangen.",
        {"kind": "unclear", "wants_unsubscribe": True},
        {},
    ),
    (
        "afmelden-mailings-en-nee",
        "nl",
        "Nee, ik kom niet. Wilt u mij ook afmelden voor deze mailings.",
        {"kind": "decline", "wants_unsubscribe": True},
        {},
    ),
    # --- tentative
    (
        "onder-voorbehoud",
        "nl",
        "Ik kom onder voorbehoud, deelsessie wonen. Mijn agenda is nog niet helemaal rond.",
        {"kind": "tentative", "session": "wonen"},
        {},
    ),
    (
        "misschien",
        "nl",
        "Misschien. Ik laat het volgende week definitief weten.",
        {"kind": "tentative"},
        {},
    ),
    (
        "waarschijnlijk-ja",
        "nl",
        "Ik kom waarschijnlijk, ik moet nog even kijken.",
        {"kind": "tentative"},
        {},
    ),
    (
        "weet-nog-niet",
        "nl",
        "Ik weet nog niet of ik kan, er staat mogelijk een raadsvergadering gepland.",
        {"kind": "tentative"},
        {},
    ),
    # --- unclear
    ("tegenstrijdig", "nl", "Ja, ik kom graag... nee ik kan niet, sorry.", {"kind": "unclear"}, {}),
    ("nee-ik-kom-graag", "nl", "Nee, ik kom graag.", {"kind": "unclear"}, {}),
    ("waarschijnlijk-niet", "nl", "Ik kom waarschijnlijk niet.", {"kind": "unclear"}, {}),
    (
        "alleen-dank",
        "nl",
        "Dank voor de uitnodiging, ik kijk even in mijn agenda.",
        {"kind": "unclear"},
        {},
    ),
    ("leeg", "nl", "", {"kind": "unclear"}, {"signature": "none"}),
    ("alleen-handtekening", "nl", "", {"kind": "unclear"}, {}),
    (
        "doorgestuurd-secretaris",
        "nl",
        "Ter info, graag in de agenda zetten.",
        {"kind": "unclear"},
        {},
    ),
    # --- English
    (
        "en-yes",
        "en",
        "Yes, I will attend. I prefer the housing session.",
        {"kind": "accept", "session": "wonen"},
        {},
    ),
    (
        "en-count-me-in",
        "en",
        "Count me in! Session: safety.",
        {"kind": "accept", "session": "veiligheid"},
        {},
    ),
    (
        "en-love-to-but",
        "en",
        "I would love to come but unfortunately I can't make it.",
        {"kind": "decline"},
        {},
    ),
    (
        "en-decline",
        "en",
        "Unfortunately I am not able to attend due to a council meeting.",
        {"kind": "decline"},
        {},
    ),
    (
        "en-tentative",
        "en",
        "I might be able to attend, I will confirm next week.",
        {"kind": "tentative"},
        {},
    ),
    (
        "en-question",
        "en",
        "Is there parking available near the venue?",
        {"kind": "question", "has_question": True},
        {},
    ),
    (
        "en-colleague",
        "en",
        "Yes, I'll be there together with my colleague John Miller (j.miller@zwolle.nl). Education please.",
        {
            "kind": "accept",
            "session": "onderwijs",
            "companions": [person("John Miller", "j.miller@zwolle.nl")],
        },
        {},
    ),
    (
        "en-substitute",
        "en",
        "I cannot attend, but my colleague Sarah Lee will attend on my behalf.",
        {"kind": "decline", "substitute": person("Sarah Lee")},
        {},
    ),
    (
        "en-cancel",
        "en",
        "I'm afraid I have to cancel my registration, something came up.",
        {"kind": "decline", "mentions_cancellation": True},
        {},
    ),
    (
        "en-unsubscribe",
        "en",
        "Please unsubscribe me from these emails.",
        {"kind": "unclear", "wants_unsubscribe": True},
        {},
    ),
    (
        "en-vegetarian",
        "en",
        "Happy to attend, work session. I am vegetarian.",
        {"kind": "accept", "session": "werk", "dietary": "vegetarian"},
        {},
    ),
    ("en-yes-cant", "en", "Yes, I can't come.", {"kind": "unclear"}, {}),
    ("en-maybe", "en", "Maybe, depending on the council schedule.", {"kind": "tentative"}, {}),
    (
        "en-regards-quote",
        "en",
        "Sounds good, I will come. Session work.",
        {"kind": "accept", "session": "werk"},
        {},
    ),
    # --- real phrasing gathered after the first version (appended: earlier fixtures keep
    # their client, sender and bytes)
    (
        "karin-met-email",
        "nl",
        "Ja, ik kom graag, deelsessie wonen, met mijn collega Karin Smit (k.smit@gemeente.example)",
        {
            "kind": "accept",
            "session": "wonen",
            "companions": [person("Karin Smit", "k.smit@gemeente.example")],
        },
        {"signature": "none"},
    ),
    (
        "karin-zonder-punt",
        "nl",
        "Ja, ik kom graag, deelsessie wonen, met mijn collega Karin Smit",
        {"kind": "accept", "session": "wonen", "companions": [person("Karin Smit")]},
        {"signature": "none"},
    ),
    (
        "collega-komt-ook-mee",
        "nl",
        "Mijn collega Karin Smit (k.smit@gemeente.example) komt ook mee.",
        {"kind": "accept", "companions": [person("Karin Smit", "k.smit@gemeente.example")]},
        {},
    ),
    (
        "ja-werk-collega-komt-ook-mee",
        "nl",
        "Ja, ik kom graag naar de deelsessie werk.\nMijn collega Karin Smit (k.smit@gemeente.example) komt ook mee.",
        {
            "kind": "accept",
            "session": "werk",
            "companions": [person("Karin Smit", "k.smit@gemeente.example")],
        },
        {},
    ),
    (
        "substitute-jan-de-boer",
        "nl",
        "Helaas kan ik er niet bij zijn. In mijn plaats komt Jan de Boer (j.deboer@gemeente.example).",
        {"kind": "decline", "substitute": person("Jan de Boer", "j.deboer@gemeente.example")},
        {},
    ),
    (
        "substitute-neemt-plaats-in",
        "nl",
        "Ik ben verhinderd; mijn collega-wethouder Mieke van der Laan neemt mijn plaats in.",
        {"kind": "decline", "substitute": person("Mieke van der Laan")},
        {},
    ),
    (
        "substitute-zelf-niet-collega-wel",
        "nl",
        "Ik kom zelf niet, maar mijn collega Karin Smit gaat graag in mijn plaats.",
        {"kind": "decline", "substitute": person("Karin Smit")},
        {},
    ),
    (
        "secretaris-in-zijn-plaats",
        "nl",
        "Wethouder Jansen is helaas verhinderd. Zijn collega-wethouder Petra de Lange (p.delange@gemeente.example) komt in zijn plaats, deelsessie onderwijs.",
        {
            "kind": "decline",
            "substitute": person("Petra de Lange", "p.delange@gemeente.example", "onderwijs"),
        },
        {},
    ),
    (
        "companion-van-t-hof",
        "nl",
        "Graag aanmelden voor wonen, ik neem mijn collega Sanne van 't Hof mee.",
        {"kind": "accept", "session": "wonen", "companions": [person("Sanne van 't Hof")]},
        {},
    ),
    (
        "companion-collega-de-vries",
        "nl",
        "Ja, ik kom met collega De Vries. Deelsessie veiligheid.",
        {"kind": "accept", "session": "veiligheid", "companions": [person("De Vries")]},
        {},
    ),
    (
        "companion-collegas-twee",
        "nl",
        "Ik kom graag met mijn collega's Karin Smit en Jan de Boer, deelsessie wonen.",
        {
            "kind": "accept",
            "session": "wonen",
            "companions": [person("Karin Smit"), person("Jan de Boer")],
        },
        {},
    ),
    (
        "companion-collega-voornaam",
        "nl",
        "Ja, ik kom graag met collega Karin.",
        {"kind": "accept", "companions": [person("Karin")]},
        {},
    ),
    (
        "companion-wethouder-voornaam",
        "nl",
        "Ja hoor, ik kom samen met wethouder Anouk. Wonen.",
        {"kind": "accept", "session": "wonen", "companions": [person("Anouk")]},
        {},
    ),
    (
        "met-de-trein-geen-companion",
        "nl",
        "Ik kom graag, met de trein vanuit Zwolle. Deelsessie werk.",
        {"kind": "accept", "session": "werk"},
        {},
    ),
    (
        "collega-komt-niet-mee",
        "nl",
        "Ja, ik kom, deelsessie onderwijs. Mijn collega komt niet mee.",
        {"kind": "accept", "session": "onderwijs"},
        {},
    ),
    (
        "wij-komen-met-zn-tweeen",
        "nl",
        "Wij komen met z'n tweeën: ik en wethouder Pieter Bakker (p.bakker@gemeente.example), beiden wonen.",
        {
            "kind": "accept",
            "session": "wonen",
            "companions": [person("Pieter Bakker", "p.bakker@gemeente.example")],
        },
        {},
    ),
    (
        "namens-wethouder-komt-werk",
        "nl",
        "Goedemiddag,\n\nNamens wethouder De Vries laat ik u weten dat zij graag komt, deelsessie werk.",
        {"kind": "accept", "session": "werk"},
        {},
    ),
    (
        "namens-wethouder-verhinderd",
        "nl",
        "Namens wethouder Bakker laat ik u weten dat hij op 1 februari helaas verhinderd is.",
        {"kind": "decline"},
        {},
    ),
    (
        "wethouder-derde-persoon-wonen",
        "nl",
        "Wethouder Van der Laan komt graag. Zij heeft een voorkeur voor de deelsessie wonen.",
        {"kind": "accept", "session": "wonen"},
        {},
    ),
    ("ja-graag-werk-kort", "nl", "ja graag, werk", {"kind": "accept", "session": "werk"}, {}),
    (
        "schuif-aan-veiligheid",
        "nl",
        "Ik schuif graag aan bij veiligheid.",
        {"kind": "accept", "session": "veiligheid"},
        {},
    ),
    (
        "pas-later-veiligheid",
        "nl",
        "Ik kom graag, maar kan pas om 14:00. Deelsessie veiligheid.",
        {"kind": "accept", "session": "veiligheid"},
        {},
    ),
    (
        "erbij-werk-halal",
        "nl",
        "Ik ben er graag bij! Voorkeur: werk. Dieet: halal.",
        {"kind": "accept", "session": "werk", "dietary": "halal"},
        {},
    ),
    (
        "dieet-vegetarier",
        "nl",
        "Ja, ik kom. Ik ben vegetariër.",
        {"kind": "accept", "dietary": "vegetariër"},
        {},
    ),
    (
        "dieet-lactose-met-vraag",
        "nl",
        "Ik ben erbij, deelsessie onderwijs. Ik ben lactose-intolerant. Is de zaal rolstoeltoegankelijk?",
        {
            "kind": "accept",
            "session": "onderwijs",
            "dietary": "lactose-intolerant",
            "has_question": True,
        },
        {},
    ),
    (
        "vraag-dan-ja-werk",
        "nl",
        "Kan ik met de auto komen? In elk geval: ja, ik kom, deelsessie werk.",
        {"kind": "accept", "session": "werk", "has_question": True},
        {},
    ),
    (
        "nee-met-vraag-verslag",
        "nl",
        "Ik kan helaas niet. Komt er een verslag van de deelsessies?",
        {"kind": "decline", "has_question": True},
        {},
    ),
    (
        "afmelden-kan-toch-niet",
        "nl",
        "Kunt u mij afmelden? Ik kan toch niet komen.",
        {"kind": "decline", "mentions_cancellation": True},
        {},
    ),
    (
        "helaas-gemeenteraad",
        "nl",
        "Helaas, ik zit die dag in de gemeenteraad.",
        {"kind": "unclear"},
        {},
    ),
    (
        "unsub-mailinglijst",
        "nl",
        "Haal mij van de mailinglijst, ik ben geen wethouder meer.",
        {"kind": "unclear", "wants_unsubscribe": True},
        {},
    ),
    (
        "unsub-geen-mails-meer",
        "nl",
        "Ik wil geen mails meer ontvangen.",
        {"kind": "unclear", "wants_unsubscribe": True},
        {},
    ),
    (
        "unsub-graag-uitschrijven",
        "nl",
        "graag uitschrijven",
        {"kind": "unclear", "wants_unsubscribe": True},
        {"signature": "none"},
    ),
    (
        "mixed-yes-ik-kom",
        "nl",
        "Yes, ik kom graag! Session wonen please.",
        {"kind": "accept", "session": "wonen"},
        {},
    ),
    (
        "en-count-me-in-housing",
        "en",
        "Count me in — housing session",
        {"kind": "accept", "session": "wonen"},
        {},
    ),
    (
        "en-afraid-colleague-instead",
        "en",
        "I'm afraid I can't make it, but my colleague Jane Doe (jane.doe@gemeente.example) would like to come instead.",
        {"kind": "decline", "substitute": person("Jane Doe", "jane.doe@gemeente.example")},
        {},
    ),
    (
        "en-colleague-will-join-me",
        "en",
        "I'd be happy to attend the education session. My colleague John Smith (j.smith@gemeente.example) will join me.",
        {
            "kind": "accept",
            "session": "onderwijs",
            "companions": [person("John Smith", "j.smith@gemeente.example")],
        },
        {},
    ),
    (
        "en-vegan-question",
        "en",
        "Yes, I'll come to the safety session. I'm vegan - will there be a vegan lunch option?",
        {"kind": "accept", "session": "veiligheid", "dietary": "vegan", "has_question": True},
        {},
    ),
    (
        "en-no-longer-cancel",
        "en",
        "Unfortunately I can no longer attend, please cancel my registration.",
        {"kind": "decline", "mentions_cancellation": True},
        {},
    ),
    (
        "en-unsub-take-me-off",
        "en",
        "Please take me off your mailing list.",
        {"kind": "unclear", "wants_unsubscribe": True},
        {},
    ),
]

# Cases rendered in more than one client (same expected result).
MULTI_CLIENT = {
    "ja-ik-kom-wonen-karin": [
        "gmail",
        "outlook",
        "outlook_html",
        "apple",
        "thunderbird",
        "outlook_original",
    ],
    "helaas-kan-niet": ["gmail", "outlook_html", "apple"],
    "substitute-jansen": ["outlook", "outlook_html"],
    "vraag-met-ja": ["gmail", "outlook_html"],
    "misspelling-veiligheit": ["apple", "outlook"],
    "afmelden-helaas": ["outlook_html", "thunderbird"],
    "en-yes": ["gmail", "outlook_html", "apple"],
    "en-decline": ["outlook", "outlook_original"],
    "dieet-vegetarisch": ["outlook_html", "apple"],
    "companion-email": ["gmail", "outlook_html"],
    "karin-met-email": [
        "gmail",
        "outlook",
        "outlook_html",
        "apple",
        "thunderbird",
        "outlook_original",
    ],
    "karin-zonder-punt": ["gmail", "thunderbird", "outlook_html"],
    "en-count-me-in-housing": ["apple"],  # the em dash needs UTF-8
}
CLIENT_CYCLE = ["gmail", "outlook", "outlook_html", "apple", "thunderbird", "outlook_original"]
TOWNS = ["Zwolle", "Deventer", "Tilburg", "Almere", "Heerlen", "Groningen", "Leiden", "Delft"]
NAMES = [
    "Jan Jansen",
    "Anouk de Boer",
    "Mohamed Amrani",
    "Els Vermeulen",
    "Pieter Hoekstra",
    "Sophie van Leeuwen",
    "Kees Dijkstra",
    "Naima Bouzid",
]


def human_cases() -> list[tuple[Case, Callable[[Case], bytes]]]:
    out: list[tuple[Case, Callable[[Case], bytes]]] = []
    for i, (name, lang, body, expected, opts) in enumerate(HUMAN):
        clients = MULTI_CLIENT.get(name, [CLIENT_CYCLE[i % len(CLIENT_CYCLE)]])
        for client in clients:
            case_name = name if len(clients) == 1 else f"{name}--{client}"
            exp = {**DEFAULTS, **expected, "language": lang}
            case = Case(
                name=case_name,
                client=client,
                body=body,
                expected=exp,
                lang=lang,
                sender_name=NAMES[i % len(NAMES)],
                town=TOWNS[i % len(TOWNS)],
                signature=opts.get(
                    "signature", "en" if lang == "en" else ("nl_short" if i % 3 == 1 else "nl")
                ),
                disclaimer=(i % 4 == 0 and lang == "nl"),
            )
            out.append((case, CLIENTS[client]))
    # Interleaved (bottom-posted) answers.
    for name, body, exp in [
        (
            "interleaved-ja-werk",
            "Ja, ik kom graag: deelsessie werk.",
            {"kind": "accept", "session": "werk"},
        ),
        ("interleaved-nee", "Nee, helaas.", {"kind": "decline"}),
    ]:
        case = Case(
            name, "interleaved", body, {**DEFAULTS, **exp, "language": "nl"}, signature="nl_short"
        )
        out.append((case, interleaved))
    return out


def calendar_cases() -> list[tuple[Case, Callable[[Case], bytes]]]:
    rows: list[tuple[str, str, str, str, dict[str, Any]]] = [
        ("cal-outlook-accept", "outlook", "ACCEPTED", "", {"kind": "accept"}),
        (
            "cal-outlook-accept-text",
            "outlook",
            "ACCEPTED",
            "Graag deelsessie veiligheid.",
            {"kind": "accept", "session": "veiligheid"},
        ),
        ("cal-outlook-decline", "outlook", "DECLINED", "", {"kind": "decline"}),
        ("cal-outlook-tentative", "outlook", "TENTATIVE", "", {"kind": "tentative"}),
        (
            "cal-gmail-accept-comment",
            "gmail",
            "ACCEPTED",
            "Ik kom graag, deelsessie werk; vegetarisch graag",
            {"kind": "accept", "session": "werk", "dietary": "vegetarisch"},
        ),
        (
            "cal-gmail-decline-comment",
            "gmail",
            "DECLINED",
            "Helaas verhinderd, collega Bram Kok komt in mijn plaats",
            {"kind": "decline", "substitute": person("Bram Kok")},
        ),
        ("cal-gmail-tentative", "gmail", "TENTATIVE", "", {"kind": "tentative"}),
        ("cal-gmail-accept-nocomment", "gmail", "ACCEPTED", "", {"kind": "accept"}),
        (
            "cal-gmail-contradiction",
            "gmail",
            "ACCEPTED",
            "Ik kan helaas niet komen.",
            {"kind": "unclear"},
        ),
        (
            "cal-gmail-accept-session-companion",
            "gmail",
            "ACCEPTED",
            "Graag deelsessie onderwijs, samen met mijn collega Rob Jansen (r.jansen@breda.nl)",
            {
                "kind": "accept",
                "session": "onderwijs",
                "companions": [person("Rob Jansen", "r.jansen@breda.nl")],
            },
        ),
        (
            "cal-outlook-accept-wonen-vegetarisch",
            "outlook",
            "ACCEPTED",
            "Ik kies voor de deelsessie wonen. Vegetarisch graag.",
            {"kind": "accept", "session": "wonen", "dietary": "vegetarisch"},
        ),
        (
            "cal-gmail-tentative-session",
            "gmail",
            "TENTATIVE",
            "Nog niet zeker, maar voorkeur voor wonen.",
            {"kind": "tentative", "session": "wonen"},
        ),
        (
            "cal-outlook-decline-substitute",
            "outlook",
            "DECLINED",
            "Helaas verhinderd. In mijn plaats komt Anna de Wit (a.dewit@breda.nl), deelsessie werk.",
            {"kind": "decline", "substitute": person("Anna de Wit", "a.dewit@breda.nl", "werk")},
        ),
        (
            "cal-gmail-accept-en-safety",
            "gmail",
            "ACCEPTED",
            "Looking forward to it. Safety session please.",
            {"kind": "accept", "session": "veiligheid"},
        ),
    ]
    out: list[tuple[Case, Callable[[Case], bytes]]] = []
    for name, client, partstat, body, expected in rows:
        case = Case(
            name,
            f"calendar_{client}",
            body,
            {**DEFAULTS, **expected},
            sender_name="Lotte Smits",
            town="Breda",
            signature="none",
        )
        fn = calendar_outlook if client == "outlook" else calendar_gmail
        out.append((case, partial(_call_calendar, fn, partstat)))
    return out


def _call_calendar(fn: Callable[[Case, str], bytes], partstat: str, case: Case) -> bytes:
    return fn(case, partstat)


def _call_auto(headers: dict[str, str], subject: str, body: str, cte: str, case: Case) -> bytes:
    return auto_reply(case, headers, subject, body, cte)


def auto_cases() -> list[tuple[Case, Callable[[Case], bytes]]]:
    nl_ooo = textwrap.dedent("""\
        Geachte afzender,

        Ik ben afwezig tot en met maandag 16 januari en heb geen toegang tot mijn e-mail.
        Uw bericht wordt niet doorgestuurd. Voor dringende zaken kunt u contact opnemen met het
        secretariaat, 038 498 0000. Ja, ik ben daarna weer aanwezig.

        Met vriendelijke groet,
        Jan Jansen
        """)
    en_ooo = textwrap.dedent("""\
        Thank you for your email. I am out of the office until 16 January with limited access
        to email. For urgent matters please contact my secretary.
        """)
    rows: list[tuple[str, dict[str, str], str, str, str]] = [
        (
            "auto-rfc3834",
            {"Auto-Submitted": "auto-replied"},
            "Automatisch antwoord: " + SUBJECT_NL,
            nl_ooo,
            "8bit",
        ),
        (
            "auto-exchange-headers",
            {
                "X-MS-Exchange-Inbox-Rules-Loop": "jan.jansen@zwolle.nl",
                "X-Auto-Response-Suppress": "All",
            },
            "RE: " + SUBJECT_NL,
            nl_ooo,
            "quoted-printable",
        ),
        ("auto-no-headers-subject", {}, "Automatisch antwoord: " + SUBJECT_NL, nl_ooo, "8bit"),
        (
            "auto-no-headers-afwezig",
            {},
            "Afwezig: " + SUBJECT_NL,
            "Ik ben afwezig tot 20 januari. Ja, uw bericht is ontvangen.",
            "base64",
        ),
        (
            "auto-no-headers-body-only",
            {},
            "RE: " + SUBJECT_NL,
            "Ik ben van 9 januari tot en met 20 januari niet aanwezig. Uw e-mail wordt niet doorgestuurd. Ik kom graag bij u terug.",
            "8bit",
        ),
        (
            "auto-x-autoreply",
            {"X-Autoreply": "yes"},
            "Re: " + SUBJECT_NL,
            "Ja, bedankt voor uw bericht, ik reageer zo snel mogelijk.",
            "8bit",
        ),
        ("auto-x-autorespond", {"X-Autorespond": "Out of office"}, SUBJECT_NL, en_ooo, "8bit"),
        ("auto-precedence", {"Precedence": "auto_reply"}, "Afwezigheidsbericht", nl_ooo, "8bit"),
        ("auto-en-out-of-office", {}, "Out of Office: " + SUBJECT_EN, en_ooo, "8bit"),
        (
            "auto-en-automatic-reply",
            {"Auto-Submitted": "auto-generated"},
            "Automatic reply: " + SUBJECT_EN,
            en_ooo,
            "quoted-printable",
        ),
        (
            "auto-empty-return-path",
            {"Return-Path": "<>"},
            "RE: " + SUBJECT_NL,
            "Bedankt voor uw e-mail. Ik ben momenteel afwezig.",
            "8bit",
        ),
        (
            "auto-niet-aanwezig-tot",
            {},
            "Niet aanwezig",
            "Ik ben niet aanwezig tot 23 januari. Deelsessie-vragen graag aan het secretariaat.",
            "8bit",
        ),
    ]
    out: list[tuple[Case, Callable[[Case], bytes]]] = []
    for name, headers, subject, body, cte in rows:
        case = Case(name, "auto", body, {"kind": "auto_reply", "is_automatic": True})
        out.append((case, partial(_call_auto, headers, subject, body, cte)))
    return out


def bounce_cases() -> list[tuple[Case, Callable[[Case], bytes]]]:
    out: list[tuple[Case, Callable[[Case], bytes]]] = []

    def add(
        name: str, recipients: list[str], permanent: bool, build: Callable[[Case], bytes]
    ) -> None:
        case = Case(
            name,
            "bounce",
            "",
            {
                "kind": "bounce",
                "bounced_recipients": recipients,
                "bounce_permanent": permanent,
                "is_automatic": True,
            },
        )
        out.append((case, build))

    add(
        "bounce-dsn-511",
        ["wethouder.pietersen@gemeente-oud.nl"],
        True,
        lambda c: dsn(
            c,
            recipient="wethouder.pietersen@gemeente-oud.nl",
            action="failed",
            status="5.1.1",
            diagnostic="550 5.1.1 <wethouder.pietersen@gemeente-oud.nl>: Recipient address rejected: User unknown",
            human="This is the mail system at host mx.example.net.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.",
            subject="Undelivered Mail Returned to Sender",
            from_="MAILER-DAEMON@mx.example.net (Mail Delivery System)",
        ),
    )
    add(
        "bounce-dsn-delayed",
        ["a.devries@traag.nl"],
        False,
        lambda c: dsn(
            c,
            recipient="a.devries@traag.nl",
            action="delayed",
            status="4.4.7",
            diagnostic="451 4.4.7 Message delayed",
            human="Delivery to the following recipient has been delayed:\n\n    a.devries@traag.nl\n\nMessage will be retried for 2 more day(s)",
            subject="Delivery Status Notification (Delay)",
            from_="Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        ),
    )
    add(
        "bounce-exchange-onbestelbaar",
        ["m.bakker@gemeente-x.nl"],
        True,
        lambda c: dsn(
            c,
            recipient="m.bakker@gemeente-x.nl",
            action="failed",
            status="5.1.10",
            diagnostic="smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            human="Uw bericht kan niet worden bezorgd bij m.bakker@gemeente-x.nl omdat het adres niet is gevonden.\nDe levering is mislukt voor deze ontvangers of groepen:\n\nm.bakker@gemeente-x.nl",
            subject="Onbestelbaar: " + SUBJECT_NL,
            from_="Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@gemeente-x.nl>",
        ),
    )
    add(
        "bounce-dsn-headers-only",
        ["info@opgeheven.nl"],
        True,
        lambda c: dsn(
            c,
            recipient="info@opgeheven.nl",
            action="failed",
            status="5.0.0",
            diagnostic="550 mailbox unavailable",
            human="Niet bezorgd: de ontvanger bestaat niet.",
            subject="Niet bezorgd: " + SUBJECT_NL,
            from_="postmaster@mx.opgeheven.nl",
            headers_only=True,
        ),
    )
    add(
        "bounce-mailbox-full-delayed",
        ["k.vos@drukbezet.nl"],
        False,
        lambda c: dsn(
            c,
            recipient="k.vos@drukbezet.nl",
            action="delayed",
            status="4.2.2",
            diagnostic="452 4.2.2 Mailbox full",
            human="Warning: message still undelivered after 4 hours. Will keep trying.",
            subject="Warning: could not send message for past 4 hours",
            from_="Mail Delivery Subsystem <MAILER-DAEMON@relay.example.net>",
        ),
    )

    def qmail(c: Case) -> bytes:
        head = textwrap.dedent(f"""\
            Return-Path: <>
            From: MAILER-DAEMON@mail.kleingemeente.nl
            To: bounces@{REPLY_DOMAIN}
            Subject: failure notice
            Date: Wed, 11 Jan 2023 09:05:00 +0100
            Message-ID: <qmail-{c.name}@mail.kleingemeente.nl>

            Hi. This is the qmail-send program at mail.kleingemeente.nl.
            I'm afraid I wasn't able to deliver your message to the following addresses.
            This is a permanent error; I've given up. Sorry it didn't work out.

            <griffie@kleingemeente.nl>:
            Sorry, no mailbox here by that name. (#5.1.1)

            --- Below this line is a copy of the message.

            """)
        return plain_bounce(c, head + _original_invitation(c.token, "griffie@kleingemeente.nl"))

    add("bounce-qmail", ["griffie@kleingemeente.nl"], True, qmail)

    def exchange_text(c: Case) -> bytes:
        return plain_bounce(
            c,
            textwrap.dedent(f"""\
            From: Postmaster <postmaster@gemeente-y.nl>
            To: bounces@{REPLY_DOMAIN}
            Subject: Onbestelbaar: {SUBJECT_NL}
            Date: Wed, 11 Jan 2023 09:05:00 +0100
            Message-ID: <ndr-{c.name}@gemeente-y.nl>
            Content-Type: text/plain; charset=utf-8

            Uw bericht heeft sommige of alle ontvangers niet bereikt.

            Onderwerp: {SUBJECT_NL}
            Verzonden op: 11-1-2023 09:02

            Het bericht kan niet worden bezorgd bij de volgende ontvanger(s):

            wethouder.smit@gemeente-y.nl op 11-1-2023 09:02
                Het e-mailadres dat u hebt ingevoerd, is onjuist. #550 5.1.1 RESOLVER.ADR.RecipNotFound ##

            rsvp:{c.token}
            """),
        )

    add("bounce-exchange-text-nl", ["wethouder.smit@gemeente-y.nl"], True, exchange_text)
    return out


def subject_cases() -> list[tuple[Case, Callable[[Case], bytes]]]:
    """Answers in the subject, List-Unsubscribe requests, a PS below the signature, forwards."""
    out: list[tuple[Case, Callable[[Case], bytes]]] = []

    def add(
        name: str,
        client: str,
        body: str,
        expected: dict[str, Any],
        *,
        subject: str | None = None,
        signature: str = "nl",
        postscript: str = "",
        lang: str = "nl",
    ) -> None:
        case = Case(
            name,
            client,
            body,
            {**DEFAULTS, **expected},
            lang=lang,
            sender_name="Ruud van Dam",
            town="Zaanstad",
            signature=signature,
            subject=subject,
            postscript=postscript,
        )
        render = {"forwarded": forwarded, "unsubscribe": unsubscribe_mailto, **CLIENTS}[client]
        out.append((case, render))

    # Only a subject: read what the sender typed there, never what we sent.
    add("subject-ja-ik-kom", "gmail", "", {"kind": "accept", "language": "nl"},
        subject="Ja, ik kom", signature="none")  # fmt: skip
    add("subject-re-uitnodiging-ja", "outlook", "", {"kind": "accept"},
        subject=f"RE: {SUBJECT_NL} — ja", signature="none")  # fmt: skip
    add("subject-marker-nee", "thunderbird", "", {"kind": "decline"},
        subject=f"Re: {SUBJECT_NL} [rsvp:{token_for('subject-marker-nee')}] Nee, helaas",
        signature="none")  # fmt: skip
    add("subject-ja-werk-zie-onderwerp", "gmail", "Zie onderwerp.",
        {"kind": "accept", "session": "werk"},
        subject="Ja graag, deelsessie werk", signature="nl_short")  # fmt: skip
    add("subject-ours-afmelding-leeg", "outlook", "", {"kind": "unclear"},
        subject="RE: Uw afmelding is verwerkt: Leren van Rotterdam Zuid", signature="none")  # fmt: skip
    add("subject-ours-komt-u-ook-leeg", "gmail", "", {"kind": "unclear"},
        subject="Re: Komt u ook? Leren van Rotterdam Zuid op 1 feb", signature="none")  # fmt: skip
    add("subject-body-wins", "outlook", "Helaas kan ik niet.", {"kind": "decline"},
        subject="Ja, ik kom")  # fmt: skip
    # List-Unsubscribe mailto (subject and body from our header; Gmail writes its own body).
    add("unsub-gmail-one-click", "unsubscribe",
        "This message was automatically generated by Gmail.",
        {"kind": "unclear", "wants_unsubscribe": True, "is_automatic": False},
        subject="unsubscribe", signature="none")  # fmt: skip
    add("unsub-mailto-body", "unsubscribe", "unsubscribe",
        {"kind": "unclear", "wants_unsubscribe": True, "is_automatic": False},
        subject="unsubscribe", signature="none")  # fmt: skip
    # A PS below the signature is the writer's own word.
    add("ps-onder-handtekening", "thunderbird", "Dank voor de uitnodiging!",
        {"kind": "accept", "session": "onderwijs"},
        postscript="PS Ik kom graag, deelsessie onderwijs.")  # fmt: skip
    add("ps-collega-onder-handtekening", "gmail", "Ja, ik kom graag, deelsessie wonen.",
        {"kind": "accept", "session": "wonen",
         "companions": [person("Karin Smit", "k.smit@gemeente.example")]},
        signature="nl_short",
        postscript="P.S. Mijn collega Karin Smit (k.smit@gemeente.example) komt ook mee.")  # fmt: skip
    add("ps-outlook-dieet", "outlook", "Ik kom, deelsessie werk.",
        {"kind": "accept", "session": "werk", "dietary": "glutenvrij"},
        postscript="PS: graag glutenvrij")  # fmt: skip
    # Forwarded, then answered on top.
    add("doorgestuurd-secretaresse-meldt-aan", "forwarded",
        "Hierbij meld ik wethouder Van Dam aan voor de deelsessie veiligheid.",
        {"kind": "accept", "session": "veiligheid"}, signature="nl_short")  # fmt: skip
    add("doorgestuurd-ja-met-collega", "forwarded",
        "Ja, ik kom graag met mijn collega Fleur ter Horst (f.terhorst@zaanstad.nl). Werk.",
        {"kind": "accept", "session": "werk",
         "companions": [person("Fleur ter Horst", "f.terhorst@zaanstad.nl")]})  # fmt: skip
    return out


# --- forwards: a forwarded message at the top ------------------------------------------------
#
# A secretary forwards the wethouder's own answer, or someone forwards the invitation itself.
# With nothing of the sender's own above it, the forwarded words are someone else's: unclear,
# for a human, with the forwarded text kept in reply_text. With words above it, those words are
# the answer, read as usual; words that only point at the forward ("Zie hieronder.") leave it
# unclear, and reply_text then shows the forwarded text too, after the sender's words.

WETHOUDER = "Jan Jansen"
WETHOUDER_ADDRESS = "jan.jansen@zaanstad.nl"
SECRETARIAT = "Secretariaat Wethouders <secretariaat@zaanstad.nl>"


def _wethouder_answer(case: Case, text: str) -> str:
    """The wethouder's reply to the invitation (his words above the quoted invitation), as the
    secretary received it."""
    if case.lang == "nl":
        header = [
            f"Van: {WETHOUDER} <{WETHOUDER_ADDRESS}>",
            "Verzonden: dinsdag 10 januari 2023 16:40",
            f"Aan: {SECRETARIAT}",
            f"Onderwerp: RE: {SUBJECT_NL}",
        ]
    else:
        header = [
            f"From: {WETHOUDER} <{WETHOUDER_ADDRESS}>",
            "Sent: Tuesday, January 10, 2023 4:40 PM",
            f"To: {SECRETARIAT}",
            f"Subject: RE: {SUBJECT_EN}",
        ]
    # The invitation he answered went to him, not to the secretary who forwards it now.
    invited = [
        line.replace(f"{case.sender_name} <{case.sender}>", f"{WETHOUDER} <{WETHOUDER_ADDRESS}>")
        for line in _outlook_header_block(case)
    ]
    return "\n".join(
        [*header, "", text, "", WETHOUDER, "", "________________________________",
         *invited, "", _invitation(case)]
    )  # fmt: skip


def _forward_text(case: Case, opening: list[str], forwarded: str) -> str:
    own = _own_part(case) if case.body or case.signature != "none" else ""
    return f"{own}\n\n" + "\n".join(opening) + "\n" + forwarded


def forward_outlook(case: Case, answer: str) -> bytes:
    """Outlook "Doorsturen" (FW:) of the wethouder's answer, plain text, windows-1252."""
    msg = _base(case, "FW: RE: ")
    forwarded = _wethouder_answer(case, answer)
    text = _forward_text(case, ["________________________________"], forwarded)
    msg.set_content(text, charset="windows-1252", cte="quoted-printable")
    return msg.as_bytes()


def forward_outlook_old(case: Case, answer: str) -> bytes:
    """Older Outlook: "-----Doorgestuurd bericht-----" above the header block."""
    msg = _base(case, "Doorst: RE: " if case.lang == "nl" else "FW: RE: ")
    sep = "-----Doorgestuurd bericht-----" if case.lang == "nl" else "-----Forwarded Message-----"
    text = _forward_text(case, [sep], _wethouder_answer(case, answer))
    msg.set_content(text, charset="iso-8859-1", cte="8bit")
    return msg.as_bytes()


def forward_outlook_html(case: Case, answer: str) -> bytes:
    """Outlook HTML-only forward; the subject the wethouder typed ("Ja, ik kom") comes along
    after "FW:" and must not be read as the sender's answer either."""
    msg = _base(case, "FW: ")
    forwarded = _wethouder_answer(case, answer)
    paras = "\n".join(
        f"<p class=MsoNormal>{html.escape(line)}<o:p></o:p></p>" if line
        else "<p class=MsoNormal><o:p>&nbsp;</o:p></p>"
        for line in forwarded.splitlines()
    )  # fmt: skip
    doc = f"""<html><head><meta http-equiv=Content-Type content="text/html; charset=windows-1252">
</head><body lang=NL><div class=WordSection1>
<p class=MsoNormal><o:p>&nbsp;</o:p></p>
<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>
{paras}
</div></div></body></html>
"""
    msg.set_content(doc, subtype="html", charset="windows-1252", cte="quoted-printable")
    return msg.as_bytes()


def forward_apple(case: Case) -> bytes:
    """iPhone Mail forwarding the invitation itself: "Begin doorgestuurd bericht:" and the
    forwarded mail quoted with "> ", under the device line."""
    msg = _base(case, "Fwd: ")
    if case.lang == "nl":
        intro, device = "Begin doorgestuurd bericht:", "Verstuurd vanaf mijn iPhone"
        head = [f"Van: {ORGANISER}", "Datum: 11 januari 2023 om 09:02:00 CET",
                f"Aan: {case.sender_name} <{case.sender}>", f"Onderwerp: {SUBJECT_NL}"]  # fmt: skip
    else:
        intro, device = "Begin forwarded message:", "Sent from my iPhone"
        head = [f"From: {ORGANISER}", "Date: 11 January 2023 at 09:02:00 CET",
                f"To: {case.sender_name} <{case.sender}>", f"Subject: {SUBJECT_EN}"]  # fmt: skip
    own = f"{case.body.rstrip()}\n\n" if case.body else ""
    quoted = _quote("\n".join([*head, "", _invitation(case)]))
    msg.set_content(f"{own}{device}\n\n{intro}\n\n{quoted}\n", charset="utf-8", cte="base64")
    return msg.as_bytes()


def forward_gmail(case: Case) -> bytes:
    """Gmail forwarding the invitation itself, nothing typed above it."""
    msg = _base(case, "Fwd: ")
    block = [
        "---------- Forwarded message ---------",
        f"From: {ORGANISER}",
        "Date: Wed, Jan 11, 2023 at 9:02 AM",
        f"Subject: {SUBJECT_NL if case.lang == 'nl' else SUBJECT_EN}",
        f"To: {case.sender_name} <{case.sender}>",
    ]
    text = "\n".join(block) + "\n\n\n" + _invitation(case)
    msg.set_content(text, charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()


def forward_cases() -> list[tuple[Case, Callable[[Case], bytes]]]:
    out: list[tuple[Case, Callable[[Case], bytes]]] = []
    nothing_own = {"kind": "unclear", "forwarded_only": True}

    def add(
        name: str,
        render: Callable[[Case], bytes],
        body: str,
        expected: dict[str, Any],
        *,
        lang: str = "nl",
        signature: str = "none",
        subject: str | None = None,
    ) -> None:
        client = getattr(render, "func", render).__name__
        case = Case(name, client, body, {**DEFAULTS, "language": lang, **expected}, lang=lang,
                    sender_name="Petra Visser", town="Zaanstad", signature=signature,
                    subject=subject)  # fmt: skip
        out.append((case, render))

    answer_nl = "Ja, ik ga graag. Zet me maar op de deelsessie wonen."
    answer_en = "Yes, I will attend. Housing session please."
    # Nothing of the sender's own: the forwarded words are never read.
    add("fw-outlook-antwoord-wethouder", partial(forward_outlook, answer=answer_nl), "",
        nothing_own)  # fmt: skip
    add("fw-outlook-oud-doorgestuurd-bericht", partial(forward_outlook_old, answer=answer_nl), "",
        nothing_own, signature="nl_short")  # fmt: skip
    add("fw-outlook-html-onderwerp-ja", partial(forward_outlook_html, answer=answer_nl), "",
        nothing_own, subject="FW: Ja, ik kom graag")  # fmt: skip
    add("fw-outlook-en-answer", partial(forward_outlook, answer=answer_en), "",
        {**nothing_own, "language": "en"}, lang="en")  # fmt: skip
    add("fw-apple-uitnodiging", forward_apple, "", nothing_own)
    add("fw-apple-en-invitation", forward_apple, "", {**nothing_own, "language": "en"},
        lang="en")  # fmt: skip
    add("fw-gmail-uitnodiging", forward_gmail, "", nothing_own)
    # Words of their own above the forward: read as usual.
    add("fw-outlook-secretaresse-boven", partial(forward_outlook, answer=answer_nl),
        "Namens wethouder Jansen laat ik u weten dat hij graag komt, deelsessie veiligheid.",
        {"kind": "accept", "session": "veiligheid", "forwarded_only": False,
         "forward_shown": False}, signature="nl_short")  # fmt: skip
    add("fw-apple-ik-kom-boven", forward_apple, "Ik kom graag, deelsessie werk.",
        {"kind": "accept", "session": "werk", "forwarded_only": False})  # fmt: skip
    # Own words that only point at the forward: unclear, and the reviewer sees both (the
    # forward marked as such), but the forwarded words are still not read.
    pointing = {"kind": "unclear", "forwarded_only": False, "forward_shown": True}
    add("fw-outlook-zie-hieronder", partial(forward_outlook_old, answer=answer_nl),
        "Zie hieronder.", pointing,
        signature="nl_short", subject="FW: RE: Ja, ik kom graag")  # fmt: skip
    add("fw-outlook-en-see-below", partial(forward_outlook, answer=answer_en),
        "Please see the message from our alderman below.", {**pointing, "language": "en"},
        lang="en", signature="en")  # fmt: skip
    return out


# --- forwards sent as an attachment ----------------------------------------------------------
#
# "Forward as attachment" (Outlook, Apple Mail, Thunderbird; a dragged-in .eml file) puts the
# forwarded mail in a message/rfc822 part of its own. Read as an inline forward: the sender's
# words are the answer; the attached message (and its subject, repeated as "FW: …") never is.
# With nothing of the sender's own, or only "Zie bijlage.", it is unclear and reply_text shows
# the attached message (From/Date/Subject and its text, HTML converted) to the reviewer.


def _wethouder_mail(
    case: Case, answer: str, *, html_only: bool = False, subject: str | None = None
) -> EmailMessage:
    """The wethouder's own reply to the invitation, as it sits in the secretary's mailbox."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"{WETHOUDER} <{WETHOUDER_ADDRESS}>"
    msg["To"] = SECRETARIAT
    msg["Subject"] = subject or f"RE: {SUBJECT_NL if case.lang == 'nl' else SUBJECT_EN}"
    msg["Date"] = "Tue, 10 Jan 2023 16:40:00 +0100"
    msg["Message-ID"] = f"<antwoord-{case.token[:8]}@zaanstad.nl>"
    invited = "\n".join(_outlook_header_block(case))
    text = f"{answer}\n\n{WETHOUDER}\n\n________________________________\n{invited}\n\n{_invitation(case)}"
    if html_only:
        paras = "\n".join(
            f"<p class=MsoNormal>{html.escape(line)}<o:p></o:p></p>" if line
            else "<p class=MsoNormal><o:p>&nbsp;</o:p></p>"
            for line in text.splitlines()
        )  # fmt: skip
        doc = f"<html><body lang=NL><div class=WordSection1>\n{paras}\n</div></body></html>\n"
        msg.set_content(doc, subtype="html", charset="windows-1252", cte="quoted-printable")
    else:
        msg.set_content(text, charset="windows-1252", cte="quoted-printable")
    return msg


def _invitation_mail(case: Case) -> EmailMessage:
    """Our invitation as the invitee received it."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = ORGANISER
    msg["Reply-To"] = f"aanmelden+{case.token}@{REPLY_DOMAIN}"
    msg["To"] = f"{case.sender_name} <{case.sender}>"
    msg["Subject"] = SUBJECT_NL if case.lang == "nl" else SUBJECT_EN
    msg["Date"] = "Wed, 11 Jan 2023 09:02:00 +0100"
    msg["Message-ID"] = f"<invite-{case.token[:8]}@{REPLY_DOMAIN}>"
    msg.set_content(_invitation(case), charset="utf-8", cte="quoted-printable")
    return msg


def _unrelated_mail(case: Case) -> EmailMessage:
    """A colleague's mail about something else, with words that would read as a decline."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Karin Smit <k.smit@zaanstad.nl>"
    msg["To"] = f"{case.sender_name} <{case.sender}>"
    msg["Subject"] = "Overleg wijkteams"
    msg["Date"] = "Mon, 9 Jan 2023 11:05:00 +0100"
    msg["Message-ID"] = f"<overleg-{case.token[:8]}@zaanstad.nl>"
    msg.set_content(
        "Hoi Petra,\n\nHelaas kan ik niet op 1 februari, ik moet mij afmelden voor het overleg."
        "\nDeelsessie veiligheid bespreken we later.\n\nGroet,\nKarin\n",
        charset="utf-8", cte="quoted-printable",
    )  # fmt: skip
    return msg


def _out_of_office_mail(case: Case) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"{WETHOUDER} <{WETHOUDER_ADDRESS}>"
    msg["To"] = SECRETARIAT
    msg["Subject"] = f"Automatisch antwoord: {SUBJECT_NL}"
    msg["Date"] = "Wed, 11 Jan 2023 09:02:30 +0100"
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(
        "Ik ben van 9 januari tot en met 20 januari afwezig. Uw bericht wordt niet doorgestuurd."
        "\nBij dringende zaken kunt u contact opnemen met het secretariaat.\n",
        charset="utf-8", cte="quoted-printable",
    )  # fmt: skip
    return msg


def _eml_name(subject: str) -> str:
    """The file name clients give the attached message: its subject, without ":"."""
    return subject.replace(":", "").strip() + ".eml"


def attached_outlook(case: Case, inner: Callable[[Case], EmailMessage]) -> bytes:
    """Outlook "Forward as attachment": plain and HTML alternatives, then the .eml."""
    attached = inner(case)
    msg = _base(case, "FW: ")
    if case.subject is None:
        del msg["Subject"]
        msg["Subject"] = f"FW: {attached['Subject']}"
    own = _own_part(case) if case.body or case.signature != "none" else ""
    msg.set_content(f"{own}\n", charset="windows-1252", cte="quoted-printable")
    own_html = "\n".join(
        f"<p class=MsoNormal>{html.escape(line)}<o:p></o:p></p>" if line
        else "<p class=MsoNormal><o:p>&nbsp;</o:p></p>"
        for line in own.splitlines()
    )  # fmt: skip
    doc = f"<html><body lang=NL><div class=WordSection1>\n{own_html}\n</div></body></html>\n"
    msg.add_alternative(doc, subtype="html", charset="windows-1252", cte="quoted-printable")
    msg.set_boundary(f"_000_{case.token[:16]}_")  # stays with the alternatives below
    msg.add_attachment(attached, filename=_eml_name(str(attached["Subject"])))
    msg.set_boundary(f"_004_{case.token[:16]}_")
    return msg.as_bytes()


def attached_apple(case: Case, inner: Callable[[Case], EmailMessage]) -> bytes:
    """Apple Mail (macOS) "Forward as Attachment": a plain part (empty when nothing was typed)
    and the message inline-disposed, under "Fwd: <its subject>"."""
    attached = inner(case)
    msg = _base(case, "Fwd: ")
    if case.subject is None:
        del msg["Subject"]
        msg["Subject"] = f"Fwd: {attached['Subject']}"
    own = f"{case.body.rstrip()}\n" if case.body else ""
    msg.set_content(own, charset="us-ascii" if own.isascii() else "utf-8", cte="7bit")
    msg.add_attachment(attached, disposition="inline", filename=_eml_name(str(attached["Subject"])))
    msg.set_boundary(
        f"Apple-Mail={case.token[:8].upper()}-0000-4000-8000-{case.token[8:20].upper()}"
    )
    return msg.as_bytes()


def attached_thunderbird(case: Case, inner: Callable[[Case], EmailMessage]) -> bytes:
    """Thunderbird "Forward As Attachment" with its old bracketed subject "[Fwd: …]"."""
    attached = inner(case)
    msg = _base(case, "")
    if case.subject is None:
        del msg["Subject"]
        msg["Subject"] = f"[Fwd: {attached['Subject']}]"
    msg["User-Agent"] = "Mozilla Thunderbird"
    own = _own_part(case) if case.body or case.signature != "none" else ""
    msg.set_content(f"{own}\n", charset="utf-8", cte="8bit")
    msg.add_attachment(attached, filename=_eml_name(str(attached["Subject"])))
    msg.set_boundary(f"------------{case.token[:24]}")
    return msg.as_bytes()


def attached_eml_only(case: Case, inner: Callable[[Case], EmailMessage]) -> bytes:
    """A saved .eml dragged into a new message, nothing typed: no text part of the sender's
    at all, and the subject the attached message's own, without a prefix."""
    attached = inner(case)
    msg = _base(case, "")
    del msg["Subject"]
    msg["Subject"] = str(attached["Subject"])
    msg["MIME-Version"] = "1.0"
    msg.make_mixed()
    msg.add_attachment(attached, filename=_eml_name(str(attached["Subject"])))
    msg.set_boundary(f"----=_Part_{case.token[:12]}")
    return msg.as_bytes()


def attached_cases() -> list[tuple[Case, Callable[[Case], bytes]]]:
    out: list[tuple[Case, Callable[[Case], bytes]]] = []

    def add(
        name: str,
        render: Callable[..., bytes],
        inner: Callable[[Case], EmailMessage],
        body: str,
        expected: dict[str, Any],
        *,
        lang: str = "nl",
        signature: str = "none",
        subject: str | None = None,
    ) -> None:
        case = Case(name, render.__name__, body, {**DEFAULTS, "language": lang, **expected},
                    lang=lang, sender_name="Petra Visser", town="Zaanstad", signature=signature,
                    subject=subject)  # fmt: skip
        out.append((case, partial(render, inner=inner)))

    answer_nl = partial(
        _wethouder_mail, answer="Ja, ik ga graag. Zet me maar op de deelsessie wonen."
    )
    answer_en = partial(_wethouder_mail, answer="Yes, I will attend. Housing session please.")
    answer_html = partial(
        _wethouder_mail, answer="Ja, ik kom graag, deelsessie werk.", html_only=True
    )
    nothing_own = {"kind": "unclear", "forwarded_only": True, "attached_shown": True}
    # Nothing of the sender's own (at most a signature): the attached words are never read.
    add("fwa-outlook-antwoord-wethouder", attached_outlook, answer_nl, "", nothing_own)
    add("fwa-outlook-alleen-handtekening", attached_outlook, answer_nl, "", nothing_own,
        signature="nl_short")  # fmt: skip
    add("fwa-outlook-en-answer", attached_outlook, answer_en, "",
        {**nothing_own, "language": "en"}, lang="en", signature="en")  # fmt: skip
    add("fwa-apple-uitnodiging", attached_apple, _invitation_mail, "", nothing_own)
    add("fwa-thunderbird-html-antwoord", attached_thunderbird, answer_html, "", nothing_own)
    # The wethouder typed his answer as the subject; the secretary sends his mail on as is.
    subject_ja = partial(_wethouder_mail, answer="Petra, wil je mij aanmelden? Deelsessie wonen.",
                         subject="Ja, ik kom graag")  # fmt: skip
    add("fwa-eml-zonder-tekst-onderwerp-ja", attached_eml_only, subject_ja, "", nothing_own)
    # Words of their own beside the attachment: the answer, read as usual.
    add("fwa-outlook-ja-wonen-los-bericht", attached_outlook, _unrelated_mail,
        "Ja, ik kom, deelsessie wonen", {"kind": "accept", "session": "wonen",
        "forwarded_only": False, "forward_shown": False, "attached_shown": False},
        subject=f"RE: {SUBJECT_NL}")  # fmt: skip
    add("fwa-outlook-secretaresse-kan-niet", attached_outlook, answer_nl,
        "Namens wethouder Jansen laat ik u weten dat hij helaas verhinderd is.",
        {"kind": "decline", "forwarded_only": False, "attached_shown": False},
        signature="nl_short")  # fmt: skip
    # Words that only point at the attachment: unclear, and the reviewer sees it, unread.
    pointing = {"kind": "unclear", "forwarded_only": False, "forward_shown": True,
                "attached_shown": True}  # fmt: skip
    add("fwa-outlook-zie-bijlage", attached_outlook, answer_nl, "Zie bijlage.", pointing,
        signature="nl_short")  # fmt: skip
    add("fwa-apple-en-see-attached", attached_apple, answer_en,
        "Please see the attached message from our alderman.",
        {**pointing, "language": "en"}, lang="en")  # fmt: skip
    # A forwarded out-of-office is not the sender's own: not auto_reply.
    add("fwa-outlook-afwezig-zie-bijlage", attached_outlook, _out_of_office_mail,
        "Zie bijlage.", pointing, signature="nl_short")  # fmt: skip
    return out


# --- Amazon SES notices (SNS e-mail subscription) --------------------------------------------

SNS_FOOTER = (
    "--\nIf you wish to stop receiving notifications from this topic, please click or visit the "
    "link below to unsubscribe:\nhttps://sns.eu-west-1.amazonaws.com/unsubscribe.html?"
    "SubscriptionArn=arn:aws:sns:eu-west-1:123456789012:rsvpmail-ses:5f0c1f8e-2b1d-4c43-9a8e-"
    "0d1f3c2b7a11&Endpoint=bounces@wijkwijzer.example\n\nPlease do not reply directly to this "
    "email. If you have any questions or comments regarding this email, please contact us at "
    "https://aws.amazon.com/support"
)


def _ses_mail(case: Case, recipients: list[str]) -> dict[str, Any]:
    """The "mail" object: the invitation SES sent, with its original headers."""
    reply_to = f"aanmelden+{case.token}@{REPLY_DOMAIN}"
    message_id = f"<invite-{case.token[:8]}@{REPLY_DOMAIN}>"
    return {
        "timestamp": "2023-01-11T08:02:08.412Z",
        "source": f"aanmelden@{REPLY_DOMAIN}",
        "sourceArn": f"arn:aws:ses:eu-west-1:123456789012:identity/{REPLY_DOMAIN}",
        "sourceIp": "192.0.2.10",
        "callerIdentity": "rsvpmail-smtp",
        "sendingAccountId": "123456789012",
        "messageId": f"0102018599a3{case.token[:20]}-000000",
        "destination": recipients,
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": ORGANISER},
            {"name": "Reply-To", "value": reply_to},
            {"name": "To", "value": ", ".join(recipients)},
            {"name": "Subject", "value": SUBJECT_NL},
            {"name": "Message-ID", "value": message_id},
            {"name": "MIME-Version", "value": "1.0"},
        ],
        "commonHeaders": {
            "from": [ORGANISER],
            "replyTo": [reply_to],
            "to": recipients,
            "messageId": message_id,
            "subject": SUBJECT_NL,
        },
    }


def _ses_bounce(case: Case, bounce_type: str, sub_type: str, rows: list[tuple[str, str, str]]
                ) -> dict[str, Any]:  # fmt: skip
    return {
        "notificationType": "Bounce",
        "bounce": {
            "feedbackId": f"0102018599a3{case.token[:20]}-feedback-000000",
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {
                    "emailAddress": addr,
                    "action": "failed",
                    "status": status,
                    "diagnosticCode": f"smtp; {diagnostic}",
                }
                for addr, status, diagnostic in rows
            ],
            "timestamp": "2023-01-11T08:02:10.000Z",
            "remoteMtaIp": "192.0.2.25",
            "reportingMTA": "dsn; a4-25.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": _ses_mail(case, [addr for addr, _, _ in rows]),
    }


def _ses_complaint(case: Case, recipient: str) -> dict[str, Any]:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "feedbackId": f"0102018599a3{case.token[:20]}-complaint-000000",
            "complaintSubType": None,
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": "2023-01-11T09:40:00.000Z",
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2023-01-11T08:02:09.000Z",
        },
        "mail": _ses_mail(case, [recipient]),
    }


def _ses_delivery(case: Case, recipient: str) -> dict[str, Any]:
    return {
        "notificationType": "Delivery",
        "delivery": {
            "timestamp": "2023-01-11T08:02:09.512Z",
            "processingTimeMillis": 1100,
            "recipients": [recipient],
            "smtpResponse": "250 2.0.0 OK 1673424129 q5si1234567ejx.1 - gsmtp",
            "remoteMtaIp": "192.0.2.30",
            "reportingMTA": "a4-25.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": _ses_mail(case, [recipient]),
    }


def _sendmail_wrap(line: str, width: int = 990) -> str:
    """What sendmail does to a line over the SMTP limit: break it with "!", newline, space."""
    pieces = [line[i : i + width] for i in range(0, len(line), width)]
    return "!\n ".join(pieces)


def ses_notice(case: Case, notice: dict[str, Any], *, envelope: bool, wrap: bool) -> bytes:
    """An SNS e-mail notification: the notice as compact JSON (protocol "email") or inside
    SNS's pretty-printed envelope (protocol "email-json"), 7bit, with SNS's footer."""
    compact = json.dumps(notice, separators=(",", ":"))
    if envelope:
        body = json.dumps(
            {
                "Type": "Notification",
                "MessageId": f"5c4f0e1a-{case.token[:4]}-5b2c-9d1e-3f7a2b6c8d90",
                "TopicArn": "arn:aws:sns:eu-west-1:123456789012:rsvpmail-ses",
                "Message": compact,
                "Timestamp": "2023-01-11T08:02:10.731Z",
                "SignatureVersion": "1",
                "Signature": base64.b64encode(
                    hashlib.sha256(compact.encode()).digest() * 8
                ).decode(),
                "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem",
                "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:eu-west-1:123456789012:rsvpmail-ses:5f0c1f8e-2b1d-4c43-9a8e-0d1f3c2b7a11",
            },
            indent=2,
            separators=(",", " : "),
        )
        body = "\n".join(_sendmail_wrap(line) if wrap else line for line in body.splitlines())
    else:
        body = _sendmail_wrap(compact) if wrap else compact
    head = textwrap.dedent(f"""\
        Return-Path: <0102018599a3{case.token[:20]}-000000@eu-west-1.amazonses.com>
        Date: Wed, 11 Jan 2023 08:02:11 +0000
        From: AWS Notifications <no-reply@sns.amazonaws.com>
        To: bounces@{REPLY_DOMAIN}
        Message-ID: <0102018599a3{case.token[:20]}-000000@eu-west-1.amazonses.com>
        Subject: AWS Notification Message
        MIME-Version: 1.0
        Content-Type: text/plain; charset=UTF-8
        Content-Transfer-Encoding: 7bit
        x-amz-sns-message-id: 5c4f0e1a-{case.token[:4]}-5b2c-9d1e-3f7a2b6c8d90
        x-amz-sns-subscription-arn: arn:aws:sns:eu-west-1:123456789012:rsvpmail-ses:5f0c1f8e-2b1d-4c43-9a8e-0d1f3c2b7a11
        Feedback-ID: 1.eu-west-1.KzC8sR1zSTHQ4SPbyy7P5Qn3xGMYeS9dUjGqUOt1Y8A=:AmazonSES

        """)
    return (head + body + "\n\n" + SNS_FOOTER + "\n").replace("\n", "\r\n").encode("utf-8")


def ses_cases() -> list[tuple[Case, Callable[[Case], bytes]]]:
    out: list[tuple[Case, Callable[[Case], bytes]]] = []

    def add(
        name: str,
        expected: dict[str, Any],
        notice: Callable[[Case], dict[str, Any]],
        *,
        envelope: bool = False,
        wrap: bool = False,
    ) -> None:
        case = Case(name, "ses", "", {**expected, "is_automatic": True})

        def render(c: Case) -> bytes:
            return ses_notice(c, notice(c), envelope=envelope, wrap=wrap)

        out.append((case, render))  # fmt: skip

    def bounce(recipients: list[str], permanent: bool) -> dict[str, Any]:
        return {"kind": "bounce", "bounced_recipients": recipients, "bounce_permanent": permanent}

    add("ses-bounce-permanent", bounce(["wethouder.pietersen@gemeente-oud.nl"], True),
        lambda c: _ses_bounce(c, "Permanent", "General", [
            ("wethouder.pietersen@gemeente-oud.nl", "5.1.1",
             "550 5.1.1 <wethouder.pietersen@gemeente-oud.nl>: Recipient address rejected: User unknown")]),
        wrap=True)  # fmt: skip
    add("ses-bounce-transient-mailbox-full", bounce(["k.vos@drukbezet.nl"], False),
        lambda c: _ses_bounce(c, "Transient", "MailboxFull", [
            ("k.vos@drukbezet.nl", "4.2.2", "452 4.2.2 Mailbox full")]))  # fmt: skip
    add("ses-bounce-sns-envelope",
        bounce(["griffie@kleingemeente.nl", "info@opgeheven.nl"], True),
        lambda c: _ses_bounce(c, "Permanent", "NoEmail", [
            ("griffie@kleingemeente.nl", "5.1.1", "550 5.1.1 No such user"),
            ("info@opgeheven.nl", "5.1.2", "550 5.1.2 Host unknown")]),
        envelope=True, wrap=True)  # fmt: skip
    add("ses-complaint", {"kind": "unclear"},
        lambda c: _ses_complaint(c, "m.bakker@gemeente-x.nl"))  # fmt: skip
    add("ses-delivery", {"kind": "auto_reply"},
        lambda c: _ses_delivery(c, "a.devries@traag.nl"), envelope=True)  # fmt: skip
    return out


def all_cases() -> list[tuple[Case, Callable[[Case], bytes]]]:
    return (
        human_cases() + calendar_cases() + auto_cases() + bounce_cases() + subject_cases()
        + forward_cases() + attached_cases() + ses_cases()
    )  # fmt: skip


def build() -> dict[str, dict[str, Any]]:
    """Render every case: {file name: (bytes, expected)}."""
    result: dict[str, dict[str, Any]] = {}
    for case, render in all_cases():
        raw = render(case)
        expected = {"client": case.client, **case.expected, "token": case.token}
        result[f"{case.name}.eml"] = {"raw": raw, "expected": expected}
    return result


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    built = build()
    for old in OUT.glob("*.eml"):
        if old.name not in built:
            old.unlink()
    for fname, item in built.items():
        (OUT / fname).write_bytes(item["raw"])
    sidecar = {fname: item["expected"] for fname, item in sorted(built.items())}
    (OUT / "expected.json").write_text(json.dumps(sidecar, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(built)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
