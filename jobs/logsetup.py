"""Structured logs: one line per decision, `key=value` pairs a machine can grep.

Rules log with `extra={"fields": {...}}` or plain %-formatting; either way a line carries the
time (milliseconds, so lines of several instances can be ordered), level, logger and
message. Values with spaces or quotes are quoted, so every line splits into key=value pairs.
Message bodies and secrets are never passed to a logger.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime

_BARE = re.compile(r"[^\s\"'=]*")


def _value(value: object) -> str:
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).astimezone()
        parts = [
            when.isoformat(timespec="milliseconds"),
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_value(record.getMessage())}",
        ]
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            parts += [f"{key}={_value(value)}" for key, value in fields.items()]
        if record.exc_info:
            parts.append(f"exc={_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic logs every migration check at INFO, APScheduler every tick at INFO and every
    # tick skipped because the previous one still runs at WARNING — which is by design
    # (max_instances=1, coalesce). Both would drown the decisions.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
