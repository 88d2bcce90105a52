"""The lifetime budget of failed codes, through the service with an injected clock.

The owner logs in over SSH from HOME; an attacker who has the password guesses from
ELSEWHERE (or, where said, from HOME too, as behind the same NAT).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from pam_twofa import protocol as p
from support.fakes import Clock
from support.service import PARAMS, code, enroll, wrong
from twofad import totp
from twofad.lockout import LockoutPolicy
from twofad.policy import Policy
from twofad.service import Service

HOME = {"service": "sshd", "rhost": "192.0.2.10"}
ELSEWHERE = {"service": "sshd", "rhost": "203.0.113.9"}
HARD_AFTER = 100
ENOUGH = 20 * HARD_AFTER  # rounds after which a loop that should have ended has failed


def wait_out_the_back_off(service: Service, clock: Clock, user: str = "alice") -> None:
    status = service.status(user)
    if status["retry_after"] is not None:
        clock.advance(status["retry_after"])


def owner_logs_in(service: Service, clock: Clock, secret: str, typos: int = 0) -> None:
    """Typos from the owner's own place, then the right code a few seconds later."""
    wait_out_the_back_off(service, clock)
    clock.advance(30)  # a fresh time step for this login
    for _ in range(typos):
        assert service.verify("alice", wrong(secret, clock), **HOME)["result"] == p.REJECTED
        clock.advance(5)
    assert service.verify("alice", code(secret, clock), **HOME)["result"] == p.ACCEPTED


def guess(service: Service, clock: Clock, secret: str, where: dict[str, str]) -> dict[str, Any]:
    """One wrong guess as soon as the back-off allows it."""
    wait_out_the_back_off(service, clock)
    clock.advance(1)
    return service.verify("alice", wrong(secret, clock), **where)


def counts(service: Service) -> tuple[int, int]:
    status = service.status("alice")
    return status["failures"], status["strikes"]


# --- an attacker elsewhere ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_the_owners_logins_give_an_attacker_no_more_than_hard_after_guesses(
    service: Service, clock: Clock, seed: int
) -> None:
    """Honest logins in between, with typos of their own: still exactly 100 guesses."""
    rng = random.Random(seed)
    secret, _ = enroll(service, clock)
    guesses = 0
    for _ in range(ENOUGH):
        reply = guess(service, clock, secret, ELSEWHERE)
        if reply["result"] == p.LOCKED:
            break
        assert reply["result"] == p.REJECTED
        guesses += 1
        if reply.get("hard_locked"):
            break
        if rng.random() < 0.3:
            failures, strikes = counts(service)
            # Typos short of the back-off (which would keep the owner waiting past the
            # window) and of the hard lock (a typo is a strike until a success forgives it).
            room = min(service.policy.lockout.after - failures, HARD_AFTER - strikes)
            owner_logs_in(service, clock, secret, rng.randrange(0, max(1, room)))
    assert guesses == HARD_AFTER
    status = service.status("alice")
    assert status["hard_locked"] is True and status["strikes"] == HARD_AFTER
    clock.advance(10 * 365 * 86400)
    assert service.verify("alice", code(secret, clock), **HOME)["hard_locked"] is True


@pytest.mark.parametrize("seed", range(5))
def test_whatever_the_owner_does_an_attacker_gets_at_most_hard_after_guesses(
    service: Service, clock: Clock, seed: int
) -> None:
    """Any number of typos, late successes, logins from elsewhere: never more."""
    rng = random.Random(seed)
    secret, _ = enroll(service, clock)
    guesses = 0
    for _ in range(ENOUGH):
        reply = guess(service, clock, secret, ELSEWHERE)
        if reply["result"] == p.LOCKED and reply["hard_locked"]:
            break
        guesses += 1
        if reply.get("hard_locked"):
            break
        if rng.random() < 0.5:
            wait_out_the_back_off(service, clock)
            place = rng.choice([HOME, ELSEWHERE, {"service": "login", "rhost": None}])
            clock.advance(30)
            for _ in range(rng.randrange(0, 8)):
                if service.verify("alice", wrong(secret, clock), **place)["result"] == p.LOCKED:
                    break
                clock.advance(rng.choice([1, 60, 900]))
            wait_out_the_back_off(service, clock)
            clock.advance(30)
            result = service.verify("alice", code(secret, clock), **place)["result"]
            assert result in (p.ACCEPTED, p.LOCKED)
    assert service.status("alice")["hard_locked"] is True
    assert guesses <= HARD_AFTER


def test_a_guess_from_another_place_is_never_forgiven(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    for _ in range(3):
        guess(service, clock, secret, ELSEWHERE)
    owner_logs_in(service, clock, secret)
    assert counts(service) == (0, 3)
    # Same address, another service; same service, no address: other places too.
    for where in ({"service": "login", "rhost": "192.0.2.10"}, {"service": "sshd"}):
        guess(service, clock, secret, where)
        owner_logs_in(service, clock, secret)
    assert counts(service) == (0, 5)


def test_staying_under_the_back_off_between_honest_logins_gains_nothing(
    service: Service, clock: Clock
) -> None:
    """4 guesses, an honest login, 4 more, ...: once endless, now 100 in all."""
    secret, _ = enroll(service, clock)
    guesses = 0
    while not guess(service, clock, secret, ELSEWHERE).get("hard_locked") and guesses < ENOUGH:
        guesses += 1
        if guesses % 4 == 0:
            owner_logs_in(service, clock, secret)
    assert guesses + 1 == HARD_AFTER and counts(service) == (4, HARD_AFTER)


# --- the owner's own typos ----------------------------------------------------------


def test_the_owner_who_mistypes_before_each_of_1000_logins_is_never_hard_locked(
    service: Service, clock: Clock
) -> None:
    secret, _ = enroll(service, clock)
    rng = random.Random(7)
    for login in range(1000):
        clock.advance(rng.choice([600, 3600, 86400]))
        # Once before every login; now and then up to the back-off's threshold.
        owner_logs_in(service, clock, secret, typos=1 if login % 10 else 4)
        assert service.status("alice")["hard_locked"] is False
    assert counts(service) == (0, 0)


def test_without_forgiveness_the_same_owner_would_be_hard_locked(
    service: Service, clock: Clock
) -> None:
    """The window is what saves them: switched off, the 100th typo locks the account."""
    service.policy = Policy(issuer="testhost", lockout=LockoutPolicy(forgive_within=0))
    secret, _ = enroll(service, clock)
    for _ in range(HARD_AFTER - 1):
        owner_logs_in(service, clock, secret, typos=1)
    assert counts(service) == (0, HARD_AFTER - 1)
    clock.advance(30)
    assert service.verify("alice", wrong(secret, clock), **HOME)["hard_locked"] is True


def test_a_typo_forgiven_only_when_the_success_follows_soon(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    service.verify("alice", wrong(secret, clock), **HOME)
    clock.advance(601)
    assert service.verify("alice", code(secret, clock), **HOME)["result"] == p.ACCEPTED
    assert counts(service) == (0, 1)


def test_the_owners_own_commands_forgive_their_own_failures_only(
    service: Service, clock: Clock
) -> None:
    """twofa's proofs come from no login: they forgive a wrong proof, not an SSH guess."""
    secret, _ = enroll(service, clock)
    guess(service, clock, secret, HOME)
    with pytest.raises(Exception, match="not accepted"):
        service.regenerate_recovery_codes("alice", wrong(secret, clock), needs_proof=True)
    assert counts(service) == (2, 2)
    service.regenerate_recovery_codes("alice", code(secret, clock), needs_proof=True)
    assert counts(service) == (0, 1)


# --- an attacker at the owner's own place (the same NAT) ------------------------------


def test_at_the_owners_place_at_most_after_minus_one_per_login_are_forgiven(
    service: Service, clock: Clock
) -> None:
    """The bound, honestly: such an attacker gains at most 4 guesses per honest login."""
    secret, _ = enroll(service, clock)
    forgivable = service.policy.lockout.forgivable
    logins = 0
    guesses = 0
    while not service.status("alice")["hard_locked"] and guesses < ENOUGH:
        for _ in range(forgivable + 2):  # more than can be forgiven, just before the login
            guesses += 1
            if guess(service, clock, secret, HOME).get("hard_locked"):
                break
        else:
            owner_logs_in(service, clock, secret)
            logins += 1
            continue
        break
    assert guesses <= HARD_AFTER + forgivable * logins
    assert guesses == HARD_AFTER + forgivable * logins  # this attacker takes all of them


# --- clearing, and what status shows -------------------------------------------------


def test_unlock_clears_both_counts(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    for _ in range(HARD_AFTER):
        guess(service, clock, secret, ELSEWHERE)
    assert service.status("alice")["hard_locked"] is True
    service.unlock("alice")
    assert counts(service) == (0, 0)
    assert service.verify("alice", code(secret, clock), **HOME)["result"] == p.ACCEPTED
    guess(service, clock, secret, HOME)
    owner_logs_in(service, clock, secret)
    assert counts(service) == (0, 0)  # and nothing kept from before the unlock


def test_a_new_key_clears_both_counts(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    for _ in range(3):
        guess(service, clock, secret, ELSEWHERE)
    owner_logs_in(service, clock, secret)
    assert counts(service) == (0, 3)
    renewed = service.enroll_begin("alice", replace=True)["secret"]
    clock.advance(30)
    service.enroll_confirm("alice", code(renewed, clock))
    assert counts(service) == (0, 0)
    guess(service, clock, renewed, ELSEWHERE)
    service.import_secret("alice", totp.new_secret(), PARAMS, [], replace=True)
    assert counts(service) == (0, 0)


def test_status_shows_both_counts_and_the_limit(service: Service, clock: Clock) -> None:
    secret, _ = enroll(service, clock)
    for _ in range(2):
        guess(service, clock, secret, ELSEWHERE)
    status = service.status("alice")
    assert (status["failures"], status["strikes"], status["hard_after"]) == (2, 2, HARD_AFTER)
    owner_logs_in(service, clock, secret)
    listed = service.list_users()["users"][0]
    assert (listed["failures"], listed["strikes"], listed["hard_after"]) == (0, 2, HARD_AFTER)


# --- a name with no account -----------------------------------------------------------


def test_an_unknown_name_hard_locks_like_an_account_nobody_logs_in_to(
    service: Service, clock: Clock
) -> None:
    secret, _ = enroll(service, clock)
    for _ in range(HARD_AFTER - 1):
        wait_out_the_back_off(service, clock)
        clock.advance(1)
        real = service.verify("alice", wrong(secret, clock), **ELSEWHERE)
        fake = service.verify("mallory", wrong(secret, clock), **ELSEWHERE)
        assert real == fake and real["result"] == p.REJECTED
    clock.advance(3600)
    real = service.verify("alice", wrong(secret, clock), **ELSEWHERE)
    fake = service.verify("mallory", wrong(secret, clock), **ELSEWHERE)
    assert real == fake == {"result": p.REJECTED, "retry_after": None, "hard_locked": True}
    assert service.check("mallory", **HOME) == service.check("alice", **HOME)
    assert service.check("mallory", **HOME)["hard_locked"] is True
    assert service.context.decoys.locks["mallory"].recent == ()  # nothing kept to forgive
