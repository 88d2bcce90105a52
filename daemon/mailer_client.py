"""twofad's side of the mailer: one message handed over a local socket, one answer.

twofad opens no network connection (its sandbox has none); the mailer, a process of
its own with its own user, does the SMTP.  Over its Unix socket goes one JSON object
per line each way: the message (`to`, `subject`, `body`) and, once the relay has
taken it or refused it, `{"ok": true}` or `{"ok": false, "error": "..."}`.  The body
holds the code; nothing here logs it.  The wait is bounded: a mailer that does not
answer in time is a delivery that failed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pam_twofa.vocabulary import MAILER_WAIT

from .emailing import Mail

DELIVERY_TIMEOUT = MAILER_WAIT  # the mailer's own SMTP time-out is shorter
MAX_REPLY_BYTES = 4096


class DeliveryFailed(Exception):
    """The message was not delivered; the reason is for the log, never for the person."""


class MailerClient:
    def __init__(self, path: str | None, timeout: float = DELIVERY_TIMEOUT) -> None:
        self.path = path  # None: no mailer configured
        self.timeout = timeout

    async def deliver(self, mail: Mail) -> None:
        if self.path is None:
            raise DeliveryFailed("no mailer is configured (twofad --mailer-socket)")
        try:
            reply = await asyncio.wait_for(self._exchange(mail), self.timeout)
        except TimeoutError:
            raise DeliveryFailed(f"the mailer did not answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise DeliveryFailed(f"the mailer at {self.path} cannot be reached: {exc}") from None
        except ValueError:  # a line past MAX_REPLY_BYTES
            raise DeliveryFailed("the mailer's answer is too long") from None
        if reply.get("ok") is not True:
            error = reply.get("error")
            raise DeliveryFailed(f"the mailer could not deliver: {str(error)[:300]}")

    async def _exchange(self, mail: Mail) -> dict[str, Any]:
        assert self.path is not None
        reader, writer = await asyncio.open_unix_connection(self.path, limit=MAX_REPLY_BYTES)
        try:
            message = {"to": mail.to, "subject": mail.subject, "body": mail.body}
            writer.write(json.dumps(message).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
        if not line.endswith(b"\n"):
            raise DeliveryFailed("the mailer closed the connection without an answer")
        try:
            reply = json.loads(line)
        except ValueError:
            raise DeliveryFailed("the mailer's answer is not JSON") from None
        if not isinstance(reply, dict):
            raise DeliveryFailed("the mailer's answer is not an object")
        return reply
