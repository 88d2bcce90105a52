"""One structured event per operation: to the journal, or one line on stderr elsewhere.

Events carry only whitelisted fields, so no secret, code or recovery code can reach the
log through a careless caller.
"""

from __future__ import annotations

import os
import socket
import sys
import syslog
from collections.abc import Callable
from typing import Any, TextIO

FIELDS = (
    "event",
    "user",
    "result",
    "method",
    "device",
    "service",
    "rhost",
    "peer_uid",
    "peer_pid",
    "retry_after",
    "error",
    "left_out",
    "host",
)
JOURNAL_SOCKET = "/run/systemd/journal/socket"
WARNING_RESULTS = frozenset(
    {"rejected", "replayed", "locked", "unauthorized", "bad_request", "rate_limited"}
)


def _message(fields: dict[str, Any]) -> str:
    head = f"{fields['event']}"
    if "user" in fields:
        head += f" {fields['user']}"
    outcome = fields.get("result") or fields.get("error") or "ok"
    details = " ".join(
        f"{key}={_logfmt_value(fields[key])}"
        for key in ("method", "device", "service", "rhost", "peer_uid", "left_out")
        if key in fields
    )
    return f"{head}: {outcome}" + (f" ({details})" if details else "")


_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/@")

# Quotes, backslashes and control characters escaped: no value can end its line early.
_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"'} | {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def _logfmt_value(value: Any) -> str:
    """Bare when it is plain ASCII, quoted otherwise: a value cannot forge another field."""
    text = str(value)
    if text and _BARE.issuperset(text):
        return text
    return '"' + text.translate(_ESCAPES) + '"'


class Audit:
    """Write events to `send` (journal.send) or, failing that, to `stream`."""

    def __init__(
        self,
        send: Callable[..., Any] | None = None,
        stream: TextIO | None = None,
        host: str | None = None,
    ) -> None:
        """`host`: named in every event, so a fleet's logs, gathered in one place, say
        which host each login was on."""
        self._send = send
        self._stream = stream if stream is not None else sys.stderr
        self.host = host

    @classmethod
    def for_this_system(cls) -> Audit:
        if os.path.exists(JOURNAL_SOCKET):
            try:
                from systemd import journal
            except ImportError:
                pass
            else:
                return cls(send=journal.send, host=socket.gethostname())
        return cls(host=socket.gethostname())

    def event(self, event: str, **values: Any) -> None:
        fields = {"event": event}
        fields.update((key, values[key]) for key in FIELDS[1:] if values.get(key) is not None)
        if self.host is not None:
            fields.setdefault("host", self.host)
        outcome = fields.get("result") or fields.get("error")
        priority = syslog.LOG_WARNING if outcome in WARNING_RESULTS else syslog.LOG_INFO
        journal_fields = {f"TWOFA_{key.upper()}": str(value) for key, value in fields.items()}
        if self._journal(_message(fields), priority, **journal_fields):
            return
        line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        print(f"twofad: {line}", file=self._stream, flush=True)

    def note(self, message: str) -> None:
        """A line about the daemon itself (start, stop, trouble), never about a secret."""
        if not self._journal(message, syslog.LOG_NOTICE):
            print(f"twofad: {message}", file=self._stream, flush=True)

    def _journal(self, message: str, priority: int, **fields: str) -> bool:
        """Send to the journal, if there is one; False means the line goes to stderr
        instead (none configured, or journald restarting): never nowhere."""
        if self._send is None:
            return False
        try:
            self._send(message, PRIORITY=str(priority), SYSLOG_IDENTIFIER="twofad", **fields)
        except OSError:
            return False
        return True
