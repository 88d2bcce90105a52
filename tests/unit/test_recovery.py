from __future__ import annotations

import math

from twofad import recovery


def test_codes_have_at_least_40_random_bits_in_readable_groups() -> None:
    code = recovery.new_code()
    groups = code.split("-")
    assert [len(g) for g in groups] == [4, 4, 4]
    assert math.log2(len(recovery.ALPHABET)) * recovery.LENGTH >= 40
    assert len({recovery.new_code() for _ in range(1000)}) == 1000


def test_typed_forms_normalise_to_one_canonical_code() -> None:
    code = "k7pq-3xmd-9wtr"
    for typed in ("K7PQ-3XMD-9WTR", "k7pq 3xmd 9wtr", "k7pq3xmd9wtr", " K7PQ - 3xmd-9WTR "):
        assert recovery.normalize(typed) == "k7pq3xmd9wtr"
    assert recovery.normalize(code) == "k7pq3xmd9wtr"


def test_lookalike_letters_read_as_digits() -> None:
    assert recovery.normalize("oooo-iiii-llll") == "000011111111"


def test_non_codes_are_refused() -> None:
    for typed in ("", "123456", "k7pq-3xmd-9wt", "k7pq-3xmd-9wtru", "k7pq-3xmd-9wt!"):
        assert recovery.normalize(typed) is None


def test_digest_is_keyed_and_bound_to_the_user() -> None:
    canonical = "k7pq3xmd9wtr"
    assert recovery.digest(b"a" * 32, "alice", canonical) != recovery.digest(
        b"b" * 32, "alice", canonical
    )
    assert recovery.digest(b"a" * 32, "alice", canonical) != recovery.digest(
        b"a" * 32, "bob", canonical
    )
