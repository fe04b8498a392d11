"""An event as the organiser describes it in a TOML file, validated before anything is stored.

Every problem is reported with the file and the key it concerns, all at once, so an organiser
can fix a config in one go instead of one error per run.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGUAGES = ("nl", "en")
LATE_POLICIES = ("waitlist", "closed")
MIN_CAPACITY = 1  # also the rule of `rsvpmail capacity`
# Keys of [extra]: a directory of template overrides, and the description in the other language.
EXTRA_KEYS = ("templates_dir", *(f"description_{lang}" for lang in LANGUAGES))
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(ValueError):
    """A config that cannot be used; `problems` lists every problem found, each with its key."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


class ConfigFileError(ConfigError):
    """The file itself cannot be used (missing, unreadable, not UTF-8, not TOML): one problem."""


def capacity_problem(value: int) -> str | None:
    """What is wrong with `value` as an event's capacity (the file's and the command's rule)."""
    return f"must be at least {MIN_CAPACITY}" if value < MIN_CAPACITY else None


def file_problem(exc: OSError) -> str:
    """Why a file could not be read, in words (for `<path>: <problem>`)."""
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "cannot be read (permission denied)"
    return f"cannot be read ({exc.strerror or exc})"


@dataclass(frozen=True)
class SessionSpec:
    """A deelsessie: what invitees choose between."""

    key: str
    title: str
    aliases: tuple[str, ...] = ()
    capacity: int | None = None
    description: str = ""


@dataclass(frozen=True)
class ProgrammeItem:
    time: str
    item: str


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class EventConfig:
    slug: str
    title: str
    organiser: str
    timezone: str
    starts_at: datetime  # aware, in `timezone`
    ends_at: datetime
    venue: str
    address: str
    capacity: int
    registration_deadline: datetime
    language: str
    reply_address: str
    sender: str  # "Name <address>"
    contact_name: str
    contact_email: str
    contact_phone: str = ""
    description: str = ""
    price: str = ""
    companions_welcome: bool = True
    max_companions: int = 1
    offer_expiry_hours: int = 48
    no_offers_within_hours: int = 24
    late_policy: str = "waitlist"
    reminder_days_before: tuple[int, ...] = (7, 1)
    reminder_local_time: time = time(9, 0)
    nudge_days_before_deadline: int | None = None
    followup_days_after: int = 1
    followup_local_time: time = time(10, 0)
    survey_url: str = ""
    materials: tuple[Link, ...] = ()
    unsubscribe_url: str = ""
    allowed_sender_domains: tuple[str, ...] = ()
    # Brake on mail loops: at most this many answers to one address per day.
    max_answers_per_sender_per_day: int = 5
    # authserv-ids whose Authentication-Results header we trust (our own receiving server).
    trusted_authserv_ids: tuple[str, ...] = ()
    raw_message_retention_days: int = 30
    personal_data_retention_days: int = 365
    programme: tuple[ProgrammeItem, ...] = ()
    sessions: tuple[SessionSpec, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def session_by_key(self, key: str) -> SessionSpec | None:
        return next((s for s in self.sessions if s.key == key), None)


def load_event_config(path: str | Path) -> EventConfig:
    """Read and validate an event TOML file; raises ConfigError naming the file and every key."""
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(source, [file_problem(exc)]) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigFileError(source, [f"not UTF-8 text (byte {exc.start})"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(source, [f"invalid TOML: {exc}"]) from exc
    return parse_event_config(data, source)


def parse_event_config(
    data: Mapping[str, Any], source: str = "<config>", *, stored: bool = False
) -> EventConfig:
    """Validate `data`; raises ConfigError listing every problem, each with its key.

    A key the config does not know is a problem (with the nearest known key as a suggestion),
    since a misspelt optional key would otherwise silently fall back to its default; so is a
    name two sessions share. A `stored` config (`workflows.events.event_config`) was accepted
    when it was loaded, perhaps by another version of rsvpmail: those two checks, which an
    older version did not make, are left out for it, so that an event keeps working.
    """
    r = _Reader(data, source)
    tzname = r.text("timezone", default="Europe/Amsterdam")
    try:
        tz = ZoneInfo(tzname)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem("timezone", f"unknown time zone {tzname!r}")
        tz = ZoneInfo("Europe/Amsterdam")
    starts_at = r.moment("starts_at", tz)
    ends_at = r.moment("ends_at", tz)
    deadline = r.moment("registration_deadline", tz)
    if starts_at and ends_at and ends_at <= starts_at:
        r.problem("ends_at", "must be after starts_at")
    if starts_at and deadline and deadline > starts_at:
        r.problem("registration_deadline", "must not be after starts_at")

    slug = r.text("slug")
    if slug and not SLUG_RE.match(slug):
        r.problem("slug", "use lowercase letters, digits and hyphens (2-63 characters)")
    language = r.text("language", default="nl")
    if language not in LANGUAGES:
        r.problem("language", f"must be one of {', '.join(LANGUAGES)}")
    capacity = r.integer("capacity", minimum=MIN_CAPACITY)

    mail = r.table("mail")
    reply_address = mail.email("reply_address")
    sender = mail.text("sender", default="")
    if sender:
        _, sender_addr = parseaddr(sender)
        if not _EMAIL_RE.match(sender_addr):
            mail.problem("sender", f"not a valid 'Name <address>': {sender!r}")
    else:
        sender = reply_address or ""
    contact = r.table("contact")
    offers = r.table("offers")
    late = r.table("late_replies")
    late_policy = late.text("policy", default="waitlist")
    if late_policy not in LATE_POLICIES:
        late.problem("policy", f"must be one of {', '.join(LATE_POLICIES)}")
    reminders = r.table("reminders")
    followup = r.table("followup")
    retention = r.table("retention")
    trust = r.table("trust")

    extra = r.table("extra")

    sessions = _sessions(r, check_names=not stored)
    programme = tuple(
        ProgrammeItem(time=str(p.value("time", "")), item=str(p.value("item", "")))
        for p in r.tables("programme")
    )
    materials = tuple(
        Link(title=str(m.value("title", "")), url=str(m.value("url", "")))
        for m in followup.tables("materials")
    )

    cfg = EventConfig(
        slug=slug or "",
        title=r.text("title") or "",
        organiser=r.text("organiser", default=""),
        timezone=tzname,
        starts_at=starts_at or datetime.now(tz),
        ends_at=ends_at or datetime.now(tz),
        venue=r.text("venue") or "",
        address=r.text("address", default=""),
        capacity=capacity or 1,
        registration_deadline=deadline or datetime.now(tz),
        language=language,
        reply_address=reply_address or "",
        sender=sender,
        contact_name=contact.text("name") or "",
        contact_email=contact.email("email") or "",
        contact_phone=contact.text("phone", default=""),
        description=r.text("description", default=""),
        price=r.text("price", default=""),
        companions_welcome=r.boolean("companions_welcome", default=True),
        max_companions=r.integer("max_companions", default=1, minimum=0) or 0,
        offer_expiry_hours=offers.integer("expiry_hours", default=48, minimum=1) or 48,
        no_offers_within_hours=offers.integer("no_offers_within_hours", default=24, minimum=0) or 0,
        late_policy=late_policy,
        reminder_days_before=tuple(reminders.int_list("days_before", default=[7, 1])),
        reminder_local_time=reminders.clock("local_time", default=time(9, 0)),
        nudge_days_before_deadline=reminders.integer(
            "nudge_unanswered_days_before_deadline", default=None, minimum=0
        ),
        followup_days_after=followup.integer("days_after", default=1, minimum=0) or 0,
        followup_local_time=followup.clock("local_time", default=time(10, 0)),
        survey_url=followup.text("survey_url", default=""),
        materials=materials,
        unsubscribe_url=mail.text("unsubscribe_url", default=""),
        allowed_sender_domains=tuple(
            d.lower() for d in trust.str_list("allowed_sender_domains", default=[])
        ),
        max_answers_per_sender_per_day=trust.integer(
            "max_answers_per_sender_per_day", default=5, minimum=1
        )
        or 5,
        trusted_authserv_ids=tuple(
            a.lower() for a in trust.str_list("trusted_authserv_ids", default=[])
        ),
        raw_message_retention_days=retention.integer(
            "raw_messages_days_after_event", default=30, minimum=0
        )
        or 0,
        personal_data_retention_days=retention.integer(
            "personal_data_days_after_event", default=365, minimum=0
        )
        or 0,
        programme=programme,
        sessions=sessions,
        extra={
            key: value for key in EXTRA_KEYS if (value := extra.text(key, default=None)) is not None
        },
    )
    if not stored:
        r.refuse_unknown_keys()
    if r.problems:
        raise ConfigError(source, r.problems)
    return cfg


def _sessions(r: _Reader, *, check_names: bool) -> tuple[SessionSpec, ...]:
    specs: list[SessionSpec] = []
    seen: set[str] = set()
    for s in r.tables("sessions"):
        key = s.text("key")
        if key and not re.fullmatch(r"[a-z0-9_-]+", key):
            s.problem("key", "use lowercase letters, digits, '-' and '_'")
        if key in seen:
            s.problem("key", f"duplicate session key {key!r}")
        seen.add(key or "")
        specs.append(
            SessionSpec(
                key=key or "",
                title=s.text("title") or "",
                aliases=tuple(a.lower() for a in s.str_list("aliases", default=[])),
                capacity=s.integer("capacity", default=None, minimum=1),
                description=s.text("description", default=""),
            )
        )
    if check_names:
        _check_session_names(r, specs)
    return tuple(specs)


# How replies name a session (workflows/understand/sessions.py): its key, its title, the part
# of the title before a ':', or an alias, compared as lowercase words. Two names with the same
# words are the same name to a reply.
_NAME_WORD_RE = re.compile(r"[a-zà-ÿ0-9]+(?:-[a-zà-ÿ0-9]+)*")
# Which name to blame when two sessions share one: the easiest to change first.
_NAME_KINDS = ("alias", "title", "start of the title", "key")


@dataclass(frozen=True)
class _SessionName:
    index: int  # in [[sessions]]
    session: str  # its key
    kind: str  # one of _NAME_KINDS
    text: str  # as written

    @property
    def field(self) -> str:
        return {"alias": "aliases", "key": "key"}.get(self.kind, "title")

    def describe(self) -> str:
        if self.kind == "start of the title":
            return f"the start of the title of session {self.session!r} (before the ':')"
        article = "an" if self.kind == "alias" else "the"
        return f"{article} {self.kind} of session {self.session!r}"


def _check_session_names(r: _Reader, specs: Sequence[SessionSpec]) -> None:
    """Refuse a name (key, title, alias) that two sessions share: a reply could mean either."""
    by_words: dict[tuple[str, ...], list[_SessionName]] = {}
    order: dict[_SessionName, int] = {}  # where each name is written, for the problems' order
    for index, spec in enumerate(specs):
        names = [_SessionName(index, spec.key, "key", spec.key)]
        if spec.title:
            names.append(_SessionName(index, spec.key, "title", spec.title))
            start = spec.title.split(":")[0].strip()
            if start != spec.title:
                names.append(_SessionName(index, spec.key, "start of the title", start))
        names += [_SessionName(index, spec.key, "alias", a) for a in spec.aliases]
        for name in names:
            order.setdefault(name, len(order))
            words = tuple(_NAME_WORD_RE.findall(name.text.lower()))
            if words:
                by_words.setdefault(words, []).append(name)
    clashes: list[tuple[_SessionName, list[_SessionName]]] = []
    for names in by_words.values():
        # Two sessions with the same key are reported as a duplicate key already.
        if len({n.session for n in names}) > 1:
            blamed = min(names, key=lambda n: (_NAME_KINDS.index(n.kind), -n.index))
            clashes.append((blamed, names))
    for blamed, names in sorted(clashes, key=lambda clash: order[clash[0]]):
        # Each other session once, by the name that says most: its key, title, or an alias.
        others: dict[int, _SessionName] = {}
        for n in sorted(names, key=lambda n: (n.index, -_NAME_KINDS.index(n.kind))):
            if n.session != blamed.session:
                others.setdefault(n.index, n)
        r.problem(
            f"sessions[{blamed.index}].{blamed.field}",
            f"{blamed.text!r} is {blamed.describe()} and also "
            + " and ".join(o.describe() for o in others.values())
            + "; a reply naming it could mean either",
        )


_MISSING: Any = object()


class _Reader:
    """Typed access to one TOML table that collects problems instead of stopping at the first.

    Every key asked for is remembered, so that the keys nobody asked for can be refused
    (`refuse_unknown_keys`) in this table and in every table read through it.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        source: str,
        prefix: str = "",
        problems: list[str] | None = None,
        *,
        where: str = "",
        readers: list[_Reader] | None = None,
    ) -> None:
        self.data = data
        self.source = source
        self.prefix = prefix
        self.problems: list[str] = problems if problems is not None else []
        self.where = where  # for suggestions: "" (top level), "mail.", "[[sessions]]"
        self.known: set[str] = set()
        self.readers: list[_Reader] = readers if readers is not None else []
        self.readers.append(self)

    def _child(self, data: Mapping[str, Any], prefix: str, where: str) -> _Reader:
        return _Reader(data, self.source, prefix, self.problems, where=where, readers=self.readers)

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.prefix}{key}: {message}")

    def _get(self, key: str, default: Any) -> Any:
        self.known.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            self.problem(key, "missing")
        return default

    def value(self, key: str, default: Any) -> Any:
        """The value as written, unchecked."""
        return self._get(key, default)

    def text(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default:
            return None if default is _MISSING else default
        if not isinstance(value, str) or (default is _MISSING and not value.strip()):
            self.problem(key, "must be a non-empty text")
            return None
        return value.strip()

    def email(self, key: str) -> str | None:
        value = self.text(key)
        if value and not _EMAIL_RE.match(value):
            self.problem(key, f"not a valid email address: {value!r}")
            return None
        return value  # type: ignore[no-any-return]

    def integer(self, key: str, default: Any = _MISSING, minimum: int | None = None) -> Any:
        value = self._get(key, default)
        if value is default:
            return None if default is _MISSING else default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, "must be a whole number")
            return None
        if minimum is not None and value < minimum:
            self.problem(key, f"must be at least {minimum}")
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            self.problem(key, "must be true or false")
            return default
        return value

    def int_list(self, key: str, default: list[int]) -> list[int]:
        value = self._get(key, default)
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            self.problem(key, "must be a list of whole numbers ≥ 0")
            return default
        return value

    def str_list(self, key: str, default: list[str]) -> list[str]:
        value = self._get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, "must be a list of texts")
            return default
        return value

    def clock(self, key: str, default: time) -> time:
        value = self._get(key, default)
        if isinstance(value, time):
            return value
        if isinstance(value, str):
            try:
                return time.fromisoformat(value)
            except ValueError:
                pass
        self.problem(key, "must be a time of day such as 09:00")
        return default

    def moment(self, key: str, tz: ZoneInfo) -> datetime | None:
        value = self._get(key, _MISSING)
        if value is _MISSING:
            return None
        if isinstance(value, datetime):
            # A local time in the file means local time at the event.
            return value if value.tzinfo else value.replace(tzinfo=tz)
        if isinstance(value, date):
            return datetime.combine(value, time(23, 59), tzinfo=tz)
        self.problem(key, "must be a date-time such as 2023-02-01T13:00:00")
        return None

    def table(self, key: str) -> _Reader:
        """The table under `key` (empty when left out)."""
        value = self._get(key, {})
        if not isinstance(value, dict):
            self.problem(key, "must be a table")
            value = {}
        return self._child(value, f"{self.prefix}{key}.", where=f"{self.where}{key}.")

    def tables(self, key: str) -> list[_Reader]:
        """One reader per table of the list under `key` ([[key]]; empty when left out)."""
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(key, "must be a list of tables ([[...]])")
            return []
        return [
            self._child(item, f"{self.prefix}{key}[{i}].", where=f"[[{self.where}{key}]]")
            for i, item in enumerate(value)
        ]

    def refuse_unknown_keys(self) -> None:
        """A problem for every key that no reader of this config asked for, with a suggestion."""
        for reader in self.readers:
            for key in reader.data:
                if key not in reader.known:
                    hint = reader._suggestion(str(key))
                    reader.problem(str(key), "unknown key" + (f" ({hint})" if hint else ""))

    def _suggestion(self, key: str) -> str:
        close = difflib.get_close_matches(key, sorted(self.known), n=1)
        if close:
            return f"did you mean {close[0]}?"
        # The right key in the wrong table: after a [section] header, every key belongs to it.
        for other in self.readers:
            if other.where != self.where and key in other.known:
                if not other.where:
                    return (
                        f"did you mean the top-level {key}? Top-level keys go before the "
                        "first [section]"
                    )
                if other.where.startswith("[["):
                    return f"did you mean {key} in {other.where}?"
                return f"did you mean {other.where}{key}?"
        return ""


def reminder_due_times(cfg: EventConfig) -> list[tuple[int, datetime]]:
    """(days_before, aware local datetime) for each configured reminder."""
    result = []
    for days in cfg.reminder_days_before:
        day = (cfg.starts_at - timedelta(days=days)).date()
        result.append((days, datetime.combine(day, cfg.reminder_local_time, tzinfo=cfg.tz)))
    return result
