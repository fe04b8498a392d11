"""A private Dovecot (IMAP + LMTP) instance run as a child process.

Every instance gets its own generated configuration, runtime directory, state
directory, log file and mail root, so several can run side by side and none of
them touches the system-wide Dovecot (``/etc/dovecot``, ``/run/dovecot``).
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import importlib.resources
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

from devmail.errors import DevmailError

DOVECOT_BINARY = Path("/usr/sbin/dovecot")
# dovecot-imapd and dovecot-lmtpd each ship one of these; dovecot-core alone is not enough.
REQUIRED_HELPERS = (Path("/usr/lib/dovecot/imap"), Path("/usr/lib/dovecot/lmtp"))
APT_PACKAGES = ("dovecot-imapd", "dovecot-lmtpd")
DEFAULT_PASSWORD = "devmail"

# The unix socket path limit is 108 bytes; Dovecot puts sockets up to ~30 characters deep
# below its runtime directory (e.g. "run/login/imap-urlauth").
_MAX_SPOOL_PATH = 60
# Paths end up unquoted in Dovecot settings such as "args = home=...": keep them simple.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/+-]+$")
# The password is written unquoted into "args = password=..."; '%' would be expanded.
_SAFE_PASSWORD = re.compile(r"^[A-Za-z0-9._~!@^*+=:,/-]+$")
_APT_LOCK = Path(tempfile.gettempdir()) / "devmail-apt.lock"


def _helpers_missing() -> bool:
    return not DOVECOT_BINARY.exists() or not all(p.exists() for p in REQUIRED_HELPERS)


def ensure_dovecot() -> Path:
    """Return the Dovecot binary, installing the Debian packages first if needed.

    Installation only happens as root; otherwise a :class:`DevmailError` says what to
    install. A file lock serialises concurrent callers (e.g. pytest-xdist workers), who
    would otherwise fight over the dpkg lock.
    """
    if not _helpers_missing():
        return DOVECOT_BINARY
    packages = " ".join(APT_PACKAGES)
    if os.geteuid() != 0:
        raise DevmailError(
            f"Dovecot is not installed ({DOVECOT_BINARY} or its IMAP/LMTP helpers are "
            f"missing). Install it with: sudo apt-get install -y {packages}"
        )
    with _APT_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _helpers_missing():  # another process may have installed it meanwhile
            _apt_install()
    if _helpers_missing():
        raise DevmailError(f"apt-get install {packages} did not provide {DOVECOT_BINARY}")
    return DOVECOT_BINARY


def _apt_install() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES]

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )

    if run(install).returncode == 0:
        return
    # A fresh container often has no package lists yet; refresh them once and retry.
    update = run(["apt-get", "update"])
    result = run(install)
    if result.returncode != 0:
        raise DevmailError(
            f"Could not install {' '.join(APT_PACKAGES)}:\n"
            f"{update.stderr[-2000:]}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a currently unused TCP port.

    There is a small window before the server binds it; callers retry on a clash.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class _Identity:
    """Who owns the mail files and runs Dovecot's unprivileged helpers."""

    mail_uid: int
    mail_gid: int
    internal_user: str
    internal_group: str
    login_user: str
    rootless: bool


def _identity() -> _Identity:
    if os.geteuid() != 0:
        name = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        return _Identity(os.geteuid(), os.getegid(), name, group, name, rootless=True)
    # Dovecot never accesses mail as uid 0, so root-run instances store mail as the
    # "dovecot" system user, which the Debian package always creates.
    try:
        dovecot = pwd.getpwnam("dovecot")
    except KeyError as exc:
        raise DevmailError("The 'dovecot' system user is missing; reinstall dovecot-core") from exc
    login_user = "dovenull"
    try:
        pwd.getpwnam(login_user)
    except KeyError:
        login_user = "nobody"
    group = grp.getgrgid(dovecot.pw_gid).gr_name
    return _Identity(dovecot.pw_uid, dovecot.pw_gid, "dovecot", group, login_user, rootless=False)


def _reachable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether ``uid`` can traverse every directory from / down to ``path``.

    Mail processes and Dovecot's helpers run unprivileged and open paths below the
    spool directly, so e.g. pytest's 0700 ``/tmp/pytest-of-root`` breaks them.
    """
    try:
        user_name = pwd.getpwuid(uid).pw_name
        groups = set(os.getgrouplist(user_name, gid))
    except KeyError:
        groups = {gid}
    path = path.resolve()
    for directory in (*reversed(path.parents), path):
        try:
            st = directory.stat()
        except OSError:
            return False
        if uid == 0:
            continue
        if st.st_uid == uid:
            needed = stat.S_IXUSR
        elif st.st_gid in groups:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not st.st_mode & needed:
            return False
    return True


class DovecotServer:
    """One Dovecot master process with IMAP on a loopback port and LMTP on a socket.

    ``base_dir`` receives the generated ``dovecot.conf`` and ``dovecot.log``. Runtime
    sockets, state and mail live in the *spool* directory, which is ``base_dir`` itself
    when Dovecot's unprivileged processes can reach it and the socket paths stay short
    enough, and otherwise a private ``/tmp/devmail-*`` directory that is deleted by
    :meth:`stop` (a ``mail`` symlink in ``base_dir`` points at it meanwhile).
    """

    def __init__(
        self,
        base_dir: Path | str,
        *,
        password: str = DEFAULT_PASSWORD,
        imap_port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        if not _SAFE_PASSWORD.match(password):
            raise ValueError(
                "password may only contain letters, digits and ._~!@^*+=:,/- "
                "(it is written unquoted into the Dovecot configuration)"
            )
        self.base_dir = Path(base_dir).resolve()
        self.password = password
        self.host = "127.0.0.1"
        self.requested_imap_port = imap_port
        self.imap_port = imap_port
        self.startup_timeout = startup_timeout
        self.config_path = self.base_dir / "dovecot.conf"
        self.log_path = self.base_dir / "dovecot.log"
        self._stderr_path = self.base_dir / "dovecot.stderr"
        # Resolved in start(), after ensure_dovecot() has created the 'dovecot' user.
        self._identity: _Identity | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._temp_spool: Path | None = None
        self.spool_dir = self.base_dir

    # ------------------------------------------------------------------ paths
    @property
    def run_dir(self) -> Path:
        return self.spool_dir / "run"

    @property
    def mail_root(self) -> Path:
        """Directory holding one Maildir home per (lower-cased) user name."""
        return self.spool_dir / "mail"

    @property
    def lmtp_socket(self) -> Path:
        return self.run_dir / "lmtp"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _choose_spool(self, ident: _Identity) -> None:
        usable = (
            len(str(self.base_dir)) <= _MAX_SPOOL_PATH
            and _SAFE_PATH.match(str(self.base_dir)) is not None
            and _reachable_by(self.base_dir, ident.mail_uid, ident.mail_gid)
        )
        if usable:
            self.spool_dir = self.base_dir
            return
        # /tmp is world-traversable and short, so Dovecot's helpers can use it.
        self._temp_spool = Path(tempfile.mkdtemp(prefix="devmail-", dir="/tmp"))
        self._temp_spool.chmod(0o755)
        self.spool_dir = self._temp_spool
        link = self.base_dir / "mail"
        if link.is_symlink():
            link.unlink()
        if not link.exists():
            link.symlink_to(self.mail_root, target_is_directory=True)

    def _render_config(self, ident: _Identity) -> str:
        extra = ""
        if ident.rootless:
            # chroot() needs root; Dovecot's defaults chroot the login and anvil services.
            extra = (
                "service imap-login {\n  chroot =\n}\n"
                "service imap-urlauth-login {\n  chroot =\n}\n"
                "service anvil {\n  chroot =\n}\n"
            )
        template = (
            importlib.resources.files("devmail")
            .joinpath("dovecot-template.conf")
            .read_text(encoding="utf-8")
        )
        digest = hashlib.sha1(str(self.base_dir).encode()).hexdigest()[:10]
        return Template(template).substitute(
            instance_name=f"devmail-{digest}",
            run_dir=self.run_dir,
            state_dir=self.spool_dir / "state",
            log_path=self.log_path,
            internal_user=ident.internal_user,
            internal_group=ident.internal_group,
            login_user=ident.login_user,
            mail_uid=ident.mail_uid,
            mail_gid=ident.mail_gid,
            password=self.password,
            mail_root=self.mail_root,
            imap_port=self.imap_port,
            extra=extra,
        )

    # --------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._process is not None:
            raise DevmailError("Dovecot instance already started")
        binary = ensure_dovecot()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        ident = self._identity = _identity()
        self._choose_spool(ident)
        self.mail_root.mkdir(exist_ok=True)
        os.chown(self.mail_root, ident.mail_uid, ident.mail_gid)
        self.mail_root.chmod(0o755)
        (self.spool_dir / "state").mkdir(exist_ok=True)
        # A port picked by us may be grabbed by someone else before Dovecot binds it.
        attempts = 1 if self.requested_imap_port else 5
        for attempt in range(attempts):
            if not self.requested_imap_port:
                self.imap_port = free_port(self.host)
            try:
                self._start_once(binary, ident)
                return
            except DevmailError as exc:
                if "Address already in use" not in str(exc) or attempt == attempts - 1:
                    self._cleanup_spool()
                    raise

    def _start_once(self, binary: Path, ident: _Identity) -> None:
        self.config_path.write_text(self._render_config(ident), encoding="utf-8")
        with self._stderr_path.open("wb") as stderr:
            # A new session keeps a terminal's Ctrl-C away from Dovecot: the owner shuts
            # it down in an orderly way through stop() instead.
            self._process = subprocess.Popen(
                [str(binary), "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self._terminate()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                raise DevmailError(
                    f"Dovecot exited with status {self._process.returncode}:\n{self._diagnostics()}"
                )
            if self.lmtp_socket.exists() and self._imap_greets():
                return
            if time.monotonic() > deadline:
                raise DevmailError(
                    f"Dovecot did not accept IMAP connections on {self.host}:{self.imap_port} "
                    f"within {self.startup_timeout} s:\n{self._diagnostics()}"
                )
            time.sleep(0.02)

    def _imap_greets(self) -> bool:
        # The login process only greets once the auth process is up, so a greeting
        # (rather than a mere TCP connect) means logins will work.
        try:
            with socket.create_connection((self.host, self.imap_port), timeout=1) as sock:
                return sock.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def _diagnostics(self) -> str:
        parts = []
        for path in (self._stderr_path, self.log_path):
            with contextlib.suppress(OSError):
                parts.append(f"--- {path}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def child_pids(self) -> list[int]:
        """PIDs of the Dovecot helper processes (imap, lmtp, auth, ...) of this master."""
        if self._process is None:
            return []
        return _children_of(self._process.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut Dovecot down and wait until none of its processes is left."""
        self._terminate(timeout)
        self._cleanup_spool()

    def _terminate(self, timeout: float = 10.0) -> None:
        process = self._process
        if process is None:
            return
        children = _children_of(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # The master does not wait for all of its children: an imap process whose client
        # is still connected keeps running, and with it the stats and log processes.
        # Tell the leftovers to shut down too (imap then says "BYE" to its client).
        children = [pid for pid in children if _alive(pid)]
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        while children and time.monotonic() < deadline:
            children = [pid for pid in children if _alive(pid)]
            if children:
                time.sleep(0.01)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._process = None

    def _cleanup_spool(self) -> None:
        if self._temp_spool is None:
            return
        shutil.rmtree(self._temp_spool, ignore_errors=True)
        link = self.base_dir / "mail"
        if link.is_symlink():
            link.unlink()
        self._temp_spool = None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, or None if it does not exist."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    """True for a running process; zombies count as gone (they hold no resources and,
    in containers whose init does not reap, would otherwise linger forever)."""
    info = _proc_stat(pid)
    return info is not None and info[0] not in ("Z", "X")


def _children_of(parent: int) -> list[int]:
    children = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                info = _proc_stat(int(entry.name))
                if info is not None and info[1] == parent and info[0] not in ("Z", "X"):
                    children.append(int(entry.name))
    return children
