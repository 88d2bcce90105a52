"""`twofa-mailer`: deliver what twofad hands over, by SMTP, as the configuration says."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading

from pam_twofa.vocabulary import DEFAULT_MAILER_CONFIG, DEFAULT_MAILER_SOCKET

from .config import ConfigError, load
from .server import MailerServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twofa-mailer",
        description="Deliver pam-twofa's messages (codes by email) by SMTP: twofad hands "
        "them over a local socket; this process alone has network access.",
    )
    parser.add_argument(
        "--config",
        default=DEFAULT_MAILER_CONFIG,
        help=f"the relay and the sender (default: {DEFAULT_MAILER_CONFIG})",
    )
    parser.add_argument(
        "--socket",
        default=DEFAULT_MAILER_SOCKET,
        help=f"where twofad hands messages over (default: {DEFAULT_MAILER_SOCKET})",
    )
    parser.add_argument("--check", action="store_true", help="check the configuration, then exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"twofa-mailer: {exc}", file=sys.stderr)
        return 1
    smtp = config.smtp
    where = f"{smtp.host}:{smtp.port} ({smtp.security})"
    if args.check:
        print(f"{args.config}: valid; relay {where}, from {config.sender}")
        return 0
    for stale in (args.socket, f"{args.socket}.new"):  # left by a mailer that was killed
        with contextlib.suppress(FileNotFoundError):
            if not os.path.isdir(stale):
                os.unlink(stale)
    old_mask = os.umask(0o111)  # the socket 0666: the peer's uid decides, not the mode
    try:
        server = MailerServer(args.socket, config)
    except OSError as exc:
        print(f"twofa-mailer: cannot listen on {args.socket}: {exc.strerror}", file=sys.stderr)
        return 1
    finally:
        os.umask(old_mask)
    stop = threading.Event()

    def stopping(signum: int, frame: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    print(f"twofa-mailer: on {args.socket}, relay {where}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
