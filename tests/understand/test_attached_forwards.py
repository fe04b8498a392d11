"""Forwards sent as an attachment (a message/rfc822 part, a saved .eml file, an Outlook .msg),
and the reports that are not.

The fixture set (make_replies.py: fwa-*) covers whole messages from each client; these tests
pin the parts: what is found as an attached message and what is not (bounces, ARF and Hotmail
complaints keep being read as before), which subject counts as the attached one, and what the
reviewer gets to see.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest

from tests.understand._common import REPLIES, sessions
from workflows.understand import attached, mime, understand
from workflows.understand.pipeline import FORWARD_BELOW_MARKER, FORWARD_MARKER
from workflows.understanding import ReplyKind

OUR_ADDRESS = "aanmelden+abcdefghijklmnopqrstuvwxyz234567@wijkwijzer.example"
WETHOUDER_ANSWER = "Ja, ik ga graag. Zet me maar op de deelsessie wonen."


def _wethouder_mail(subject: str = "RE: Uitnodiging", text: str = WETHOUDER_ANSWER) -> EmailMessage:
    inner = EmailMessage()
    inner["From"] = "Jan Jansen <jan.jansen@zaanstad.nl>"
    inner["To"] = "Secretariaat <secretariaat@zaanstad.nl>"
    inner["Subject"] = subject
    inner["Date"] = "Tue, 10 Jan 2023 16:40:00 +0100"
    inner.set_content(text)
    return inner


def _forward_as_attachment(
    subject: str,
    own: str | None,
    inner: EmailMessage,
    *,
    sender: str = "petra.visser@zaanstad.nl",
) -> EmailMessage:
    """A message with `own` as its text part (None: no text part at all) and `inner` attached."""
    msg = EmailMessage()
    msg["From"] = f"Petra Visser <{sender}>"
    msg["To"] = OUR_ADDRESS
    msg["Subject"] = subject
    msg["Message-ID"] = "<fwa-test@zaanstad.nl>"
    if own is not None:
        msg.set_content(own)
    else:
        msg["MIME-Version"] = "1.0"
        msg.make_mixed()
    msg.add_attachment(inner, filename="RE Uitnodiging.eml")
    return msg


def _read(msg: EmailMessage) -> tuple[ReplyKind, str]:
    u = understand(msg.as_bytes(), sessions())
    return u.kind, u.reply_text


# --- what counts as an attached message -------------------------------------------------------


def test_the_attached_message_is_described_with_its_html_as_text() -> None:
    msg = mime.parse((REPLIES / "fwa-thunderbird-html-antwoord.eml").read_bytes())
    (found,) = attached.attached_messages(msg)
    assert found.sender == "Jan Jansen <jan.jansen@zaanstad.nl>"
    assert found.date == "Tue, 10 Jan 2023 16:40:00 +0100"
    assert found.subject.startswith("RE: Uitnodiging")
    assert found.text.startswith("Ja, ik kom graag, deelsessie werk.")
    assert "MsoNormal" not in found.text and "&nbsp;" not in found.text


@pytest.mark.parametrize(
    "name", ["bounce-dsn-511.eml", "bounce-dsn-delayed.eml", "bounce-dsn-headers-only.eml"]
)
def test_a_delivery_report_returns_our_mail_but_forwards_nothing(name: str) -> None:
    raw = (REPLIES / name).read_bytes()
    msg = mime.parse(raw)
    returned = {mime.content_type(p) for p, _, _ in mime.walk(msg)}
    assert returned & {"message/rfc822", "text/rfc822-headers"}  # the original is there …
    assert attached.attached_messages(msg) == ()  # … and is not taken for a forward
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.BOUNCE
    assert attached.ATTACHED_MESSAGE_LINE not in u.reply_text


def _arf_report() -> bytes:
    """An RFC 5965 abuse report: a human part, the machine part, and the reported mail."""
    reported = _wethouder_mail().as_string()
    return (
        "From: abuse@provider.example\n"
        f"To: {OUR_ADDRESS}\n"
        "Subject: Abuse report\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="arf"\n\n'
        "--arf\nContent-Type: text/plain\n\nThis is an email abuse report.\n"
        "--arf\nContent-Type: message/feedback-report\n\n"
        "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n"
        f"--arf\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n{reported}\n"
        "--arf--\n"
    ).encode()


def test_an_abuse_report_is_read_as_before() -> None:
    report = _arf_report()
    assert attached.attached_messages(mime.parse(report)) == ()
    u = understand(report, sessions())
    assert u.kind is ReplyKind.UNCLEAR and u.is_automatic
    assert any("ARF" in note for note in u.notes)
    assert u.reply_text == ""


def test_a_hotmail_complaint_is_no_forward() -> None:
    """Hotmail's complaint loop sends the reported mail alone in a multipart/mixed."""
    inner = _wethouder_mail(subject="Nieuwsbrief")
    inner["X-HmXmrOriginalRecipient"] = "someone@hotmail.com"
    complaint = _forward_as_attachment(
        "complaint about message from 192.0.2.222", None, inner, sender="staff@hotmail.com"
    )
    assert attached.attached_messages(mime.parse(complaint.as_bytes())) == ()
    assert _read(complaint) == (ReplyKind.UNCLEAR, "")


# --- which subject is the attached message's --------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "attached_subject", "repeats"),
    [
        ("FW: RE: Uitnodiging", "RE: Uitnodiging", True),  # Outlook
        ("Fwd: Ja, ik kom graag", "Ja, ik kom graag", True),  # Apple Mail
        ("[Fwd: Ja, ik kom graag]", "Ja, ik kom graag", True),  # old Thunderbird
        ("ja,  IK kom graag", "Ja, ik kom graag", True),  # a dragged-in .eml, subject kept
        ("Ja, ik kom graag", "Overleg wijkteams", False),  # the sender's own subject
        ("Ja, ik kom graag", "", False),
        ("", "Ja, ik kom graag", False),
    ],
)
def test_repeats_attached_subject(subject: str, attached_subject: str, repeats: bool) -> None:
    found = attached.AttachedMessage(sender="", date="", subject=attached_subject, text="")
    assert attached.repeats_attached_subject(subject, (found,)) is repeats


def test_the_attached_subject_is_never_read_as_the_answer() -> None:
    inner = _wethouder_mail(subject="Ja, ik kom graag")
    kind, text = _read(_forward_as_attachment("Ja, ik kom graag", "Zie bijlage.", inner))
    assert kind is ReplyKind.UNCLEAR
    assert text.startswith(f"Zie bijlage.\n\n{FORWARD_BELOW_MARKER}\n\n")


def test_the_senders_own_subject_beside_an_attachment_is_read() -> None:
    inner = _wethouder_mail(subject="Overleg wijkteams", text="Helaas kan ik niet.")
    kind, _ = _read(_forward_as_attachment("Ja, ik kom graag", "Zie onderwerp.", inner))
    assert kind is ReplyKind.ACCEPT


# --- what the sender wrote, and what the reviewer sees ----------------------------------------


def test_the_senders_words_are_the_answer_never_the_attached_ones() -> None:
    own = "Nee, helaas, ik kan niet."
    u = understand(
        _forward_as_attachment("FW: RE: Uitnodiging", own, _wethouder_mail()).as_bytes(),
        sessions(),
    )
    assert u.kind is ReplyKind.DECLINE  # the attached "Ja, ik ga graag" does not count
    assert u.session is None
    assert u.reply_text == own


@pytest.mark.parametrize("own", [None, "", "\n\n-- \nPetra Visser\nSecretariaat"])
def test_nothing_of_the_senders_own_shows_the_attached_message(own: str | None) -> None:
    kind, text = _read(_forward_as_attachment("FW: RE: Uitnodiging", own, _wethouder_mail()))
    assert kind is ReplyKind.UNCLEAR
    head = f"{FORWARD_MARKER}\n\n{attached.ATTACHED_MESSAGE_LINE}\n"
    assert text.startswith(head)
    assert "From: Jan Jansen <jan.jansen@zaanstad.nl>\n" in text
    assert "Subject: RE: Uitnodiging\n" in text
    assert text.endswith(WETHOUDER_ANSWER)


@pytest.mark.parametrize("own", ["Zie bijlage.", "See attached.", "Ter info"])
def test_words_that_point_at_the_attachment_show_it(own: str) -> None:
    kind, text = _read(_forward_as_attachment("FW: RE: Uitnodiging", own, _wethouder_mail()))
    assert kind is ReplyKind.UNCLEAR
    mine, marker, shown = text.partition(f"\n\n{FORWARD_BELOW_MARKER}\n\n")
    assert (mine, marker) == (own, f"\n\n{FORWARD_BELOW_MARKER}\n\n")
    assert shown.startswith(attached.ATTACHED_MESSAGE_LINE) and shown.endswith(WETHOUDER_ANSWER)


def test_a_forward_in_the_body_and_an_attached_one_are_both_shown() -> None:
    body = "\n\n---------- Forwarded message ---------\nFrom: Karin\n\nIk kom ook."
    kind, text = _read(_forward_as_attachment("Fwd: Uitnodiging", body, _wethouder_mail()))
    assert kind is ReplyKind.UNCLEAR and text.startswith(FORWARD_MARKER)
    inline_at = text.index("---------- Forwarded message")
    assert inline_at < text.index(attached.ATTACHED_MESSAGE_LINE)


def test_an_attached_out_of_office_is_not_the_senders_auto_reply() -> None:
    inner = _wethouder_mail(subject="Automatisch antwoord: Uitnodiging",
                            text="Ik ben afwezig tot en met 20 januari.")  # fmt: skip
    msg = _forward_as_attachment("FW: Automatisch antwoord: Uitnodiging", "Zie bijlage.", inner)
    kind, text = _read(msg)
    assert kind is ReplyKind.UNCLEAR
    assert FORWARD_BELOW_MARKER in text


def test_an_automatic_sender_forwarding_as_attachment_stays_automatic() -> None:
    msg = _forward_as_attachment("FW: RE: Uitnodiging", "", _wethouder_mail(),
                                 sender="noreply@zaanstad.nl")  # fmt: skip
    u = understand(msg.as_bytes(), sessions())
    assert u.kind is ReplyKind.AUTO_REPLY and u.is_automatic
    assert FORWARD_MARKER not in u.reply_text


def test_an_empty_attached_message_is_shown_as_what_it_is() -> None:
    msg = _forward_as_attachment("FW: iets", "", EmailMessage())
    kind, text = _read(msg)
    assert kind is ReplyKind.UNCLEAR
    assert text == f"{FORWARD_MARKER}\n\n{attached.ATTACHED_MESSAGE_LINE}"


# --- a mail attached as a file: .eml (any content type) and Outlook .msg ----------------------
#
# Built as the clients send them: the saved mail as an application/octet-stream part (Outlook
# for Mac, Gmail, a dragged-in file), or as text/plain when a client guessed the type from the
# contents; an Outlook .msg as the binary OLE file it is.

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MSG_BYTES = OLE_MAGIC + bytes(range(256)) * 64  # an Outlook .msg: a compound file, unreadable
OUTLOOK_LINE = attached.OUTLOOK_ITEM_LINE.format(name="RE Uitnodiging.msg")


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def _saved_by_outlook(subject: str = "RE: Uitnodiging", text: str = WETHOUDER_ANSWER) -> bytes:
    """The wethouder's mail as Outlook saves it to disk: CRLF, Exchange headers, plain + HTML."""
    inner = _wethouder_mail(subject, text)
    inner["Message-ID"] = "<AM0PR04MB1234ABCD@AM0PR04MB1234.eurprd04.prod.outlook.com>"
    inner["Thread-Topic"] = subject
    inner["Thread-Index"] = "AdkkAbCdEfGhIjKlMnOpQrStUvWxYz=="
    inner["Content-Language"] = "nl-NL"
    inner.add_alternative(
        f"<html><body><p class=MsoNormal>{text}</p></body></html>", subtype="html"
    )
    return inner.as_bytes(policy=inner.policy.clone(linesep="\r\n"))


def _saved_by_gmail(subject: str = "Re: Uitnodiging", text: str = WETHOUDER_ANSWER) -> bytes:
    """The wethouder's mail as Gmail's "Download message" gives it (headers in Gmail's order)."""
    return (
        "MIME-Version: 1.0\r\n"
        "Date: Tue, 10 Jan 2023 16:40:00 +0100\r\n"
        "Message-ID: <CAF8x9pQ2vB=Wethouder@mail.gmail.com>\r\n"
        f"Subject: {subject}\r\n"
        "From: Jan Jansen <jan.jansen@zaanstad.nl>\r\n"
        "To: Secretariaat <secretariaat@zaanstad.nl>\r\n"
        'Content-Type: multipart/alternative; boundary="000000000000f1e2d3c4b5a6"\r\n'
        "\r\n"
        "--000000000000f1e2d3c4b5a6\r\n"
        'Content-Type: text/plain; charset="UTF-8"\r\n\r\n'
        f"{text}\r\n\r\n"
        "--000000000000f1e2d3c4b5a6\r\n"
        'Content-Type: text/html; charset="UTF-8"\r\n\r\n'
        f'<div dir="ltr">{text}</div>\r\n\r\n'
        "--000000000000f1e2d3c4b5a6--\r\n"
    ).encode()


def _outlook_forward_with_file(
    subject: str,
    own: str,
    payload: bytes,
    *,
    filename: str = "RE Uitnodiging.eml",
    ctype: str = "application/octet-stream",
) -> bytes:
    """Outlook with a saved mail attached as a file: plain + HTML alternatives, then the file."""
    html_own = "".join(f"<p class=MsoNormal>{line}<o:p></o:p></p>" for line in own.splitlines())
    return (
        "From: Petra Visser <petra.visser@zaanstad.nl>\r\n"
        f"To: {OUR_ADDRESS}\r\n"
        f"Subject: {subject}\r\n"
        "Date: Wed, 11 Jan 2023 09:12:00 +0000\r\n"
        "Message-ID: <AM9PR04MB8888FWD@AM9PR04MB8888.eurprd04.prod.outlook.com>\r\n"
        "Thread-Topic: RE: Uitnodiging\r\n"
        "Thread-Index: AdkkBcDeFgHiJkLmNoPqRsTuVwXyZ==\r\n"
        "Content-Language: nl-NL\r\n"
        "X-MS-Has-Attach: yes\r\n"
        'Content-Type: multipart/mixed; boundary="_004_AM9PR04MB8888FWD_"\r\n'
        "MIME-Version: 1.0\r\n\r\n"
        "--_004_AM9PR04MB8888FWD_\r\n"
        'Content-Type: multipart/alternative; boundary="_000_AM9PR04MB8888FWD_"\r\n\r\n'
        "--_000_AM9PR04MB8888FWD_\r\n"
        'Content-Type: text/plain; charset="iso-8859-1"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        f"{own}\r\n\r\n"
        "--_000_AM9PR04MB8888FWD_\r\n"
        'Content-Type: text/html; charset="iso-8859-1"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        f"<html><body lang=3DNL><div class=3DWordSection1>{html_own}</div></body></html>\r\n\r\n"
        "--_000_AM9PR04MB8888FWD_--\r\n\r\n"
        "--_004_AM9PR04MB8888FWD_\r\n"
        f'Content-Type: {ctype}; name="{filename}"\r\n'
        f"Content-Description: {filename}\r\n"
        f'Content-Disposition: attachment; filename="{filename}"; size={len(payload)};\r\n'
        '\tcreation-date="Wed, 11 Jan 2023 09:11:00 GMT"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{_b64(payload)}\r\n"
        "--_004_AM9PR04MB8888FWD_--\r\n"
    ).encode("latin-1")


def _gmail_forward_with_file(
    subject: str,
    own: str,
    payload: bytes,
    *,
    filename: str = "Re_ Uitnodiging.eml",
    ctype: str = "application/octet-stream",
) -> bytes:
    """Gmail with a saved mail attached as a file (the browser's type for it, often none)."""
    return (
        "MIME-Version: 1.0\r\n"
        "Date: Wed, 11 Jan 2023 09:12:00 +0100\r\n"
        "Message-ID: <CAK7y0pRfwd=Secretariaat@mail.gmail.com>\r\n"
        f"Subject: {subject}\r\n"
        "From: Petra Visser <petra.visser@zaanstad.nl>\r\n"
        f"To: {OUR_ADDRESS}\r\n"
        'Content-Type: multipart/mixed; boundary="000000000000a1b2c3d4e5f6"\r\n\r\n'
        "--000000000000a1b2c3d4e5f6\r\n"
        'Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f5"\r\n\r\n'
        "--000000000000a1b2c3d4e5f5\r\n"
        'Content-Type: text/plain; charset="UTF-8"\r\n\r\n'
        f"{own}\r\n\r\n"
        "--000000000000a1b2c3d4e5f5\r\n"
        'Content-Type: text/html; charset="UTF-8"\r\n\r\n'
        f'<div dir="ltr">{own}</div>\r\n\r\n'
        "--000000000000a1b2c3d4e5f5--\r\n"
        "--000000000000a1b2c3d4e5f6\r\n"
        f'Content-Type: {ctype}; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "Content-ID: <f_lcq1x0a10>\r\n"
        "X-Attachment-Id: f_lcq1x0a10\r\n\r\n"
        f"{_b64(payload)}"
        "--000000000000a1b2c3d4e5f6--\r\n"
    ).encode()


def _shows_the_attached_answer(own: str, text: str) -> None:
    mine, marker, shown = text.partition(f"\n\n{FORWARD_BELOW_MARKER}\n\n")
    assert (mine, marker) == (own, f"\n\n{FORWARD_BELOW_MARKER}\n\n")
    assert shown.startswith(f"{attached.ATTACHED_MESSAGE_LINE}\nFrom: Jan Jansen <jan.jansen@")
    assert shown.endswith(WETHOUDER_ANSWER)


def test_an_outlook_forward_with_an_eml_file_shows_it_unread() -> None:
    own = "Zie bijgevoegde mail van de wethouder."
    raw = _outlook_forward_with_file("FW: RE: Uitnodiging", own, _saved_by_outlook())
    (found,) = attached.attached_messages(mime.parse(raw))
    assert found.subject == "RE: Uitnodiging" and found.text.startswith(WETHOUDER_ANSWER)
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR and u.session is None
    _shows_the_attached_answer(own, u.reply_text)


def test_a_gmail_forward_with_an_eml_file_shows_it_unread() -> None:
    own = "Doorgestuurd namens wethouder De Vries"
    raw = _gmail_forward_with_file("Fwd: Re: Uitnodiging", own, _saved_by_gmail())
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR and u.session is None
    _shows_the_attached_answer(own, u.reply_text)
    assert "Subject: Re: Uitnodiging\n" in u.reply_text


def test_an_eml_file_with_nothing_of_the_senders_own_is_shown_whole() -> None:
    raw = _gmail_forward_with_file("Re: Uitnodiging", "", _saved_by_gmail(subject="Ja, ik kom"))
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR and not any("subject" in note for note in u.notes)
    text = u.reply_text
    assert text.startswith(f"{FORWARD_MARKER}\n\n{attached.ATTACHED_MESSAGE_LINE}\n")
    assert text.endswith(WETHOUDER_ANSWER)


@pytest.mark.parametrize(
    "ctype", ["text/plain", "message/rfc822", "message/x-eml", "application/eml"]
)
def test_an_eml_file_under_another_type_is_the_same_forward(ctype: str) -> None:
    own = "Zie bijgevoegde mail van de wethouder."
    raw = _outlook_forward_with_file("FW: RE: Uitnodiging", own, _saved_by_outlook(), ctype=ctype)
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR
    _shows_the_attached_answer(own, u.reply_text)


def test_an_inline_eml_text_part_is_never_read_as_the_senders_words() -> None:
    """A message/rfc822 mislabelled text/plain, inline, beside an HTML-only own text: the
    plain part would otherwise be taken for the sender's words."""
    msg = EmailMessage()
    msg["From"] = "Petra Visser <petra.visser@zaanstad.nl>"
    msg["To"] = OUR_ADDRESS
    msg["Subject"] = "Uitnodiging"
    msg.set_content("<p>Zie bijlage.</p>", subtype="html")
    saved = _saved_by_gmail(subject="Ja, ik kom")
    msg.add_attachment(saved, maintype="text", subtype="plain", filename="Ja.eml",
                       disposition="inline")  # fmt: skip
    u = understand(msg.as_bytes(), sessions())
    assert u.kind is ReplyKind.UNCLEAR
    _shows_the_attached_answer("Zie bijlage.", u.reply_text)


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("notities.eml", b"Notities overleg\r\nSubject: wijkteams\r\nJa, ik kom graag.\r\n"),
        ("onderwerp.eml", b"Subject: notities\r\n\r\nJa, ik kom graag.\r\n"),  # one header only
        ("kop.eml", b"From: jan@zaanstad.nl\r\nDit is geen kopregel\r\n\r\nJa\r\n"),
        ("binair.eml", bytes(range(256)) * 40),
        ("nul.eml", b"From: jan@zaanstad.nl\r\nSubject: x\x00y\r\n\r\nJa\r\n"),
        ("leeg.eml", b""),
        ("plaatje.eml", b"\x89PNG\r\n\x1a\n" + bytes(2000)),
        ("lange-kop.eml", b"From: a@b\r\nSubject: x\r\nX-Pad: " + b"y" * 70_000 + b"\r\n\r\nJa"),
    ],
)
def test_an_eml_file_that_holds_no_mail_is_an_ordinary_attachment(
    name: str, payload: bytes
) -> None:
    raw = _gmail_forward_with_file("Ja, ik kom graag", "Zie onderwerp.", payload, filename=name)
    assert attached.attached_messages(mime.parse(raw)) == ()
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.ACCEPT  # the sender's own subject, read as before
    assert attached.ATTACHED_MESSAGE_LINE not in u.reply_text


@pytest.mark.parametrize(
    ("filename", "ctype"),
    [
        ("RE Uitnodiging.msg", "application/vnd.ms-outlook"),
        ("RE Uitnodiging.msg", "application/octet-stream"),
        ("RE Uitnodiging.MSG", "application/x-msg"),
    ],
)
def test_an_outlook_msg_is_named_for_the_reviewer(filename: str, ctype: str) -> None:
    raw = _outlook_forward_with_file(
        "FW: RE: Uitnodiging", "Zie bijlage.", MSG_BYTES, filename=filename, ctype=ctype
    )
    (found,) = attached.attached_messages(mime.parse(raw))
    assert found.outlook_item == filename
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR
    line = attached.OUTLOOK_ITEM_LINE.format(name=filename)
    assert u.reply_text == f"Zie bijlage.\n\n{FORWARD_BELOW_MARKER}\n\n{line}"
    assert "(not readable here; open the original mail)" in line


def test_an_outlook_msg_with_nothing_of_the_senders_own() -> None:
    raw = _outlook_forward_with_file("FW: RE: Uitnodiging", "", MSG_BYTES,
                                     filename="RE Uitnodiging.msg")  # fmt: skip
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR
    assert u.reply_text == f"{FORWARD_MARKER}\n\n{OUTLOOK_LINE}"


def test_an_outlook_item_without_a_name_is_still_named() -> None:
    msg = _forward_as_attachment("FW: iets", "See attached.", _wethouder_mail())
    msg.add_attachment(MSG_BYTES, maintype="application", subtype="vnd.ms-outlook")
    found = attached.attached_messages(mime.parse(msg.as_bytes()))
    assert [m.outlook_item for m in found] == [None, ""]
    assert found[1].rendered() == attached.OUTLOOK_ITEM_LINE.format(name="(no file name)")


def test_a_msg_file_that_is_a_mime_mail_is_read_as_one() -> None:
    raw = _outlook_forward_with_file("FW: RE: Uitnodiging", "Zie bijlage.", _saved_by_outlook(),
                                     filename="RE Uitnodiging.msg")  # fmt: skip
    u = understand(raw, sessions())
    _shows_the_attached_answer("Zie bijlage.", u.reply_text)


@pytest.mark.parametrize("own", ["", "Zie bijlage.", "See attached", "Zie onderwerp."])
@pytest.mark.parametrize("subject", ["FW: Ja, ik kom", "Ja, ik kom", "Fwd: Ja, ik kom graag"])
@pytest.mark.parametrize("attachment", ["msg", "eml-outlook", "eml-gmail"])
def test_a_forwarded_subject_beside_an_attached_file_is_never_the_answer(
    own: str, subject: str, attachment: str
) -> None:
    """The subject "FW: Ja, ik kom" (or "Ja, ik kom" itself) is the attached mail's; beside
    an Outlook item, whose subject is unknown, any subject may be."""
    if attachment == "msg":
        raw = _outlook_forward_with_file(subject, own, MSG_BYTES, filename="Ja ik kom.msg")
    elif attachment == "eml-outlook":
        raw = _outlook_forward_with_file(subject, own, _saved_by_outlook(subject="Ja, ik kom"))
    else:
        raw = _gmail_forward_with_file(subject, own, _saved_by_gmail(subject="Ja, ik kom"))
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR, u.notes
    assert not any(note.startswith("read the subject too") for note in u.notes)
    assert FORWARD_MARKER in u.reply_text or FORWARD_BELOW_MARKER in u.reply_text


def test_the_senders_own_subject_beside_an_eml_file_is_read() -> None:
    saved = _saved_by_gmail(subject="Overleg wijkteams", text="Helaas kan ik niet.")
    raw = _gmail_forward_with_file("Ja, ik kom graag", "Zie onderwerp.", saved)
    assert understand(raw, sessions()).kind is ReplyKind.ACCEPT


def test_the_senders_own_words_beside_an_outlook_item_are_the_answer() -> None:
    raw = _outlook_forward_with_file("FW: RE: Uitnodiging", "Nee, helaas, ik kan niet.",
                                     MSG_BYTES, filename="RE Uitnodiging.msg")  # fmt: skip
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.DECLINE
    assert u.reply_text == "Nee, helaas, ik kan niet."


def _dsn_with_a_file(filename: str, ctype: str) -> bytes:
    """A delivery-status report that returns our invitation as a named file, not as
    message/rfc822 (as some Exchange and hosted gateways do)."""
    raw = (REPLIES / "bounce-dsn-511.eml").read_bytes().decode().replace("\r\n", "\n")
    head, sep, original = raw.partition("--dsn-qf3kwhpzfb\nContent-Type: message/rfc822\n\n")
    assert sep
    original = original.removesuffix("\n--dsn-qf3kwhpzfb--\n")
    return (
        f"{head}--dsn-qf3kwhpzfb\n"
        f'Content-Type: {ctype}; name="{filename}"\n'
        f'Content-Disposition: attachment; filename="{filename}"\n'
        "Content-Transfer-Encoding: base64\n\n"
        f"{base64.encodebytes(original.encode()).decode()}"
        "--dsn-qf3kwhpzfb--\n"
    ).encode()


@pytest.mark.parametrize(
    ("filename", "ctype"),
    [
        ("Uitnodiging.eml", "application/octet-stream"),
        ("Uitnodiging.eml", "text/plain"),
        ("Uitnodiging.msg", "application/vnd.ms-outlook"),
    ],
)
def test_a_bounce_returning_a_named_file_stays_a_bounce(filename: str, ctype: str) -> None:
    raw = _dsn_with_a_file(filename, ctype)
    assert attached.attached_messages(mime.parse(raw)) == ()
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.BOUNCE and u.bounce_permanent
    assert u.bounced_recipients == ("wethouder.pietersen@gemeente-oud.nl",)
    assert attached.ATTACHED_MESSAGE_LINE not in u.reply_text
    assert "Attached Outlook item" not in u.reply_text


def test_a_text_bounce_with_the_original_as_eml_stays_a_bounce() -> None:
    """No report part at all: the daemon's words and the original as a .eml file."""
    msg = EmailMessage()
    msg["From"] = "Mail Delivery System <MAILER-DAEMON@mx.zaanstad.nl>"
    msg["To"] = OUR_ADDRESS
    msg["Subject"] = "Undeliverable: Uitnodiging"
    msg.set_content(
        "Your message could not be delivered to wethouder.pietersen@gemeente-oud.nl.\n"
        "550 5.1.1 User unknown\n"
    )
    msg.add_attachment(_saved_by_outlook(subject="Uitnodiging"), maintype="application",
                       subtype="octet-stream", filename="Uitnodiging.eml")  # fmt: skip
    u = understand(msg.as_bytes(), sessions())
    assert u.kind is ReplyKind.BOUNCE and u.is_automatic
    assert attached.ATTACHED_MESSAGE_LINE not in u.reply_text


# --- hostile attached files: bounded work, never an error -------------------------------------


class _CountingParse:
    """Wraps mime.parse to record how many bytes each parse is handed."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self._parse = mime.parse

    def __call__(self, raw: bytes) -> object:
        self.sizes.append(len(raw))
        return self._parse(raw)


def _many_files(count: int, payload: bytes, filename: str = "doorgestuurd.eml") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Petra Visser <petra.visser@zaanstad.nl>"
    msg["To"] = OUR_ADDRESS
    msg["Subject"] = "FW: veel"
    msg.set_content("Zie bijlage.")
    for _ in range(count):
        msg.add_attachment(payload, maintype="application", subtype="octet-stream",
                           filename=filename)  # fmt: skip
    return msg.as_bytes()


def test_many_eml_files_are_parsed_at_most_max_described_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting = _CountingParse()
    monkeypatch.setattr(mime, "parse", counting)
    u = understand(_many_files(150, _saved_by_gmail()), sessions())
    assert len(counting.sizes) == 1 + attached.MAX_DESCRIBED  # the message, then the files
    assert u.kind is ReplyKind.UNCLEAR
    assert u.reply_text.count(attached.ATTACHED_MESSAGE_LINE) == attached.MAX_DESCRIBED


def test_many_files_that_are_no_mail_are_looked_at_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked: list[int] = []
    mail_bytes = attached._mail_bytes

    def counting(data: bytes) -> bytes | None:
        looked.append(len(data))
        return mail_bytes(data)

    monkeypatch.setattr(attached, "_mail_bytes", counting)
    raw = _many_files(60, b"Subject: geen mail\r\n" + b"x" * 20_000)
    assert attached.attached_messages(mime.parse(raw)) == ()
    assert len(looked) == attached.MAX_DESCRIBED
    u = understand(raw, sessions())
    assert (u.kind, u.reply_text) == (ReplyKind.UNCLEAR, "Zie bijlage.")


def test_a_huge_eml_file_is_parsed_from_its_start_only(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = _saved_by_outlook()
    huge = saved.replace(
        WETHOUDER_ANSWER.encode(), WETHOUDER_ANSWER.encode() + b"\r\n" + b"bijlage " * 750_000
    )
    assert len(huge) > 6_000_000  # about 8 MB base64-encoded: under the 10 MB read limit
    counting = _CountingParse()
    monkeypatch.setattr(mime, "parse", counting)
    u = understand(
        _outlook_forward_with_file("FW: RE: Uitnodiging", "Zie bijlage.", huge), sessions()
    )
    assert counting.sizes[1:] and max(counting.sizes[1:]) <= attached.MAX_EML_BYTES
    assert u.kind is ReplyKind.UNCLEAR
    assert f"{FORWARD_BELOW_MARKER}\n\n{attached.ATTACHED_MESSAGE_LINE}" in u.reply_text
    assert WETHOUDER_ANSWER in u.reply_text and len(u.reply_text) < 25_000


def _nested_eml(levels: int) -> bytes:
    """A .eml holding a .eml holding a .eml …, each saying which level it is."""
    payload = _saved_by_gmail(subject="niveau 0", text="Ja, ik kom graag (niveau 0).")
    for level in range(1, levels + 1):
        inner = _wethouder_mail(subject=f"niveau {level}", text=f"Zie bijlage (niveau {level}).")
        inner.add_attachment(payload, maintype="application", subtype="octet-stream",
                             filename=f"niveau {level - 1}.eml")  # fmt: skip
        payload = inner.as_bytes()
    return payload


def test_an_eml_inside_an_eml_shows_only_the_outer_one() -> None:
    raw = _outlook_forward_with_file("FW: niveau 8", "Zie bijlage.", _nested_eml(8))
    (found,) = attached.attached_messages(mime.parse(raw))
    assert found.subject == "niveau 8" and found.text.strip() == "Zie bijlage (niveau 8)."
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR
    assert "niveau 7" not in u.reply_text and "niveau 0" not in u.reply_text


@pytest.mark.parametrize(
    ("payload", "shown"),
    [
        # message/rfc822 nested thousands deep: the stdlib parser runs out of stack, so only
        # the headers are shown
        (b"From: a@b\r\nSubject: x\r\nContent-Type: message/rfc822\r\n\r\n" * 5000, 1),
        # more MIME levels than a reply has, hidden from the outer check by base64: headers
        (
            b"From: a@b\r\nSubject: x\r\n"
            + b"".join(
                b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                for i in range(2000)
            ),
            1,
        ),
        # a header block that never ends: no mail
        (b"From: a@b\r\nSubject: x\r\n" + b"X-Pad: y\r\n" * 50_000, 0),
        # truncated base64 inside, a broken charset and encoded word
        (
            b"From: a@b\r\nSubject: =?x-bogus?Q?=FF?=\r\nContent-Type: text/plain; charset=bogus"
            b"\r\nContent-Transfer-Encoding: base64\r\n\r\nSmEsIGlrIGtvbQ",
            1,
        ),
    ],
    ids=["rfc822-5000-deep", "2000-boundaries", "endless-headers", "broken"],
)
def test_a_hostile_eml_file_is_read_without_error(payload: bytes, shown: int) -> None:
    raw = _outlook_forward_with_file("FW: iets", "Zie bijlage.", payload, filename="x.eml")
    found = attached.attached_messages(mime.parse(raw))
    assert len(found) == shown
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR
    assert not any(note.startswith("could not read") for note in u.notes), u.notes
    assert u.reply_text.count(attached.ATTACHED_MESSAGE_LINE) == shown


@pytest.mark.parametrize(
    "disposition",
    [
        "attachment; filename*=bogus''x%FF.eml",
        "attachment; filename*0*=utf-8''a%E2; filename*1=.eml",
        'attachment; filename="=?x-bogus?B?!!!?=.eml"',
        "attachment; filename=",
    ],
)
def test_a_broken_file_name_is_read_without_error(disposition: str) -> None:
    raw = _outlook_forward_with_file("FW: iets", "Zie bijlage.", _saved_by_gmail())
    raw = raw.replace(b'attachment; filename="RE Uitnodiging.eml"', disposition.encode())
    raw = raw.replace(b'name="RE Uitnodiging.eml"', b"name=x")
    found = attached.attached_messages(mime.parse(raw))
    assert len(found) <= 1
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR
    assert not any(note.startswith("could not read") for note in u.notes), u.notes
