"""Re-sealing under a new current key: every account, a page at a time, logins going on;
then the old key can go, and what it alone could open is reported, never lost silently."""

from __future__ import annotations

from typing import Any

from pam_twofa import protocol as p
from support.fakes import Accounts, Clock
from support.service import code, enroll
from twofad.keys import Keys
from twofad.service import Service

OLD, NEW = b"o" * 32, b"n" * 32


def ring(service: Service, master: bytes, *older: bytes) -> None:
    """The host's key ring replaced, as a restart with other key files does."""
    service.context.keys = Keys.from_master(master, older)


def reseal_all(service: Service, limit: int = 2) -> list[dict[str, Any]]:
    pages, after = [], None
    while True:
        page = service.reseal(after=after, limit=limit)
        pages.append(page)
        if page["next"] is None:
            return pages
        after = page["next"]


def test_a_new_current_key_reseals_every_account_and_each_still_logs_in(
    service: Service, clock: Clock, accounts: Accounts
) -> None:
    for uid, name in enumerate(("carol", "dave", "erin"), start=1002):
        accounts.add(name, uid, name)
    ring(service, OLD)
    users = ["alice", "bob", "carol", "dave", "erin"]
    secrets = {user: enroll(service, clock, user).secret for user in users}
    clock.advance(30)
    ring(service, NEW, OLD)
    pages = reseal_all(service)
    assert [page["accounts"] for page in pages] == [2, 2, 1]
    assert sum(page["resealed"] for page in pages) == 5
    assert all(page["key"] == Keys.from_master(NEW).current.name for page in pages)
    ring(service, NEW)  # the old key retired
    for user in users:
        assert service.verify(user, code(secrets[user], clock))["result"] == p.ACCEPTED
    assert reseal_all(service)[-1]["resealed"] == 0  # nothing left to do


def test_the_database_fingerprint_moves_to_the_new_key_only_once_all_is_done(
    service: Service, clock: Clock
) -> None:
    ring(service, OLD)
    enroll(service, clock, "alice")
    enroll(service, clock, "bob")
    service.store.set_meta("key_fingerprint", Keys.from_master(OLD).fingerprint)
    ring(service, NEW, OLD)
    first = service.reseal(limit=1)
    assert first["next"] == "alice"
    assert Keys.from_master(OLD).matches(service.store.get_meta("key_fingerprint") or b"")
    service.reseal(after=first["next"], limit=1)
    fingerprint = service.store.get_meta("key_fingerprint") or b""
    assert Keys.from_master(NEW).matches(fingerprint)
    assert not Keys.from_master(OLD).matches(fingerprint)


def test_a_key_being_set_up_is_resealed_too(service: Service, clock: Clock) -> None:
    ring(service, OLD)
    secret = service.enroll_begin("alice")["secret"]
    ring(service, NEW, OLD)
    assert service.reseal()["resealed"] == 1
    ring(service, NEW)
    confirmed = service.enroll_confirm("alice", code(secret, clock))
    assert confirmed["state"] == "active"


def test_recovery_codes_under_the_old_key_are_named_and_new_ones_are_not(
    service: Service, clock: Clock
) -> None:
    ring(service, OLD)
    codes = enroll(service, clock, "alice").recovery_codes
    enroll(service, clock, "bob")
    ring(service, NEW, OLD)
    service.regenerate_recovery_codes("bob")  # under the new key
    report = reseal_all(service, limit=50)[-1]
    assert report["recovery_codes_under_older_keys"] == ["alice"]
    # while the old key is in the ring, alice's codes still work
    assert service.verify("alice", codes[0])["result"] == p.ACCEPTED


def test_a_secret_this_ring_cannot_open_is_reported_and_the_fingerprint_stays(
    service: Service, clock: Clock
) -> None:
    ring(service, OLD)
    enroll(service, clock, "alice")
    service.store.set_meta("key_fingerprint", Keys.from_master(OLD).fingerprint)
    ring(service, NEW)  # the old key was removed before re-sealing
    report = service.reseal()
    assert (report["unreadable"], report["resealed"]) == (["alice"], 0)
    assert Keys.from_master(OLD).matches(service.store.get_meta("key_fingerprint") or b"")
