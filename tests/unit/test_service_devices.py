"""Several devices per account, through the service with an injected clock: each device
its own key and steps, the bound, the proof to add or remove one, names, and a renewal
that replaces them all only once it is confirmed; and the same rules when daemons on one
database race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def test_a_renewal_in_progress_leaves_room_for_a_fifth_device(
    service: Service, clock: Clock
) -> None:
    enroll(service, clock)
    for number in range(2, v.MAX_DEVICES):
        add(service, clock, f"key {number}")
    service.enroll_begin("alice", replace=True)
    service.add_device("alice", "key 5")  # the renewal is not counted
    assert refused(lambda: service.add_device("alice", "key 6")) == p.TOO_MANY_DEVICES


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


# --- proofs, names, renewals and the other rules in detail ----------------------------


def none_of(secrets: list[str], clock: Clock) -> str:
    """A code certainly not accepted now from any of these keys: none of their windows'."""
    valid = {code(secret, clock, offset) for secret in secrets for offset in (-1, 0, 1)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in valid)


def refused(call: Callable[[], object]) -> str:
    """The error code `call` is refused with (it must be refused)."""
    with pytest.raises(ServiceError) as error:
        call()
    return error.value.code


def test_the_code_confirming_an_added_device_is_spent(service: Service, clock: Clock) -> None:
    phone, _ = enroll(service, clock)
    tablet = str(service.add_device("alice", "tablet")["secret"])
    confirming = code(tablet, clock)
    service.enroll_confirm("alice", confirming, "tablet")
    assert service.verify("alice", confirming)["result"] == p.REPLAYED
    assert service.verify("alice", code(phone, clock))["device"] == "phone"  # its own step


def test_a_wrong_code_is_one_failure_however_many_devices(service: Service, clock: Clock) -> None:
    phone, _ = enroll(service, clock)
    secrets = [phone, add(service, clock, "tablet"), add(service, clock, "watch")]
    assert service.verify("alice", none_of(secrets, clock))["result"] == p.REJECTED
    assert service.status("alice")["failures"] == 1


def test_a_recovery_code_login_names_no_device(service: Service, clock: Clock) -> None:
    _, recovery = enroll(service, clock)
    add(service, clock, "tablet")
    before = service.list_devices("alice")["devices"]
    reply = service.verify("alice", recovery[0])
    assert reply["method"] == "recovery" and "device" not in reply
    assert service.list_devices("alice")["devices"] == before  # no device used or spent


def test_any_active_device_proves_but_a_pending_one_does_not(
    service: Service, clock: Clock
) -> None:
    enroll(service, clock)
    tablet = add(service, clock, "tablet")
    watch = str(service.add_device("alice", "watch")["secret"])  # pending
    proof = code(watch, clock)
    assert refused(lambda: service.add_device("alice", "key", proof, needs_proof=True)) == (
        p.INVALID_CODE
    )
    assert service.status("alice")["failures"] == 1  # a proof is a login like any other
    service.add_device("alice", "key", code(tablet, clock), needs_proof=True)
    expected = {"phone": v.ACTIVE, "tablet": v.ACTIVE, "watch": v.PENDING, "key": v.PENDING}
    assert names(service) == expected


def test_a_recovery_code_proves_only_once(service: Service, clock: Clock) -> None:
    _, recovery = enroll(service, clock)
    service.add_device("alice", "tablet", recovery[0], needs_proof=True)
    again = refused(lambda: service.add_device("alice", "watch", recovery[0], needs_proof=True))
    assert again == p.INVALID_CODE and "watch" not in names(service)


def test_a_refused_operation_does_not_spend_its_proof(service: Service, clock: Clock) -> None:
    """The operation changes nothing, the proof's spending included: its code still logs in."""
    phone, _ = enroll(service, clock)
    proof = code(phone, clock)
    clash = refused(lambda: service.add_device("alice", "Phone", proof, needs_proof=True))
    assert clash == p.DEVICE_EXISTS
    assert service.verify("alice", proof)["result"] == p.ACCEPTED


def test_a_device_is_added_only_to_an_account_in_use(service: Service, clock: Clock) -> None:
    assert refused(lambda: service.add_device("alice", "tablet")) == p.NOT_ENROLLED  # no row
    service.enroll_begin("alice")  # a first device, still pending
    assert refused(lambda: service.add_device("alice", "tablet")) == p.NOT_ENROLLED
    assert refused(lambda: service.add_device("carol", "tablet")) == p.UNKNOWN_USER
    assert names(service) == {"phone": v.PENDING}


def test_adding_a_pending_device_again_gives_it_a_new_key(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    first = str(service.add_device("alice", "tablet")["secret"])
    second = str(service.add_device("alice", "Tablet")["secret"])
    assert first != second and names(service) == {"phone": v.ACTIVE, "Tablet": v.PENDING}
    assert refused(lambda: service.enroll_confirm("alice", code(first, clock))) == p.INVALID_CODE
    assert service.enroll_confirm("alice", code(second, clock))["device"] == "Tablet"


def test_removing_on_ones_own_account_needs_a_code_that_is_then_spent(
    service: Service, clock: Clock
) -> None:
    phone, recovery = enroll(service, clock)
    tablet = add(service, clock, "tablet")
    watch = add(service, clock, "watch")
    assert refused(lambda: service.remove_device("alice", "watch", needs_proof=True)) == (
        p.UNAUTHORIZED
    )
    wrong = none_of([phone, tablet, watch], clock)
    assert refused(lambda: service.remove_device("alice", "watch", wrong, needs_proof=True)) == (
        p.INVALID_CODE
    )
    assert len(names(service)) == 3
    proof = code(watch, clock)  # a device retired in hand proves its own removal
    assert service.remove_device("alice", "watch", proof, needs_proof=True)["devices_left"] == 2
    # The lost phone: a recovery code proves, is spent, and the phone's codes are refused.
    service.remove_device("alice", "phone", recovery[0], needs_proof=True)
    assert service.status("alice")["recovery_codes_left"] == len(recovery) - 1
    assert service.verify("alice", code(phone, clock))["result"] == p.REJECTED
    assert service.verify("alice", code(tablet, clock))["device"] == "tablet"


def test_a_renamed_device_keeps_its_key_and_spent_step(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    tablet = add(service, clock, "tablet")
    assert service.verify("alice", code(tablet, clock))["result"] == p.ACCEPTED
    service.rename_device("alice", "TABLET", "Tablet")  # its own name in another case
    service.rename_device("alice", "tablet", "old tablet")
    assert service.verify("alice", code(tablet, clock))["result"] == p.REPLAYED
    assert service.verify("alice", code(tablet, clock, 1))["device"] == "old tablet"
    assert refused(lambda: service.rename_device("alice", "tablet", "x")) == p.UNKNOWN_DEVICE


def test_a_pending_device_may_be_renamed_and_confirmed_by_its_new_name(
    service: Service, clock: Clock
) -> None:
    enroll(service, clock)
    watch = str(service.add_device("alice", "watch")["secret"])
    service.add_device("alice", "key")
    assert service.rename_device("alice", "watch", "wrist")["renamed_from"] == "watch"
    assert service.enroll_confirm("alice", code(watch, clock), "wrist")["device"] == "wrist"
    assert names(service) == {"phone": v.ACTIVE, "wrist": v.ACTIVE, "key": v.PENDING}


def test_a_renewal_takes_a_free_name_or_the_one_asked_if_free(
    service: Service, clock: Clock
) -> None:
    enroll(service, clock)
    add(service, clock, "phone 2")
    assert service.enroll_begin("alice", replace=True)["device"] == "phone 3"
    taken = refused(lambda: service.enroll_begin("alice", replace=True, device="PHONE 2"))
    assert taken == p.DEVICE_EXISTS
    assert service.enroll_begin("alice", replace=True, device="laptop")["device"] == "laptop"
    # One renewal at a time: the later took the earlier's place.
    assert names(service) == {"phone": v.ACTIVE, "phone 2": v.ACTIVE, "laptop": v.PENDING}
    assert service.status("alice")["renewal_pending"] is True


def test_a_renewal_begun_again_replaces_the_first(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    first = service.enroll_begin("alice", replace=True)["secret"]
    second = service.enroll_begin("alice", replace=True)["secret"]
    assert names(service) == {"phone": v.ACTIVE, "phone 2": v.PENDING}
    assert refused(lambda: service.enroll_confirm("alice", code(first, clock))) == p.INVALID_CODE
    assert service.enroll_confirm("alice", code(second, clock))["device"] == "phone 2"
    [renewed] = service.list_devices("alice")["devices"]
    assert renewed["renews"] is False and renewed["state"] == v.ACTIVE


def test_a_renamed_renewal_still_replaces_every_device(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    add(service, clock, "tablet")
    renewal = service.enroll_begin("alice", replace=True)["secret"]
    service.rename_device("alice", "phone 2", "new phone")
    service.enroll_confirm("alice", code(renewal, clock), "new phone")
    assert names(service) == {"new phone": v.ACTIVE}


def test_a_pending_renewal_may_be_removed_and_nothing_changes(
    service: Service, clock: Clock
) -> None:
    phone, recovery = enroll(service, clock)
    service.enroll_begin("alice", replace=True)
    assert service.remove_device("alice", "phone 2")["devices_left"] == 1
    assert service.status("alice")["renewal_pending"] is False
    assert service.verify("alice", code(phone, clock))["result"] == p.ACCEPTED
    assert service.status("alice")["recovery_codes_left"] == len(recovery)


def test_a_new_start_clears_the_failures_one_more_device_does_not(
    service: Service, clock: Clock
) -> None:
    phone, _ = enroll(service, clock)
    for _ in range(2):
        service.verify("alice", none_of([phone], clock))
    add(service, clock, "tablet")
    assert service.status("alice")["failures"] == 2  # guesses at the phone still count
    renewal = service.enroll_begin("alice", replace=True)["secret"]
    service.enroll_confirm("alice", code(renewal, clock))
    assert service.status("alice")["failures"] == 0


def test_a_resync_moves_only_the_drifted_devices_window(service: Service, clock: Clock) -> None:
    phone, _ = enroll(service, clock)
    tablet = add(service, clock, "tablet")
    reply = service.resync("alice", code(tablet, clock, 11), code(tablet, clock, 12))
    assert reply == {"result": p.ACCEPTED, "drift": 12, "device": "tablet"}
    drifts = {d["name"]: d["drift"] for d in service.status("alice")["devices"]}
    assert drifts == {"phone": 0, "tablet": 12}
    clock.advance(60)
    assert service.verify("alice", code(tablet, clock, 12))["device"] == "tablet"
    assert service.verify("alice", code(phone, clock, 12))["result"] == p.REJECTED
    assert service.verify("alice", code(phone, clock))["device"] == "phone"


def test_show_secret_shows_the_named_devices_own_key(service: Service, clock: Clock) -> None:
    phone, _ = enroll(service, clock)
    tablet = add(service, clock, "tablet")
    service.add_device("alice", "watch")  # pending: no key to show again
    which = refused(lambda: service.show_secret("alice", code(tablet, clock)))
    assert which == p.BAD_REQUEST
    shown = service.show_secret("alice", code(tablet, clock), "Tablet")
    assert (shown["secret"], shown["device"]) == (tablet, "tablet")
    pending = refused(lambda: service.show_secret("alice", code(phone, clock), "watch"))
    assert pending == p.UNKNOWN_DEVICE


def test_disable_removes_every_device(service: Service, clock: Clock) -> None:
    enroll(service, clock)
    tablet = add(service, clock, "tablet")
    service.add_device("alice", "watch")
    service.disable("alice")
    assert service.list_devices("alice")["devices"] == []
    enroll(service, clock)
    assert names(service) == {"phone": v.ACTIVE}
    assert service.verify("alice", code(tablet, clock))["result"] == p.REJECTED


# --- races: rivals on one database, each its own connection -----------------------------


def at_once(
    service: Service,
    tmp_path: Path,
    keys: Keys,
    accounts: Accounts,
    calls: list[Callable[[Service], dict[str, Any]]],
) -> list[dict[str, Any] | str]:
    """Each call on its own daemon, all let go together: each one's reply, or the code
    it was refused with, in the order of `calls`."""
    rivals = [
        Service(Store(str(tmp_path / "twofad.db")), keys, service.policy, service.clock, accounts)
        for _ in calls
    ]
    start = threading.Barrier(len(rivals))
    outcomes: list[dict[str, Any] | str] = ["did not finish"] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = calls[index](rivals[index])
        except ServiceError as error:
            outcomes[index] = error.code

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for rival in rivals:
        rival.store.close()
    return outcomes


def test_racing_logins_with_each_devices_code_get_one_acceptance_each(
    service: Service, clock: Clock, tmp_path: Path, keys: Keys, accounts: Accounts
) -> None:
    """Four daemons on one database (each its own connection), each device's code sent
    by two of them at once: each device's code is accepted exactly once."""
    phone, _ = enroll(service, clock)
    tablet = add(service, clock, "tablet")
    calls = [
        lambda rival, secret=secret: rival.verify("alice", code(secret, clock))
        for secret in (phone, phone, tablet, tablet)
    ]
    outcomes = at_once(service, tmp_path, keys, accounts, calls)
    results = [(o["result"], o.get("device", "-")) for o in outcomes if isinstance(o, dict)]
    assert sorted(results) == [
        (p.ACCEPTED, "phone"),
        (p.ACCEPTED, "tablet"),
        (p.REPLAYED, "-"),
        (p.REPLAYED, "-"),
    ]


def test_one_devices_code_racing_itself_is_accepted_once(
    service: Service, clock: Clock, tmp_path: Path, keys: Keys, accounts: Accounts
) -> None:
    enroll(service, clock)
    tablet = add(service, clock, "tablet")
    same = code(tablet, clock)
    outcomes = at_once(
        service, tmp_path, keys, accounts, [lambda rival: rival.verify("alice", same)] * 2
    )
    results = sorted(str(o["result"]) if isinstance(o, dict) else o for o in outcomes)
    assert results == sorted([p.ACCEPTED, p.REPLAYED])


def test_two_adds_racing_for_the_last_place_leave_the_bound_kept(
    service: Service, clock: Clock, tmp_path: Path, keys: Keys, accounts: Accounts
) -> None:
    enroll(service, clock)
    for number in range(2, v.MAX_DEVICES):
        add(service, clock, f"key {number}")
    outcomes = at_once(
        service,
        tmp_path,
        keys,
        accounts,
        [lambda rival, name=name: rival.add_device("alice", name) for name in ("a", "b")],
    )
    assert sorted(o if isinstance(o, str) else "added" for o in outcomes) == sorted(
        ["added", p.TOO_MANY_DEVICES]
    )
    assert len(names(service)) == v.MAX_DEVICES


def test_two_removals_racing_leave_one_active_device(
    service: Service, clock: Clock, tmp_path: Path, keys: Keys, accounts: Accounts
) -> None:
    enroll(service, clock)
    add(service, clock, "tablet")
    outcomes = at_once(
        service,
        tmp_path,
        keys,
        accounts,
        [
            lambda rival, name=name: rival.remove_device("alice", name)
            for name in ("phone", "tablet")
        ],
    )
    assert sorted(o if isinstance(o, str) else "removed" for o in outcomes) == sorted(
        ["removed", p.LAST_DEVICE]
    )
    assert list(names(service).values()) == [v.ACTIVE]
