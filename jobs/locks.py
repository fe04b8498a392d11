"""Who may run what when several `rsvpmail serve` processes share a database.

PostgreSQL: a session-level advisory lock on a dedicated connection. When the holder dies its
connection drops and the server releases the lock at once, so another instance takes over
within one retry interval (seconds), with no lease to wait out.

SQLite: only one instance may run at all (one writer, one file). An OS file lock next to the
database enforces it; the kernel releases it when the process dies, so a crash never leaves
a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text


class InstanceConflict(RuntimeError):
    """Another instance holds what this one needs; the message says what to do."""


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock from a readable name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class AdvisoryLock:
    """A PostgreSQL session advisory lock, held on its own connection until released.

    Safe to share between threads (the service's ticks and its shutdown both use it).
    """

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = lock_key(name)
        self._connection: Any = None
        self._mutex = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether this process believes it holds the lock (no round trip; see try_acquire)."""
        return self._connection is not None

    def try_acquire(self) -> bool:
        """Take the lock, or confirm it is still ours (a dropped connection lost it)."""
        with self._mutex:
            return self._try_acquire()

    def _try_acquire(self) -> bool:
        if self._connection is not None:
            if self._alive():
                return True
            self._drop()
        connection = self.engine.connect()
        try:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar()
            connection.commit()  # end the implicit transaction; the session lock stays
        except Exception:
            connection.close()
            raise
        if got:
            self._connection = connection
            return True
        connection.close()
        return False

    def _alive(self) -> bool:
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
            return True
        except Exception:
            return False

    def _drop(self) -> None:
        try:
            self._connection.invalidate()
        finally:
            self._connection = None

    def release(self) -> None:
        with self._mutex:
            if self._connection is None:
                return
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                self._connection.commit()
                self._connection.close()
            except Exception:
                self._drop()  # closing the session releases the lock all the same
            self._connection = None


class SqliteInstanceLock:
    """An exclusive flock on `<database>.serve.lock`: one serving process per SQLite file."""

    def __init__(self, database_path: str) -> None:
        self.database_path = database_path
        self.path = Path(f"{database_path}.serve.lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise InstanceConflict(
                f"another rsvpmail instance (pid {holder}) is using {self.database_path}; "
                "SQLite allows one instance per database file: stop that one first, or use "
                'PostgreSQL ([database] url = "postgresql://…") to run several'
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def sqlite_path(engine: Engine) -> str | None:
    """The database file of a SQLite engine, or None for other engines and :memory:."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    return str(Path(database).resolve()) if database and database != ":memory:" else None
