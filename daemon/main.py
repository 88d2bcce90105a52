"""`twofad`: start the daemon in the foreground, under systemd or by hand."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable

from pam_twofa.client import root_socket_path
from pam_twofa.vocabulary import (
    DEFAULT_MAILER_SOCKET,
    DEFAULT_POLICY,
    DEFAULT_SOCKET,
    DEFAULT_STATE_DIR,
    ROOT_DIRECTORY,
)

from . import move, policy_file, statedir, systemd
from .audit import Audit
from .connections import Limits
from .directory import SystemDirectory
from .keyfile import load_ring
from .keys import KeyFileError, Keys
from .mailer_client import MailerClient
from .offload import StoreRunner
from .policy import Policy
from .policy_file import PolicyError
from .server import Server
from .service import Service, ServiceError
from .sockets import SocketInUse, bind_root_socket, bind_unix_socket
from .statedir import StateDirError
from .store import Backend, StoreError
from .store.interface import StoreUnavailable
from .store.location import POOL_SIZE, is_postgres, open_store, sqlite_path

DATABASE_NAME = "twofad.db"
KEY_NAME = "twofad.key"
OLDER_KEYS = "older-keys"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twofad",
        description="The pam-twofa daemon: holds TOTP secrets and decides every login.",
        epilog="example: twofad --socket /tmp/t/twofad.sock --state-dir /tmp/t/state",
    )
    parser.add_argument(
        "--socket",
        default=os.environ.get("TWOFA_SOCKET", DEFAULT_SOCKET),
        help=f"Unix socket to listen on (default: $TWOFA_SOCKET or {DEFAULT_SOCKET}); "
        "ignored under systemd socket activation",
    )
    parser.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help=f"directory of the database (default: {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        default=os.environ.get("TWOFAD_STORE") or None,
        help="where the state lives: sqlite:///PATH (default: STATE_DIR/twofad.db), or a "
        "PostgreSQL connection string a fleet shares (postgresql://HOST/DB?..., "
        "service=NAME); never a password: libpq reads it from the passfile "
        "(default: $TWOFAD_STORE)",
    )
    parser.add_argument(
        "--key-file",
        help=f"master key, created mode 0400 if missing (default: STATE_DIR/{KEY_NAME}); "
        "keep it out of database backups",
    )
    parser.add_argument(
        "--older-keys",
        metavar="DIR",
        help=f"older keys of the ring (*.key, mode 0400): they open what they sealed, and "
        f"new secrets are sealed with --key-file (default: STATE_DIR/{OLDER_KEYS})",
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help=f"the YAML policy (default: {DEFAULT_POLICY} if present, else the built-in "
        "default: 2FA optional for everyone); an invalid file stops the start",
    )
    parser.add_argument(
        "--move-to",
        metavar="URL",
        help="move this host's state (the SQLite file of --store or --state-dir) into the "
        "shared store URL, report what became of each account, and exit",
    )
    parser.add_argument(
        "--mailer-socket",
        metavar="PATH",
        default=os.environ.get("TWOFAD_MAILER_SOCKET", DEFAULT_MAILER_SOCKET),
        help="the mailer's socket, where codes by email are handed over for delivery "
        f"(default: $TWOFAD_MAILER_SOCKET or {DEFAULT_MAILER_SOCKET}); twofad itself "
        "opens no network connection",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=Limits.idle_timeout,
        help="seconds before an idle connection is closed (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=Limits.max_connections,
        help="open connections at most (default: %(default)s)",
    )
    return parser


def _raise_fd_limit() -> int:
    """Allow as many open files as the hard limit, so the connection cap is what binds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # every file of state is born private: never chmod after writing
    audit = Audit.for_this_system()
    try:
        location = (
            args.store or f"sqlite://{os.path.join(os.path.abspath(args.state_dir), DATABASE_NAME)}"
        )
        database = os.path.join(args.state_dir, DATABASE_NAME)
        statedir.make_or_check(
            args.state_dir, database if is_postgres(location) else sqlite_path(location)
        )
        keys = load_ring(
            args.key_file or os.path.join(args.state_dir, KEY_NAME),
            args.older_keys or os.path.join(args.state_dir, OLDER_KEYS),
        )
        opened = open_store(location)
        store = opened.store
        _check_key_belongs(store, keys, audit, opened.description)
    except (KeyFileError, StoreError, StateDirError) as exc:
        print(f"twofad: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"twofad: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.move_to is not None:
        return _move_to(store, keys, args.move_to, opened.description)
    load_policy = _policy_loader(args.policy)
    try:
        policy = load_policy()
    except PolicyError as exc:
        print("twofad: error: invalid policy:\n" + "\n".join(exc.messages), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"twofad: error: cannot read policy {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    fd_limit = _raise_fd_limit()
    limits = Limits(
        idle_timeout=args.idle_timeout,
        max_connections=max(1, min(args.max_connections, fd_limit - 32)),
    )
    service = Service(store, keys, policy, time.time, SystemDirectory())
    runner = StoreRunner(workers=POOL_SIZE) if opened.remote else None
    audit.note(f"state in {opened.description}")
    key_file = args.key_file or os.path.join(args.state_dir, KEY_NAME)
    server = Server(
        service,
        audit,
        load_policy=load_policy,
        policy_path=args.policy or DEFAULT_POLICY,
        diagnostics=lambda: _file_facts(args.state_dir, key_file),
        limits=limits,
        runner=runner,
        mailer=MailerClient(args.mailer_socket),
    )
    try:
        listening, owned_paths = _listening_sockets(args.socket, audit)
    except (SocketInUse, OSError) as exc:
        print(f"twofad: error: {exc}", file=sys.stderr)
        store.close()
        return 1
    try:
        asyncio.run(_run(server, listening, audit))
    finally:
        for path in owned_paths:
            _remove_socket_file(path)
        if runner is not None:
            runner.stop(wait=3.0)  # the store's bound, and the watchdog's, end any job
        store.close()
    return 0


def _file_facts(state_dir: str, key_file: str) -> dict[str, object]:
    """Modes of the files that guard the secrets, for `twofactl doctor`."""
    facts: dict[str, object] = {"state_dir": state_dir, "key_file": key_file}
    for name, path in (("state_dir", state_dir), ("key_file", key_file)):
        try:
            info = os.stat(path)
        except OSError as exc:
            facts[f"{name}_error"] = exc.strerror
            continue
        facts[f"{name}_mode"] = f"{stat.S_IMODE(info.st_mode):04o}"
        facts[f"{name}_owner_uid"] = info.st_uid
    facts["daemon_uid"] = os.geteuid()
    return facts


def _move_to(source: Backend, keys: Keys, location: str, source_description: str) -> int:
    """`--move-to`: this host's accounts into the fleet's store, one line each."""
    try:
        target = open_store(location)
        _compare_key(target.store, keys, target.description)
        report = move.move(source, target.store, keys, time.time())
    except (KeyFileError, StoreError) as exc:
        print(f"twofad: error: {exc}", file=sys.stderr)
        return 1
    finally:
        source.close()
    print(f"from {source_description} to {target.description}:")
    for user, result in report.results.items():
        print(f"  {user}: {result}")
    if report.codes_under_older_keys:
        print(
            "recovery codes hashed under an older key of this host's ring (they work on "
            "hosts whose ring holds it; new ones replace them): "
            + ", ".join(report.codes_under_older_keys)
        )
    target.store.close()
    return 0 if move.UNREADABLE not in report.results.values() else 1


def _check_key_belongs(store: Backend, keys: Keys, audit: Audit, where: str) -> None:
    """Refuse a key file that is not the one this database's secrets are sealed with.

    The database keeps a fingerprint of its key. One written before fingerprints
    existed is checked by unsealing a secret, then given its fingerprint.  A shared
    database out of reach at start is no reason not to start: the daemon answers
    `unavailable` until it is back, and checks the key when it can.
    """
    try:
        _compare_key(store, keys, where)
    except StoreUnavailable as exc:
        audit.note(f"the key file is not checked against the database yet: {exc.message}")


def _compare_key(store: Backend, keys: Keys, where: str) -> None:
    with store.transaction():
        fingerprint = store.get_meta("key_fingerprint")
        if fingerprint is None:
            for row in store.list_users()[:1]:
                for device in row.devices[:1]:
                    keys.unseal(row.name, device.secret)
            store.set_meta("key_fingerprint", keys.fingerprint)
        elif not keys.matches(fingerprint):
            raise KeyFileError(
                f"the key file does not belong to the database ({where}): "
                "its secrets were sealed with another key (restore the matching key file)"
            )


def _policy_loader(path: str | None, system_path: str = DEFAULT_POLICY) -> Callable[[], Policy]:
    """How to (re)read the policy: the file given, else the system's, else the built-in.

    Once the system's file has been read, it stays the source: a file missing at a
    reload (an editor's rename, a mistaken mv) is an error that keeps the policy in
    force, never a quiet fall back to the built-in "optional for everyone".
    """
    if path is not None:
        return lambda: policy_file.load(path)
    from_file = False

    def system_or_builtin() -> Policy:
        nonlocal from_file
        if from_file or os.path.exists(system_path):
            policy = policy_file.load(system_path)
            from_file = True
            return policy
        return Policy()

    return system_or_builtin


def _listening_sockets(path: str, audit: Audit) -> tuple[list[socket.socket], list[str]]:
    """The shared socket and the root-only one beside it; and the paths we bound.

    Under socket activation both come from systemd; a root-only socket missing there
    (an older unit) is made here if we may, and otherwise root shares the one socket.
    """
    inherited = systemd.inherited_sockets()
    owned: list[str] = []
    if inherited:
        sockets = [sock for sock in inherited if not _root_only(sock)]
        if not sockets:
            raise SocketInUse("systemd passed only a root-only socket; the shared one is missing")
        if len(sockets) < len(inherited):
            return [*sockets, *(sock for sock in inherited if _root_only(sock))], owned
        path = sockets[0].getsockname() or path
    else:
        sockets = [bind_unix_socket(path)]
        owned.append(path)
    try:
        sockets.append(bind_root_socket(path))
        owned.append(root_socket_path(path))
    except (SocketInUse, OSError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        audit.note(f"no root-only socket at {root_socket_path(path)}: {reason}")
    return sockets, owned


def _root_only(sock: socket.socket) -> bool:
    name = sock.getsockname()
    return isinstance(name, str) and os.path.basename(os.path.dirname(name)) == ROOT_DIRECTORY


def _remove_socket_file(path: str) -> None:
    """Remove the socket we bound; no other daemon can have taken the path while we ran."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _reload_on_signal(server: Server) -> None:
    """SIGHUP: reload; on any error the old policy stays and the log says why."""
    with contextlib.suppress(ServiceError):
        server.reload()


async def _run(server: Server, listening: list[socket.socket], audit: Audit) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload_on_signal, server)
    listeners = [server.listen(sock) for sock in listening]
    try:
        names = ", ".join(str(sock.getsockname() or "an inherited socket") for sock in listening)
        audit.note(f"listening on {names}")
        systemd.notify("READY=1")
        await stop.wait()
        systemd.notify("STOPPING=1")
        audit.note("stopping")
    finally:
        for listener in listeners:
            listener.close()
        await server.close_connections()
        for sock in listening:
            sock.close()
