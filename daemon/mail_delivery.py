"""A message an operation wants mailed, delivered before the operation is answered.

The operation has already written what the message stands for (a code's keyed hash,
the send counted); delivery happens after its transaction, so no row is held while
the relay is slow.  A message that cannot be delivered is answered `not_sent` (the
server then runs the operation's undo): the person is told the code could not be
sent, and nothing else changes.

A reply with nothing to send (a name that gets no mail) waits about as long as real
deliveries have lately taken, so how long an answer takes does not tell the names
apart either.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from pam_twofa import protocol as p
from pam_twofa.errors import TwofaError

from .audit import Audit
from .mailer_client import DeliveryFailed, MailerClient
from .service.email import Outgoing

FIRST_GUESS = 0.3  # seconds a delivery is taken to last before one has been timed
WEIGHT = 0.2  # of the latest delivery in the running estimate
LONGEST_PRETENCE = 10.0  # seconds a pretended send waits at most

NOT_SENT_MESSAGE = "the message could not be sent by email; nothing was changed; try again later"


class MailDelivery:
    def __init__(self, mailer: MailerClient, audit: Audit) -> None:
        self.mailer = mailer
        self.audit = audit
        self.typical = FIRST_GUESS
        self._random = random.SystemRandom()

    async def deliver(
        self, outgoing: Outgoing, op: str, context: dict[str, Any]
    ) -> dict[str, Any] | TwofaError:
        """The operation's reply once its message is delivered, or NOT_SENT."""
        if outgoing.mail is None:
            if op == "email.send":
                pause = min(self.typical, LONGEST_PRETENCE) * self._random.uniform(0.8, 1.2)
                await asyncio.sleep(pause)
            return outgoing.reply
        started = time.monotonic()
        try:
            await self.mailer.deliver(outgoing.mail)
        except DeliveryFailed as exc:
            user = context.get("user") or "-"
            self.audit.note(f"{op} for {user}: the message was not delivered: {exc}")
            return TwofaError(p.NOT_SENT, NOT_SENT_MESSAGE)
        took = time.monotonic() - started
        self.typical = (1 - WEIGHT) * self.typical + WEIGHT * took
        return outgoing.reply
