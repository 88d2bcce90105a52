"""Reading google-authenticator files and pam_oath's users.oath as those modules do."""

from __future__ import annotations

import time

import pytest

from pam_twofa.cli.migrate import Unusable, parse_google_authenticator, parse_oath

SECRET = "CB2UNJLCYONCLGOS33ABCEDDMI"
HEX = "3132333435363738393031323334353637383930"


def google(*options: str, scratch: tuple[str, ...] = ("66924682",)) -> str:
    """A file as google-authenticator writes it: secret, option lines, scratch codes."""
    return "\n".join([SECRET, *(f'" {option}' for option in options), *scratch]) + "\n"


@pytest.mark.parametrize(("size", "window"), [("1", 0), ("3", 1), ("17", 8), ("21", 10), ("4", 1)])
def test_window_size_counts_codes_around_now(size: str, window: int) -> None:
    entry = parse_google_authenticator("alice", google(f"WINDOW_SIZE {size}", "TOTP_AUTH"))
    assert entry.window == window
    assert entry.notes == []


def test_a_window_wider_than_ten_steps_is_narrowed_and_said() -> None:
    entry = parse_google_authenticator("alice", google("WINDOW_SIZE 99"))
    assert entry.window == 10
    assert entry.notes == ["WINDOW_SIZE 99 narrowed to 10 steps either side"]


def test_without_window_size_the_policy_decides() -> None:
    assert parse_google_authenticator("alice", google("TOTP_AUTH")).window is None


@pytest.mark.parametrize("size", ["0", "101", "x", ""])
def test_a_nonsense_window_size_is_refused(size: str) -> None:
    with pytest.raises(Unusable, match="WINDOW_SIZE"):
        parse_google_authenticator("alice", google(f"WINDOW_SIZE {size}".strip()))


def test_codes_already_used_stay_used() -> None:
    entry = parse_google_authenticator(
        "alice", google("RATE_LIMIT 3 30 1796291466", "DISALLOW_REUSE 59876380 59876382")
    )
    assert entry.used_step == 59876382
    assert parse_google_authenticator("alice", google("DISALLOW_REUSE")).used_step is None


def test_scratch_codes_and_step_size() -> None:
    entry = parse_google_authenticator(
        "alice", google("STEP_SIZE 60", scratch=("66924682", "17064727"))
    )
    assert (entry.period, entry.recovery_codes) == (60, ["66924682", "17064727"])


def test_counter_based_files_are_refused() -> None:
    with pytest.raises(Unusable, match="HOTP"):
        parse_google_authenticator("alice", google("HOTP_COUNTER 1"))


@pytest.mark.parametrize(
    ("kind", "period", "digits"),
    [
        ("HOTP/T30", 30, 6),
        ("HOTP/T30/6", 30, 6),
        ("HOTP/T30/7", 30, 7),
        ("HOTP/T30/8", 30, 8),
        ("HOTP/T60", 60, 6),
        ("HOTP/T60/8", 60, 8),
    ],
)
def test_every_time_based_oath_type(kind: str, period: int, digits: int) -> None:
    [entry], skipped = parse_oath(f"{kind}\talice\t-\t{HEX}\n")
    assert (entry.period, entry.digits, skipped) == (period, digits, [])


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("HOTP", "counter-based"),
        ("HOTP/E/8", "counter-based"),
        ("HOTP/T45", "not a pam_oath type"),
        ("hotp/t30", "not a pam_oath type"),
        ("HOTP/T30/9", "not a pam_oath type"),
        ("HOTP/T30/6/SHA256", "not a pam_oath type"),
    ],
)
def test_types_pam_oath_would_not_take_as_totp_are_skipped(kind: str, reason: str) -> None:
    entries, [(user, why)] = parse_oath(f"{kind} alice - {HEX}\n")
    assert entries == [] and user == "alice"
    assert why.startswith("line 1: ") and reason in why


def test_only_the_first_line_for_a_user_counts() -> None:
    entries, skipped = parse_oath(f"HOTP/T30 alice - {HEX}\n# note\nHOTP/T60 alice - {HEX}\n")
    assert [(e.user, e.period) for e in entries] == [("alice", 30)]
    assert skipped == [("alice", "line 3: a second line for this user (pam_oath uses line 1)")]


def test_the_last_code_pam_oath_accepted_is_not_accepted_again() -> None:
    line = f"HOTP/T30\talice\t-\t{HEX}\t0\t799450\t2026-12-03T09:51:13L\n"
    [entry], _ = parse_oath(line)
    used_at = time.mktime(time.strptime("2026-12-03T09:51:13", "%Y-%m-%dT%H:%M:%S"))
    assert entry.used_step == int(used_at) // 30


def test_a_broken_time_of_last_use_is_a_reason_not_a_crash() -> None:
    entries, [(_, why)] = parse_oath(f"HOTP/T30 alice - {HEX} 0 799450 yesterday\n")
    assert entries == [] and "the time of the last code, 'yesterday', is not a date" in why


def test_no_secret_appears_in_a_reason() -> None:
    _, skipped = parse_oath("HOTP/T30 alice - 00112233\nHOTP/E bob - 0011223344556677889900\n")
    for _, why in skipped:
        assert "0011" not in why


def test_a_secret_that_ends_part_way_through_a_byte_is_refused() -> None:
    with pytest.raises(Unusable, match="not that of a whole key"):
        parse_google_authenticator("alice", "A" * 17 + '\n" TOTP_AUTH\n')
