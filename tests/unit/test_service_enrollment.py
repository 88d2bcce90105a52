"""Setting up an app: a pending key, confirming it, renewing it, importing one."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from support.service import PARAMS, code, enroll
from twofad import totp
from twofad.policy import Policy
from twofad.service import Service, ServiceError

# --- a new key --------------------------------------------------------------------


def test_begin_returns_secret_uri_and_qr(service: Service) -> None:
    data = service.enroll_begin("alice")
    assert len(data["secret"]) == 32
    assert data["uri"] == f"otpauth://totp/testhost:alice?secret={data['secret']}&issuer=testhost"
    assert "█" in data["qr"]
    assert service.status("alice")["enrollment"] == "pending"


def test_pending_user_is_not_prompted_and_not_enrolled(service: Service) -> None:
    service.enroll_begin("alice")
    assert service.check("alice")["action"] == p.SKIP
    assert service.verify("alice", "123456")["result"] == p.NOT_ENROLLED


def test_begin_again_replaces_the_pending_secret(service: Service, clock: Clock) -> None:
    first = service.enroll_begin("alice")["secret"]
    second = service.enroll_begin("alice")["secret"]
    assert first != second
    with pytest.raises(ServiceError) as refused:
        service.enroll_confirm("alice", code(first, clock))
    assert refused.value.code == p.INVALID_CODE
    assert service.enroll_confirm("alice", code(second, clock))["recovery_codes"]


def test_begin_never_replaces_an_active_secret(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    with pytest.raises(ServiceError) as refused:
        service.enroll_begin("alice")
    assert refused.value.code == p.ALREADY_ENROLLED
    assert service.verify("alice", code(secret, clock))["result"] == p.ACCEPTED


def test_unknown_user_cannot_enroll(service: Service) -> None:
    with pytest.raises(ServiceError) as refused:
        service.enroll_begin("mallory")
    assert refused.value.code == p.UNKNOWN_USER


def test_per_user_parameters_are_fixed_at_enrollment(service: Service, clock: Clock) -> None:
    secret = service.enroll_begin("alice")["secret"]
    service.policy = Policy(issuer="x", totp=totp.TotpParams("SHA256", 8, 60))
    # The pending secret keeps the parameters its QR code announced.
    service.enroll_confirm("alice", code(secret, clock))
    [phone] = service.status("alice")["devices"]
    assert (phone["algorithm"], phone["digits"]) == ("SHA1", 6)


# --- confirming it ----------------------------------------------------------------


def test_confirm_hands_out_recovery_codes_once(service: Service, clock: Clock) -> None:
    secret = service.enroll_begin("alice")["secret"]
    first = service.enroll_confirm("alice", code(secret, clock))
    assert len(first["recovery_codes"]) == 8
    assert len(set(first["recovery_codes"])) == 8
    with pytest.raises(ServiceError) as again:
        service.enroll_confirm("alice", code(secret, clock, 1))
    assert again.value.code == p.NOT_ENROLLED
    assert "recovery_codes" not in service.status("alice")


def test_confirm_consumes_its_time_step(service: Service, clock: Clock) -> None:
    secret = service.enroll_begin("alice")["secret"]
    used = code(secret, clock)
    service.enroll_confirm("alice", used)
    assert service.verify("alice", used)["result"] == p.REPLAYED


def test_confirm_without_begin_is_not_enrolled(service: Service) -> None:
    with pytest.raises(ServiceError) as refused:
        service.enroll_confirm("bob", "123456")
    assert refused.value.code == p.NOT_ENROLLED


# --- renewing it ------------------------------------------------------------------


def test_reset_keeps_the_old_key_until_the_new_one_is_confirmed(
    service: Service, clock: Clock
) -> None:
    old, _ = enroll(service, clock, "bob")
    new = service.enroll_begin("bob", replace=True)["secret"]
    assert new != old
    assert service.status("bob")["renewal_pending"] is True
    assert service.verify("bob", code(old, clock))["result"] == p.ACCEPTED
    clock.advance(30)
    service.enroll_confirm("bob", code(new, clock))
    clock.advance(30)
    assert service.verify("bob", code(old, clock))["result"] == p.REJECTED
    assert service.verify("bob", code(new, clock))["result"] == p.ACCEPTED


# --- importing a key an app already has -------------------------------------------


def test_import_activates_at_once_with_scratch_codes(service: Service, clock: Clock) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEH"  # 26 characters: google-authenticator's 128 bits
    reply = service.import_secret("bob", secret, PARAMS, ["12345678", "87654321"])
    assert reply == {"user": "bob", "state": "active", "device": "imported", "recovery_codes": 2}
    assert service.check("bob")["action"] == p.PROMPT
    assert service.verify("bob", code(secret, clock))["result"] == p.ACCEPTED
    assert service.verify("bob", "1234 5678")["result"] == p.ACCEPTED
    assert service.verify("bob", "12345678")["result"] == p.REPLAYED


def test_import_keeps_other_parameters(service: Service, clock: Clock) -> None:
    params = totp.TotpParams("SHA1", 8, 60)
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    service.import_secret("bob", secret, params, [])
    assert service.verify("bob", code(secret, clock, params=params))["result"] == p.ACCEPTED


def test_import_twice_is_refused_unless_replace(service: Service, clock: Clock) -> None:
    service.import_secret("bob", "JBSWY3DPEHPK3PXPJBSWY3DPEH", PARAMS, ["12345678"])
    with pytest.raises(ServiceError) as again:
        service.import_secret("bob", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", PARAMS, [])
    assert again.value.code == p.ALREADY_ENROLLED
    assert service.verify("bob", "12345678")["result"] == p.ACCEPTED  # nothing changed
    service.import_secret("bob", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", PARAMS, [], replace=True)
    assert (
        service.verify("bob", code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", clock))["result"]
        == p.ACCEPTED
    )


def test_importing_the_same_key_again_changes_nothing(service: Service, clock: Clock) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEH"
    service.import_secret("bob", secret, PARAMS, ["12345678"])
    again = service.import_secret("bob", secret, PARAMS, ["87654321"])
    assert again == {"user": "bob", "state": "active", "device": "imported", "unchanged": True}
    assert service.verify("bob", "12345678")["result"] == p.ACCEPTED  # the first codes stay
    other = totp.TotpParams("SHA1", 8, 30)
    with pytest.raises(ServiceError) as refused:  # the same key, made into other codes
        service.import_secret("bob", secret, other, [])
    assert refused.value.code == p.ALREADY_ENROLLED


def test_an_imported_window_is_kept_for_that_key_only(service: Service, clock: Clock) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEH"
    service.import_secret("bob", secret, PARAMS, [], window=8)  # google's WINDOW_SIZE 17
    assert service.verify("bob", code(secret, clock, 8))["result"] == p.ACCEPTED
    assert service.verify("bob", code(secret, clock, 9))["result"] == p.REJECTED
    clock.advance(30 * 10)
    new = service.enroll_begin("bob", replace=True)["secret"]
    service.enroll_confirm("bob", code(new, clock))
    assert service.verify("bob", code(new, clock, 3))["result"] == p.REJECTED  # policy: ±1


def test_a_code_the_old_module_accepted_is_not_accepted_again(
    service: Service, clock: Clock
) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEH"
    now = totp.time_step(clock.now, PARAMS.period)
    service.import_secret("bob", secret, PARAMS, [], used_step=now)
    assert service.verify("bob", code(secret, clock))["result"] == p.REPLAYED
    assert service.verify("bob", code(secret, clock, 1))["result"] == p.ACCEPTED
    service.import_secret("bob", secret, PARAMS, [], used_step=now - 5, replace=True)
    assert service.verify("bob", code(secret, clock, 1))["result"] == p.REPLAYED  # kept the later


def test_import_for_an_unknown_user_is_refused(service: Service) -> None:
    with pytest.raises(ServiceError) as refused:
        service.import_secret("mallory", "JBSWY3DPEHPK3PXPJBSWY3DPEH", PARAMS, [])
    assert refused.value.code == p.UNKNOWN_USER


def test_import_replace_does_not_make_a_used_code_valid_again(
    service: Service, clock: Clock
) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEH"
    service.import_secret("bob", secret, PARAMS, [])
    used = code(secret, clock)
    assert service.verify("bob", used)["result"] == p.ACCEPTED
    service.import_secret("bob", secret, PARAMS, [], replace=True)
    assert service.verify("bob", used)["result"] == p.REPLAYED
    clock.advance(30)
    assert service.verify("bob", code(secret, clock))["result"] == p.ACCEPTED


def test_import_replace_with_a_longer_period_keeps_used_time_used(
    service: Service, clock: Clock
) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEH"
    service.import_secret("bob", secret, PARAMS, [])
    assert service.verify("bob", code(secret, clock))["result"] == p.ACCEPTED
    slow = totp.TotpParams("SHA1", 6, 60)
    service.import_secret("bob", secret, slow, [], replace=True)
    # The 60 s step holding the 30 s step just used is spent; the next one is not.
    assert service.verify("bob", code(secret, clock, params=slow))["result"] == p.REPLAYED
    clock.advance(60)
    assert service.verify("bob", code(secret, clock, params=slow))["result"] == p.ACCEPTED
