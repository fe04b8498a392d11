"""Command line: ``python -m devmail run --dir DIR [--imap-port N] [--smtp-port N]``,
and ``python -m devmail ensure`` to install Dovecot when it is missing.

Starts a MailStack in the foreground, prints one JSON line with the connection details
(so scripts can read it), and shuts down cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from devmail.dovecot import DEFAULT_PASSWORD, ensure_dovecot
from devmail.errors import DevmailError
from devmail.stack import MailStack


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devmail", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run Dovecot IMAP + SMTP in the foreground")
    run.add_argument("--dir", required=True, help="directory for config, logs and mail")
    run.add_argument("--imap-port", type=int, default=0, help="IMAP port (default: free port)")
    run.add_argument("--smtp-port", type=int, default=0, help="SMTP port (default: free port)")
    run.add_argument("--password", default=DEFAULT_PASSWORD, help="shared IMAP password")
    run.add_argument(
        "--no-store",
        action="store_true",
        help="accept mail over SMTP without storing it (for sender benchmarks)",
    )
    commands.add_parser("ensure", help="install Dovecot (IMAP + LMTP) when it is missing")
    return parser


def run(directory: str, imap_port: int, smtp_port: int, password: str, store: bool = True) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Install the handlers before starting, so an early SIGTERM still stops cleanly.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = MailStack(directory, password=password, imap_port=imap_port, smtp_port=smtp_port)
    stack.smtp.store_messages = store
    try:
        stack.start()
    except DevmailError as exc:
        print(f"devmail: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(stack.info()), flush=True)
        # Wake up now and then to notice a Dovecot that died on its own.
        while not stop.wait(0.5):
            if not stack.dovecot.running:
                print(f"devmail: Dovecot exited; see {stack.log_path}", file=sys.stderr)
                return 1
    finally:
        stack.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "ensure":
        try:
            print(f"devmail: Dovecot at {ensure_dovecot()}")
        except DevmailError as exc:
            print(f"devmail: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "run":
        return run(args.dir, args.imap_port, args.smtp_port, args.password, not args.no_store)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
