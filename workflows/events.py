"""Creating and updating events from their config, and looking them up.

Capacity is the one setting that has a command of its own (`rsvpmail capacity`). Loading the
config again (to fix a typo, say) must not silently undo such a change, so a load keeps the
event's capacity unless the file's capacity itself changed since it was last loaded, or the
caller asks for the file's value (`rsvpmail event load --capacity-from-file`). A capacity the
load does change goes through the same rule as the command: raising offers seats to the
waitlist, lowering removes nobody, and the change is audited.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.models import Event, EventSession, Participant, ParticipantStatus, Person
from workflows.errors import NotFound, RsvpError
from workflows.event_config import EventConfig, parse_event_config

if TYPE_CHECKING:
    from workflows.registration import CapacityChange


@dataclass(frozen=True)
class EventLoad:
    """What loading a config did; `capacity_kept` means the file's capacity was not applied."""

    event: Event
    created: bool
    file_capacity: int
    capacity_kept: bool = False  # the event keeps a capacity set with `rsvpmail capacity`
    capacity_change: CapacityChange | None = None  # the file's capacity, applied now


def load_event(
    db: Session, cfg: EventConfig, *, capacity_from_file: bool = False, actor: str = "organiser"
) -> EventLoad:
    """Create the event or bring it in line with `cfg`; idempotent. The caller commits.

    A session that is removed from the config but already chosen by someone is kept, since
    dropping it would silently change people's registrations; the organiser is told instead.
    The capacity follows the rule in the module docstring; `actor` is audited when it changes.
    """
    event = db.scalar(select(Event).where(Event.slug == cfg.slug))
    created = event is None
    if event is None:
        event = Event(slug=cfg.slug, capacity=cfg.capacity, config={})
        db.add(event)
    last_loaded = event.config.get("capacity")
    _apply_settings(event, cfg)
    db.flush()
    roomier = _sync_sessions(db, event, cfg) and not created
    # Imported here: registration's rules import this module (event_config).
    from workflows.registration import change_capacity, promote

    kept, change = False, None
    if event.capacity != cfg.capacity:
        if not capacity_from_file and last_loaded == cfg.capacity:
            kept = True
        else:
            # After the settings and sessions: offers made by a raise are rendered from them.
            change = change_capacity(db, event, cfg.capacity, actor=actor)
    loaded = EventLoad(event, created, cfg.capacity, capacity_kept=kept, capacity_change=change)
    if roomier:
        # A deelsessie with more room than before: its waiting parties may fit now. After the
        # capacity is settled, so no offer counts on seats a lowered capacity took away.
        promote(db, event)
    return loaded


def apply_event_config(db: Session, cfg: EventConfig) -> tuple[Event, bool]:
    """`load_event` with its defaults, for callers that only need (event, created)."""
    loaded = load_event(db, cfg)
    return loaded.event, loaded.created


def _apply_settings(event: Event, cfg: EventConfig) -> None:
    """Everything from the config except the capacity (see `load_event`)."""
    event.title = cfg.title
    event.organiser = cfg.organiser
    event.timezone = cfg.timezone
    event.starts_at = cfg.starts_at
    event.ends_at = cfg.ends_at
    event.venue = cfg.venue
    event.address = cfg.address
    event.registration_deadline = cfg.registration_deadline
    event.language = cfg.language
    event.reply_address = cfg.reply_address.lower()
    event.sender = cfg.sender
    event.contact_name = cfg.contact_name
    event.contact_email = cfg.contact_email.lower()
    event.offer_expiry_hours = cfg.offer_expiry_hours
    event.no_offers_within_hours = cfg.no_offers_within_hours
    event.late_policy = cfg.late_policy
    # Holds the file's capacity as loaded: how the next load tells whether the file changed.
    event.config = config_to_json(cfg)


def _sync_sessions(db: Session, event: Event, cfg: EventConfig) -> bool:
    """Bring the event's deelsessies in line with `cfg`; whether one that existed got room."""
    roomier = False
    existing = {
        s.key: s for s in db.scalars(select(EventSession).where(EventSession.event_id == event.id))
    }
    for position, spec in enumerate(cfg.sessions):
        row = existing.pop(spec.key, None)
        if row is None:
            row = EventSession(event_id=event.id, key=spec.key)
            db.add(row)
        row.title = spec.title
        row.aliases = list(spec.aliases)
        if row.id is not None and row.capacity is not None:
            roomier |= spec.capacity is None or spec.capacity > row.capacity
        row.capacity = spec.capacity
        row.position = position
    for key, row in existing.items():
        _release_removed_session(db, event, key, row)
        db.delete(row)
    db.flush()
    return roomier


# Who still counts on a session: it cannot be removed under them. Someone who declined,
# cancelled or let an offer expire only keeps their old choice on record.
_HOLDS_A_SESSION = (
    ParticipantStatus.REGISTERED,
    ParticipantStatus.WAITLISTED,
    ParticipantStatus.OFFERED,
    ParticipantStatus.ATTENDED,
    ParticipantStatus.NO_SHOW,
)
_NAMED_AT_MOST = 5


def _release_removed_session(db: Session, event: Event, key: str, row: EventSession) -> None:
    """Refuse to remove a session someone still counts on; forget it for everyone else."""
    holders = db.scalars(
        select(func.coalesce(Person.email, Person.name))
        .join(Participant, Participant.person_id == Person.id)
        .where(Participant.session_id == row.id, Participant.status.in_(_HOLDS_A_SESSION))
        .order_by(Participant.id)
    ).all()
    if holders:
        named = ", ".join(holders[:_NAMED_AT_MOST]) + (
            " …" if len(holders) > _NAMED_AT_MOST else ""
        )
        raise RsvpError(
            f"session {key!r} was removed from the config but {len(holders)} participant(s) "
            f"still have it ({named}); move each first with `rsvpmail answer {event.slug} "
            f"EMAIL --as accept --session OTHER`, or keep the session in the file"
        )
    db.execute(update(Participant).where(Participant.session_id == row.id).values(session_id=None))


def config_to_json(cfg: EventConfig) -> dict[str, Any]:
    """The config as plain JSON (ISO strings for dates and times), stored with the event."""

    def convert(value: Any) -> Any:
        if isinstance(value, datetime | time):
            return value.isoformat()
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value

    data: dict[str, Any] = convert(dataclasses.asdict(cfg))
    return data


def event_config(event: Event) -> EventConfig:
    """Rebuild the validated EventConfig stored with an event (for templates and rules)."""
    data = dict(event.config)
    data["mail"] = {
        "reply_address": data.pop("reply_address"),
        "sender": data.pop("sender"),
        "unsubscribe_url": data.pop("unsubscribe_url", ""),
    }
    data["contact"] = {
        "name": data.pop("contact_name"),
        "email": data.pop("contact_email"),
        "phone": data.pop("contact_phone", ""),
    }
    data["offers"] = {
        "expiry_hours": data.pop("offer_expiry_hours"),
        "no_offers_within_hours": data.pop("no_offers_within_hours"),
    }
    data["late_replies"] = {"policy": data.pop("late_policy")}
    data["reminders"] = {
        "days_before": data.pop("reminder_days_before"),
        "local_time": data.pop("reminder_local_time"),
    }
    nudge = data.pop("nudge_days_before_deadline", None)
    if nudge is not None:
        data["reminders"]["nudge_unanswered_days_before_deadline"] = nudge
    data["followup"] = {
        "days_after": data.pop("followup_days_after"),
        "local_time": data.pop("followup_local_time"),
        "survey_url": data.pop("survey_url", ""),
        "materials": data.pop("materials", []),
    }
    data["retention"] = {
        "raw_messages_days_after_event": data.pop("raw_message_retention_days"),
        "personal_data_days_after_event": data.pop("personal_data_retention_days"),
    }
    data["trust"] = {
        "allowed_sender_domains": data.pop("allowed_sender_domains", []),
        "max_answers_per_sender_per_day": data.pop("max_answers_per_sender_per_day", 5),
        "trusted_authserv_ids": data.pop("trusted_authserv_ids", []),
    }
    for key in ("starts_at", "ends_at", "registration_deadline"):
        data[key] = datetime.fromisoformat(data[key])
    for spec in data.get("sessions", []):
        if spec.get("capacity") is None:
            spec.pop("capacity", None)
    # The columns are the truth for what an organiser may change from the CLI.
    data["capacity"] = event.capacity
    return parse_event_config(data, source=f"event {event.slug}", stored=True)


def get_event(db: Session, slug: str) -> Event:
    event = db.scalar(select(Event).where(Event.slug == slug))
    if event is None:
        known = ", ".join(db.scalars(select(Event.slug).order_by(Event.slug))) or "none"
        raise NotFound(
            f"no event {slug!r} (known events: {known}); load it with `rsvpmail event load`"
        )
    return event
