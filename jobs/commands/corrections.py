"""Corrections by hand: `answer` (an answer given by phone or in person) and `offer`.

The rules are in workflows.corrections (which applies the registration rules); this module
parses options and prints the outcome. Lines are never folded, and times carry their zone.
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer
from rich.text import Text

from jobs.commands.common import app_context, console
from jobs.commands.registry import friendly_errors
from workflows.corrections import (
    Answer,
    AnswerResult,
    local_time,
    offer_by_hand,
    parse_person,
    record_answer,
)
from workflows.events import get_event

PANEL = "Organiser"


def organiser_actor(by: str | None) -> str:
    """The audit's actor for an organiser's command, as `review resolve` names it."""
    who = by or os.environ.get("USER") or getpass.getuser()
    return f"organiser:{who}"


def _say(text: str, style: str = "") -> None:
    # Text, not markup: names come from mail. soft_wrap: a line is never folded.
    console.print(Text(text, style=style), soft_wrap=True)


@friendly_errors
def answer_command(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(metavar="EVENT", help="The event's slug")],
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The invitee's e-mail address")],
    answer: Annotated[
        Answer,
        typer.Option(
            "--as",
            help="What they said. accept also registers someone on the waitlist by hand when "
            "there is room, and with --session moves a registered person; cancel gives up a "
            "place (registered, waiting or offered).",
        ),
    ],
    session: Annotated[
        str | None, typer.Option("--session", help="Deelsessie key, e.g. wonen (with accept)")
    ] = None,
    companion: Annotated[
        list[str] | None,
        typer.Option(
            "--companion",
            help='A colleague who comes too: "Naam <email>" (repeatable; with accept)',
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Your name for the audit \\[default: $USER]", show_default=False),
    ] = None,
    note: Annotated[
        str, typer.Option("--note", help="How and when they told you (kept in the audit)")
    ] = "",
) -> None:
    """Record an answer given by phone or in person; the rules of an emailed reply apply.

    Seats, the waitlist and offers work as for a reply by mail; the invitee is mailed.

    On the waitlist, accept registers them by hand if their party fits now.
    """
    companions = [parse_person(text, "--companion") for text in companion or ()]
    actor = organiser_actor(by)
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        found = get_event(db, event)
        result = record_answer(
            db,
            found,
            email,
            answer=answer,
            actor=actor,
            session=session,
            companions=companions,
            note=note,
        )
    _print_answer(result, actor)


def _print_answer(r: AnswerResult, actor: str) -> None:
    who = f"{r.name} <{r.email}>" if r.name else r.email
    change = (
        f"{r.old_status.value} → {r.new_status.value}"
        if r.new_status is not r.old_status
        else f"still {r.new_status.value}"
    )
    where = []
    if r.session_key:
        where.append(f"deelsessie {r.session_key}")
    if r.waitlist_position is not None:
        where.append(f"waitlist position {r.waitlist_position}")
    _say(f"{r.answer} recorded for {who} by {actor}: {change}" + _parens(where))
    _say(f"  {r.summary}")
    if r.not_registered:
        _say(f"  NOT registered: {r.not_registered}", style="bold yellow")
    for mail in r.mails:
        _say(f"  mail queued: {mail.kind} to {mail.recipient}")
    if not r.mails:
        _say("  no mail queued", style="dim")


def _parens(parts: list[str]) -> str:
    return f" ({', '.join(parts)})" if parts else ""


@friendly_errors
def offer_command(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(metavar="EVENT", help="The event's slug")],
    email: Annotated[
        str, typer.Argument(metavar="EMAIL", help="The address of someone on the waitlist")
    ],
    by: Annotated[
        str | None,
        typer.Option("--by", help="Your name for the audit \\[default: $USER]", show_default=False),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="Why (kept in the audit)")] = "",
) -> None:
    """Offer a waiting party a freed seat by hand, e.g. after the deadline.

    Needs room for the whole party: an offer holds its seats until it is answered.

    It expires as usual, but never after the start; answers come by mail or `answer`.
    """
    actor = organiser_actor(by)
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        found = get_event(db, event)
        result = offer_by_hand(db, found, email, actor=actor, note=note)
        until = local_time(found, result.expires_at)
    who = f"{result.name} <{result.email}>" if result.name else result.email
    _say(
        f"seat offered by {actor} to {who} (party of {result.party_size}); "
        f"they can accept until {until}"
    )
    if result.waiting_ahead:
        _say(f"  passed over {result.waiting_ahead} person(s) waiting ahead of them")
    if result.mailed:
        _say(f"  mail queued: seat_offered to {result.email}")
    else:
        _say("  they have no e-mail address: tell them yourself", style="bold yellow")


def register(app: typer.Typer) -> None:
    app.command("answer", rich_help_panel=PANEL)(answer_command)
    app.command("offer", rich_help_panel=PANEL)(offer_command)
