"""The plumbing every operation shares: one transaction each, retried after a lost race."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from support.stores import SEALED
from twofad.service import Service, ServiceError
from twofad.service.context import CAS_ATTEMPTS
from twofad.store import Conflict


def test_a_lost_compare_and_set_is_retried_from_a_fresh_read(
    service: Service, clock: Clock
) -> None:
    seen: list[float] = []

    def operation(now: float) -> str:
        seen.append(now)
        clock.advance(1)
        if len(seen) == 1:
            raise Conflict("another writer got there first")
        return "done"

    assert service.context.atomic(operation) == "done"
    assert seen == [clock.now - 2, clock.now - 1]  # the time is read again for the retry


def test_a_store_too_busy_to_win_is_an_internal_error_not_a_loop(service: Service) -> None:
    calls = 0

    def always_loses(now: float) -> None:
        nonlocal calls
        calls += 1
        raise Conflict("lost again")

    with pytest.raises(ServiceError) as refused:
        service.context.atomic(always_loses)
    assert refused.value.code == p.INTERNAL and calls == CAS_ATTEMPTS


def test_an_operation_that_fails_leaves_nothing_behind(service: Service) -> None:
    def half_done(now: float) -> None:
        service.store.begin_device("alice", None, "phone", SEALED, now)
        raise ServiceError(p.BAD_REQUEST, "changed my mind")

    with pytest.raises(ServiceError):
        service.context.atomic(half_done)
    assert service.status("alice")["enrollment"] == "none"
