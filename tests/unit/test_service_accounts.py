"""Renewal, a second device, import of existing secrets, and what a user may not do alone."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from twofad import totp
from twofad.policy_file import parse
from twofad.service import Service, ServiceError

PARAMS = totp.TotpParams()


def code(secret: str, clock: Clock, steps: int = 0, params: totp.TotpParams = PARAMS) -> str:
    return totp.code_at(secret, params, totp.time_step(clock.now, params.period) + steps)


def enroll(service: Service, clock: Clock, user: str = "bob") -> str:
    secret = service.enroll_begin(user)["secret"]
    service.enroll_confirm(user, code(secret, clock, -1))
    return secret


def test_reset_keeps_the_old_key_until_the_new_one_is_confirmed(
    service: Service, clock: Clock
) -> None:
    old = enroll(service, clock)
    new = service.enroll_begin("bob", replace=True)["secret"]
    assert new != old
    assert service.status("bob")["renewal_pending"] is True
    assert service.verify("bob", code(old, clock))["result"] == p.ACCEPTED
    clock.advance(30)
    service.enroll_confirm("bob", code(new, clock))
    clock.advance(30)
    assert service.verify("bob", code(old, clock))["result"] == p.REJECTED
    assert service.verify("bob", code(new, clock))["result"] == p.ACCEPTED


def test_a_user_renewing_their_own_key_needs_a_code(service: Service, clock: Clock) -> None:
    old = enroll(service, clock)
    with pytest.raises(ServiceError) as refused:
        service.enroll_begin("bob", replace=True, needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED
    assert service.enroll_begin("bob", replace=True, code=code(old, clock), needs_proof=True)


def test_show_secret_needs_a_current_code_and_gives_the_same_key(
    service: Service, clock: Clock
) -> None:
    secret = enroll(service, clock)
    with pytest.raises(ServiceError) as wrong:
        service.show_secret("bob", "000000")
    assert wrong.value.code == p.INVALID_CODE
    shown = service.show_secret("bob", code(secret, clock))
    assert shown["secret"] == secret and f"secret={secret}" in shown["uri"] and "█" in shown["qr"]


def test_import_activates_at_once_with_scratch_codes(service: Service, clock: Clock) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEH"  # 26 characters: google-authenticator's 128 bits
    reply = service.import_secret("bob", secret, PARAMS, ["12345678", "87654321"])
    assert reply == {"user": "bob", "state": "active", "recovery_codes": 2}
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
    assert again == {"user": "bob", "state": "active", "unchanged": True}
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


def test_a_user_cannot_switch_off_what_the_policy_requires(service: Service, clock: Clock) -> None:
    secret = enroll(service, clock)
    service.policy = parse("rules:\n  - {name: everyone-bob, users: [bob], action: required}\n")
    with pytest.raises(ServiceError) as refused:
        service.disable("bob", code(secret, clock), needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED and "everyone-bob" in refused.value.message
    service.disable("bob")  # an administrator may
    assert service.status("bob")["enrollment"] == "none"


@pytest.mark.parametrize(
    "rules",
    [
        "  - {name: sudo-only, users: [bob], services: [sudo], action: required}\n",
        "  - {name: sudo-only, services: [sudo, su], action: required}\n",
        "  - {name: sudo-only, from: [203.0.113.0/24], action: required}\n",
        "  - {name: lan, from: [10.0.0.0/8], action: exempt}\n"
        "  - {name: sudo-only, not_from: [local], users: [bob], action: required}\n",
    ],
)
def test_required_for_one_service_or_place_is_still_required(
    service: Service, clock: Clock, rules: str
) -> None:
    secret = enroll(service, clock)
    service.policy = parse("rules:\n" + rules)
    with pytest.raises(ServiceError) as refused:
        service.disable("bob", code(secret, clock), needs_proof=True)
    assert refused.value.code == p.UNAUTHORIZED and "sudo-only" in refused.value.message
    assert service.status("bob")["enrollment"] == "active"  # nothing changed
    assert service.status("bob")["required"] is True


def test_a_rule_exempting_the_user_everywhere_ends_the_search(
    service: Service, clock: Clock
) -> None:
    secret = enroll(service, clock)
    service.policy = parse(
        "default: required\n"
        "rules:\n"
        "  - {name: bob-free, users: [bob], action: exempt}\n"
        "  - {name: sudo, services: [sudo], action: required}\n"
    )
    service.disable("bob", code(secret, clock), needs_proof=True)
    assert service.status("bob")["enrollment"] == "none"


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


def test_carry_step_rounds_toward_the_later_step() -> None:
    assert totp.carry_step(None, 30, 60) is None
    assert totp.carry_step(9, 30, 30) == 9
    assert totp.carry_step(9, 30, 60) == 4  # 270-299 s lies in the 60 s step 240-299
    assert totp.carry_step(10, 30, 60) == 5  # 300-329 s lies in 300-359
    assert totp.carry_step(4, 60, 30) == 9  # 240-299 s ends in the 30 s step 270-299
