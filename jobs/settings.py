"""Service settings: a TOML file for the shape, environment variables for secrets.

Secrets never live in the file: `password_env` names the variable that holds each password,
and every value can be overridden by `RSVPMAIL_<SECTION>_<KEY>` (e.g. RSVPMAIL_SMTP_HOST,
RSVPMAIL_DATABASE_URL, RSVPMAIL_TICKS_OUTBOX), so the same file works on a laptop and in
production. Unknown sections and keys are refused: a typo must not silently fall back to a
default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

TLS_MODES = ("none", "starttls", "ssl")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")

T = TypeVar("T")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class ImapSettings:
    host: str = "127.0.0.1"
    port: int = 1143
    tls: str = "none"
    user: str = ""
    password: str = field(default="", repr=False)
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    review_folder: str = "Review"
    quarantine_folder: str = "Quarantine"
    sent_folder: str = ""  # file a copy of every sent mail here when set
    timeout: float = 30.0
    batch_size: int = 100
    idle: bool = True
    poll_seconds: float = 60.0
    max_message_bytes: int = 25_000_000


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 1025
    tls: str = "none"
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    rate_limit_per_minute: float = 0.0  # 0: no limit (e.g. 30 for Microsoft 365)
    batch_size: int = 100
    max_attempts: int = 8
    lease_seconds: float = 300.0


@dataclass(frozen=True)
class TickIntervals:
    """[ticks]: seconds between two runs of each scheduled job.

    A tick only asks the database what is due, so shorter ticks cost queries, not
    correctness; `inbox` is also how quickly another instance takes over the mailbox when
    the reader dies.
    """

    inbox: float = 15.0
    outbox: float = 5.0
    offers: float = 30.0
    timeline: float = 30.0
    housekeeping: float = 24 * 3600.0


@dataclass(frozen=True)
class _DatabaseSection:
    url: str = ""


@dataclass(frozen=True)
class _ServiceSection:
    instance_name: str = ""


DEFAULTS_SOURCE = "<defaults>"


@dataclass(frozen=True)
class ServiceSettings:
    database_url: str = ""
    instance_name: str = ""
    imap: ImapSettings = ImapSettings()
    smtp: SmtpSettings = SmtpSettings()
    ticks: TickIntervals = TickIntervals()
    source: str = DEFAULTS_SOURCE
    # Where each value that is not the default came from, by "section.key": the file's
    # path or "$VARIABLE" (see `origin`).
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def origin(self, section: str, key: str) -> str:
        """Where `[section] key` came from: the file, "$RSVPMAIL_…", or "default"."""
        return self.origins.get(f"{section}.{key}", "default")


_SECTIONS: dict[str, type[Any]] = {
    "database": _DatabaseSection,
    "service": _ServiceSection,
    "imap": ImapSettings,
    "smtp": SmtpSettings,
    "ticks": TickIntervals,
}


def load_settings(path: str | Path | None, env: Mapping[str, str] | None = None) -> ServiceSettings:
    """Read the TOML file (when given) and apply environment overrides and secrets."""
    env = os.environ if env is None else env
    source = DEFAULTS_SOURCE if path is None else str(path)
    data = {} if path is None else _read_sections(Path(path), source)
    origins: dict[str, str] = {}

    def section(name: str, cls: type[T]) -> T:
        return _section(cls, data.get(name, {}), name, env, source, origins)

    database = section("database", _DatabaseSection)
    service = section("service", _ServiceSection)
    return ServiceSettings(
        database_url=database.url,
        instance_name=service.instance_name,
        imap=section("imap", ImapSettings),
        smtp=section("smtp", SmtpSettings),
        ticks=section("ticks", TickIntervals),
        source=source,
        origins=origins,
    )


def database_url_in_file(path: str | Path) -> str:
    """The file's `[database] url` ("" when it has none), without environment overrides.

    Reads only what choosing the database needs: commands that do not send or read mail
    must not require the mail passwords' variables to be set.
    """
    source = str(path)
    data = _read_sections(Path(path), source)
    return _section(_DatabaseSection, data.get("database", {}), "database", {}, source, {}).url


def _read_sections(path: Path, source: str) -> dict[str, Any]:
    data = _read_toml(path, source)
    for name, value in data.items():
        if name not in _SECTIONS:
            raise SettingsError(
                f"{source}: [{name}]: unknown section (known: {', '.join(_SECTIONS)})"
            )
        if not isinstance(value, dict):
            raise SettingsError(f"{source}: {name}: expected a [{name}] section")
    return data


def _read_toml(path: Path, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{source}: invalid TOML: {exc}") from exc


def _section(
    cls: type[T],
    raw: Mapping[str, Any],
    name: str,
    env: Mapping[str, str],
    source: str,
    origins: dict[str, str],
) -> T:
    """One section: file values, then RSVPMAIL_<SECTION>_<KEY>, then the password variable.

    Records in `origins` where each value came from, so that an error (and the SMTP server
    a command reports) names the environment variable when one was used, not the file.
    """
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    came_from: dict[str, str] = {}
    for key, value in raw.items():
        if key == "password":
            raise SettingsError(
                f"{source}: [{name}] password: do not put secrets in the file; "
                f'set password_env = "VARIABLE" or RSVPMAIL_{name.upper()}_PASSWORD'
            )
        if key == "password_env" and "password" in known:
            continue
        if key not in known:
            raise SettingsError(f"{source}: [{name}] {key}: unknown setting")
        values[key] = value
        came_from[key] = source
    for key in known:
        variable = f"RSVPMAIL_{name.upper()}_{key.upper()}"
        override = env.get(variable)
        if override is not None:
            values[key] = override
            came_from[key] = f"${variable}"
    password_var = raw.get("password_env")
    if password_var and "password" not in values:
        if password_var not in env:
            raise SettingsError(f"{source}: [{name}] password_env: ${password_var} is not set")
        values["password"] = env[password_var]
        came_from["password"] = f"${password_var}"

    def where(key: str) -> str:
        origin = came_from.get(key, source)
        if origin.startswith("$"):
            return f"environment variable {origin[1:]} (sets [{name}] {key})"
        return f"{origin}: [{name}] {key}"

    defaults = cls()
    for key, value in values.items():
        values[key] = _coerce(type(getattr(defaults, key)), value, where(key))
    result = replace(defaults, **values)  # type: ignore[type-var]
    _validate(result, name, where)
    origins.update({f"{name}.{key}": origin for key, origin in came_from.items()})
    return result


def _coerce(kind: type[Any], value: Any, where: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise SettingsError(f"{where}: expected true or false, got {value!r}")
    if kind in (int, float) and isinstance(value, bool):
        raise SettingsError(f"{where}: expected a number, got {value!r}")
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{where}: expected {kind.__name__}, got {value!r}") from exc


def _validate(section: object, name: str, where: Callable[[str], str]) -> None:
    tls = getattr(section, "tls", "none")
    if tls not in TLS_MODES:
        raise SettingsError(f"{where('tls')}: must be one of {', '.join(TLS_MODES)}")
    port = getattr(section, "port", 1)
    if not 0 < port < 65536:
        raise SettingsError(f"{where('port')}: {port} is not a TCP port")
    if isinstance(section, TickIntervals):
        for item in fields(section):
            if getattr(section, item.name) <= 0:
                raise SettingsError(f"{where(item.name)}: must be above 0 seconds")
