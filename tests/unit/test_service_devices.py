"""Several devices per account, through the service with an injected clock: each device
its own key and steps, the bound, the proof to add or remove one, names, and a renewal
that replaces them all only once it is confirmed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pam_twofa import protocol as p
from pam_twofa import vocabulary as v
from support.fakes import Accounts, Clock
from support.service import code, enroll
from twofad.keys import Keys
from twofad.service import Service, ServiceError
from twofad.store import Store


def add(service: Service, clock: Clock, name: str, user: str = "alice") -> str:
    """A device added by an administrator (no proof) and confirmed; its key."""
    secret = str(service.add_device(user, name)["secret"])
    confirmed = service.enroll_confirm(user, code(secret, clock, -1), name)
    assert confirmed["device"] == name and "recovery_codes" not in confirmed
    return secret


def names(service: Service, user: str = "alice") -> dict[str, str]:
    return {d["name"]: d["state"] for d in service.list_devices(user)["devices"]}


def test_a_code_of_any_active_device_logs_in_and_says_which(service: Service, clock: Clock) -> None:
    phone, _ = enroll(service, clock)
    tablet = add(service, clock, "tablet")
    assert service.verify("alice", code(tablet, clock))["device"] == "tablet"
    assert service.verify("alice", code(phone, clock))["device"] == "phone"


def test_a_step_is_accepted_once_per_device(service: Service, clock: Clock) -> None:
    phone, _ = enroll(service, clock)
    tablet = add(service, clock, "tablet")
    assert service.verify("alice", code(phone, clock))["result"] == p.ACCEPTED
    assert service.verify("alice", code(phone, clock))["result"] == p.REPLAYED
    assert service.verify("alice", code(tablet, clock))["result"] == p.ACCEPTED  # the same step
    assert service.verify("alice", code(tablet, clock))["result"] == p.REPLAYED
    assert service.verify("alice", code(phone, clock, -1))["result"] == p.REPLAYED  # older


def test_a_pending_device_does_not_log_in(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    pending = str(service.add_device("alice", "tablet")["secret"])
    assert service.verify("alice", code(pending, clock))["result"] == p.REJECTED
    assert names(service) == {"phone": v.ACTIVE, "tablet": v.PENDING}


def test_a_removed_device_is_refused_and_the_others_go_on(service: Service, clock: Clock) -> None:
    phone, _ = enroll(service, clock)
    tablet = add(service, clock, "tablet")
    assert service.remove_device("alice", "Phone")["removed"] == "phone"  # in any case
    assert service.verify("alice", code(phone, clock))["result"] == p.REJECTED
    assert service.verify("alice", code(tablet, clock))["result"] == p.ACCEPTED


def test_the_last_active_device_goes_only_with_disable(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    service.add_device("alice", "tablet")  # pending: it does not count
    with pytest.raises(ServiceError) as last:
        service.remove_device("alice", "phone")
    assert last.value.code == p.LAST_DEVICE and "disable" in last.value.message
    assert service.remove_device("alice", "tablet")["devices_left"] == 1
    assert names(service) == {"phone": v.ACTIVE}


def test_at_most_five_devices_pending_ones_included(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    for number in range(2, v.MAX_DEVICES):
        add(service, clock, f"key {number}")
    service.add_device("alice", "key 5")  # pending, and counted
    with pytest.raises(ServiceError) as over:
        service.add_device("alice", "key 6")
    assert over.value.code == p.TOO_MANY_DEVICES and len(names(service)) == v.MAX_DEVICES
    service.add_device("alice", "KEY 5")  # the same pending one, anew: still five
    assert len(names(service)) == v.MAX_DEVICES


def test_adding_on_ones_own_account_needs_a_code_that_is_then_spent(
    service: Service, clock: Clock
) -> None:
    phone, recovery = enroll(service, clock)
    with pytest.raises(ServiceError) as refused:
        service.add_device("alice", "tablet", needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED
    with pytest.raises(ServiceError) as wrong:
        service.add_device("alice", "tablet", "000000", needs_proof=True)
    assert wrong.value.code == p.INVALID_CODE and names(service) == {"phone": v.ACTIVE}
    proof = code(phone, clock)
    service.add_device("alice", "tablet", proof, needs_proof=True)
    assert service.verify("alice", proof)["result"] == p.REPLAYED  # the proof was spent
    service.add_device("alice", "watch", recovery[0], needs_proof=True)  # or a recovery code
    assert service.status("alice")["recovery_codes_left"] == len(recovery) - 1


def test_names_are_unique_in_any_case(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    add(service, clock, "Tablet")
    for taken in ("tablet", "PHONE"):
        with pytest.raises(ServiceError) as clash:
            service.add_device("alice", taken)
        assert clash.value.code == p.DEVICE_EXISTS
    with pytest.raises(ServiceError) as clash:
        service.rename_device("alice", "tablet", "Phone")
    assert clash.value.code == p.DEVICE_EXISTS
    with pytest.raises(ServiceError) as unknown:
        service.rename_device("alice", "watch", "wrist")
    assert unknown.value.code == p.UNKNOWN_DEVICE
    assert service.rename_device("alice", "tablet", "old tablet")["renamed_from"] == "Tablet"
    assert names(service) == {"phone": v.ACTIVE, "old tablet": v.ACTIVE}


def test_only_the_first_device_brings_recovery_codes(service: Service, clock: Clock) -> None:
    _, recovery = enroll(service, clock)
    add(service, clock, "tablet")  # asserts there are none
    assert service.status("alice")["recovery_codes_left"] == len(recovery)


def test_a_renewal_replaces_every_device_only_once_confirmed(
    service: Service, clock: Clock
) -> None:
    phone, old_codes = enroll(service, clock)
    tablet = add(service, clock, "tablet")
    begun = service.enroll_begin("alice", replace=True)
    assert begun["device"] == "phone 2"  # "phone" is still in use meanwhile
    assert names(service) == {"phone": v.ACTIVE, "tablet": v.ACTIVE, "phone 2": v.PENDING}
    assert service.verify("alice", code(tablet, clock))["result"] == p.ACCEPTED  # until then
    confirmed = service.enroll_confirm("alice", code(begun["secret"], clock), "phone 2")
    assert len(confirmed["recovery_codes"]) == len(old_codes)  # a new start
    assert names(service) == {"phone 2": v.ACTIVE}
    assert service.verify("alice", code(phone, clock, 1))["result"] == p.REJECTED
    assert service.verify("alice", old_codes[0])["result"] == p.REJECTED


def test_a_renewal_in_progress_is_not_counted_toward_the_bound(
    service: Service, clock: Clock
) -> None:
    enroll(service, clock)
    for number in range(2, v.MAX_DEVICES + 1):
        add(service, clock, f"key {number}")
    begun = service.enroll_begin("alice", replace=True)
    assert begun["device"] == "phone 2" and len(names(service)) == v.MAX_DEVICES + 1


def test_confirm_must_name_one_of_several_pending_devices(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    tablet = str(service.add_device("alice", "tablet")["secret"])
    service.add_device("alice", "watch")
    with pytest.raises(ServiceError) as which:
        service.enroll_confirm("alice", code(tablet, clock))
    assert which.value.code == p.BAD_REQUEST and "tablet" in which.value.message
    with pytest.raises(ServiceError) as wrong_one:
        service.enroll_confirm("alice", code(tablet, clock), "watch")
    assert wrong_one.value.code == p.INVALID_CODE
    assert service.enroll_confirm("alice", code(tablet, clock), "tablet")["device"] == "tablet"


def test_status_lists_devices_with_when_added_and_last_used(service: Service, clock: Clock) -> None:
    phone, _ = enroll(service, clock)
    add(service, clock, "tablet")
    service.verify("alice", code(phone, clock))
    listed = {d["name"]: d for d in service.status("alice")["devices"]}
    assert listed["phone"]["last_used"] == clock.now and listed["tablet"]["last_used"] is None
    assert listed["tablet"]["added_at"] == clock.now
    assert all("secret" not in d for d in listed.values())


def test_racing_logins_with_each_devices_code_get_one_acceptance_each(
    service: Service, clock: Clock, tmp_path: Path, keys: Keys, accounts: Accounts
) -> None:
    """Two daemons on one database (each its own connection), each login twice at once:
    each device's code is accepted exactly once."""
    phone, _ = enroll(service, clock)
    tablet = add(service, clock, "tablet")
    rivals = [
        Service(Store(str(tmp_path / "twofad.db")), keys, service.policy, clock, accounts)
        for _ in range(4)
    ]
    start = threading.Barrier(len(rivals))
    results: list[tuple[str, str]] = []

    def login(rival: Service, secret: str) -> None:
        start.wait()
        reply = rival.verify("alice", code(secret, clock))
        results.append((reply["result"], reply.get("device", "-")))

    pairs = zip(rivals, (phone, phone, tablet, tablet), strict=True)
    threads = [threading.Thread(target=login, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for rival in rivals:
        rival.store.close()
    assert sorted(results) == [
        (p.ACCEPTED, "phone"),
        (p.ACCEPTED, "tablet"),
        (p.REPLAYED, "-"),
        (p.REPLAYED, "-"),
    ]
