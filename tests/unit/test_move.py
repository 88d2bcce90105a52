"""Moving accounts between stores: each device with its key sealed anew and its spent
step, and the unused recovery codes; nothing the target has already is overwritten."""

from __future__ import annotations

from pathlib import Path

from twofad import move
from twofad.keys import Keys
from twofad.store import Brought, BroughtDevice, SealedSecret, Store
from twofad.totp import TotpParams

HOST = Keys.from_master(b"h" * 32)
FLEET = Keys.from_master(b"f" * 32, [b"h" * 32])  # the fleet's key, and the host's as older
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTHER = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


def stores(tmp_path: Path) -> tuple[Store, Store]:
    return Store(str(tmp_path / "host.db")), Store(str(tmp_path / "fleet.db"))


def active(
    store: Store, keys: Keys, name: str, secret: str = SECRET, step: int = 7, *more: str
) -> None:
    """An account with a phone of `secret` (and a device per key in `more`)."""
    with store.transaction():
        sealed = SealedSecret(keys.seal(name, secret), TotpParams("SHA256", 8, 60))
        devices = [BroughtDevice("phone", sealed, step, 2, last_used=3.0, drift=-1)]
        for number, key in enumerate(more, start=2):
            other = SealedSecret(keys.seal(name, key), TotpParams())
            devices.append(BroughtDevice(f"device {number}", other, step + number))
        digests = [keys.recovery_digest(name, "k7pq3xmd9wtr")]
        store.take_over(name, None, Brought(devices, digests), 1.0)


def test_an_account_moves_with_its_key_step_tolerance_and_codes(tmp_path: Path) -> None:
    host, fleet = stores(tmp_path)
    active(host, HOST, "alice")
    report = move.move(host, fleet, FLEET, 5.0)
    assert report.results == {"alice": move.MOVED}
    assert report.codes_under_older_keys == ["alice"]  # hashed under the host's key
    with fleet.transaction():
        row = fleet.get_user("alice")
        assert row is not None and [d.name for d in row.devices] == ["phone"]
        [phone] = row.devices
        assert FLEET.sealed_with_current(phone.secret)
        assert FLEET.unseal("alice", phone.secret) == SECRET
        assert (phone.last_step, phone.totp_window, phone.params) == (
            7,
            2,
            TotpParams("SHA256", 8, 60),
        )
        assert (phone.last_used, phone.drift) == (3.0, -1)
        assert fleet.unused_recovery_count("alice") == 1


def test_every_device_of_an_account_moves(tmp_path: Path) -> None:
    host, fleet = stores(tmp_path)
    active(host, HOST, "alice", SECRET, 7, OTHER)
    assert move.move(host, fleet, FLEET, 5.0).results == {"alice": move.MOVED}
    with fleet.transaction():
        row = fleet.get_user("alice")
        assert row is not None
        moved = {d.name: (FLEET.unseal("alice", d.secret), d.last_step) for d in row.devices}
    assert moved == {"phone": (SECRET, 7), "device 2": (OTHER, 9)}


def test_a_key_being_set_up_moves_too(tmp_path: Path) -> None:
    host, fleet = stores(tmp_path)
    with host.transaction():
        sealed = SealedSecret(HOST.seal("bob", SECRET), TotpParams())
        host.begin_device("bob", None, "phone", sealed, 1.0)
    assert move.move(host, fleet, FLEET, 5.0).results == {"bob": move.MOVED}
    with fleet.transaction():
        row = fleet.get_user("bob")
        assert row is not None and not row.active
        [pending] = row.pending_devices
        assert FLEET.unseal("bob", pending.secret) == SECRET


def test_what_the_store_has_already_is_never_overwritten(tmp_path: Path) -> None:
    host, fleet = stores(tmp_path)
    active(host, HOST, "alice")
    active(host, HOST, "carol")
    active(fleet, FLEET, "alice")  # the same key, set up there already
    active(fleet, FLEET, "carol", secret=OTHER, step=99)  # another app's key
    report = move.move(host, fleet, FLEET, 5.0)
    assert report.results == {"alice": move.ALREADY_THERE, "carol": move.LEFT_ALONE}
    with fleet.transaction():
        carol = fleet.get_user("carol")
        assert carol is not None and carol.devices[0].last_step == 99
        assert FLEET.unseal("carol", carol.devices[0].secret) == OTHER


def test_a_key_the_ring_cannot_open_is_reported_and_not_moved(tmp_path: Path) -> None:
    host, fleet = stores(tmp_path)
    active(host, Keys.from_master(b"x" * 32), "dave")
    assert move.move(host, fleet, FLEET, 5.0).results == {"dave": move.UNREADABLE}
    with fleet.transaction():
        assert fleet.user_names() == []


def test_a_proven_address_for_codes_by_email_moves_too(tmp_path: Path) -> None:
    host, fleet = stores(tmp_path)
    active(host, HOST, "alice")
    with host.transaction():
        row = host.get_user("alice")
        assert row is not None
        host.set_email_address(row, "alice@example.org")
    assert move.move(host, fleet, FLEET, 5.0).results == {"alice": move.MOVED}
    with fleet.transaction():
        moved = fleet.get_user("alice")
        assert moved is not None and moved.email == "alice@example.org"
