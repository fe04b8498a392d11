"""`rsvpmail capacity EVENT N`: change how many people an event takes."""

from __future__ import annotations

import typer

from jobs.commands.common import app_context, console
from jobs.commands.registry import UserError, friendly_errors
from workflows.event_config import MIN_CAPACITY, capacity_problem
from workflows.events import get_event
from workflows.registration import CapacityChange, change_capacity


def register(app: typer.Typer) -> None:
    app.command("capacity", rich_help_panel="Organiser")(capacity)


@friendly_errors
def capacity(
    ctx: typer.Context,
    event: str = typer.Argument(..., metavar="EVENT", help="The event's slug"),
    new_capacity: int = typer.Argument(
        ...,
        metavar="N",
        help=f"The new maximum number of participants (at least {MIN_CAPACITY})",
    ),
    actor: str = typer.Option("organiser", "--by", help="Who made the change (for the audit)"),
) -> None:
    """Change an event's capacity; raising it offers seats to the waitlist.

    Lowering it removes nobody: new registrations wait until enough seats are free.
    """
    # The event file's rule and message (`capacity` in the TOML).
    problem = capacity_problem(new_capacity)
    if problem:
        raise UserError(f"capacity: {problem}")
    factory = app_context(ctx).sessions()
    with factory() as db, db.begin():
        change = change_capacity(db, get_event(db, event), new_capacity, actor=actor)
    for line in capacity_change_lines(event, change):
        console.print(line)


def capacity_change_lines(event: str, change: CapacityChange) -> list[str]:
    """What a capacity change did, in words (also printed by `rsvpmail event load`)."""
    lines = [f"capacity of {event}: {change.old} → {change.new}"]
    if change.offered:
        seats = "1 seat" if change.offered == 1 else f"{change.offered} seats"
        lines.append(f"{seats} offered to the waitlist")
    lines.append(f"seats free: {change.seats_left}; waiting: {change.waiting}")
    if change.registered_over_capacity:
        lines.append(
            f"{change.registered_over_capacity} more registered than the new capacity: "
            "nobody is removed; new registrations wait until seats free up"
        )
    if change.new > change.old and not change.offered and change.waiting:
        lines.append(
            "no offers were made (after the deadline, too close to the start, or the first "
            "waiting party does not fit)"
        )
    return lines
