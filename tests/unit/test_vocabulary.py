"""Each shared word is defined once: the wire, the policy file, the TOTP parameters, the
commands and the daemon's defaults all read the same bounds and names."""

from __future__ import annotations

import pytest

from pam_twofa import protocol as p
from pam_twofa import vocabulary as v
from pam_twofa.cli import migrate
from twofad import impact, main, totp
from twofad.policy_file import PolicyError, parse


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [("digits", v.MIN_DIGITS, v.MAX_DIGITS), ("period", v.MIN_PERIOD, v.MAX_PERIOD)],
)
def test_the_wire_the_policy_and_a_key_agree_on_each_bound(field: str, low: int, high: int) -> None:
    validate = getattr(p, f"validate_{field}")
    unit = "s" if field == "period" else ""  # the policy writes a period with its unit
    for inside in (low, high):
        assert validate(inside) == inside
        totp.TotpParams(**{field: inside})
        parse(f"totp:\n  {field}: {inside}{unit}\n")
    for outside in (low - 1, high + 1):
        with pytest.raises(p.ProtocolError):
            validate(outside)
        with pytest.raises(ValueError):
            totp.TotpParams(**{field: outside})
        with pytest.raises(PolicyError):
            parse(f"totp:\n  {field}: {outside}{unit}\n")


def test_the_algorithms_are_the_same_list_everywhere() -> None:
    assert tuple(totp.ALGORITHMS) == v.ALGORITHMS
    for name in v.ALGORITHMS:
        assert p.validate_algorithm(name) == name
    with pytest.raises(p.ProtocolError):
        p.validate_algorithm("MD5")


def test_the_window_bound_is_the_policys_and_the_wires() -> None:
    assert p.validate_window(v.MAX_WINDOW) == v.MAX_WINDOW
    parse(f"totp:\n  window: {v.MAX_WINDOW}\n")
    with pytest.raises(PolicyError):
        parse(f"totp:\n  window: {v.MAX_WINDOW + 1}\n")
    assert migrate.MAX_WINDOW == v.MAX_WINDOW


def test_the_account_states_are_the_ones_the_commands_name() -> None:
    assert set(v.STATE_LABELS) == set(v.ACCOUNT_STATES)
    reached = {impact.state_of(None, required, 0.0) for required in (True, False)}
    assert reached == {v.INCOMPLETE, v.DISABLED}


def test_the_daemon_and_the_clients_default_to_the_same_places() -> None:
    args = main.build_parser().parse_args([])
    assert (args.socket, args.state_dir) == (v.DEFAULT_SOCKET, v.DEFAULT_STATE_DIR)
    assert p.MAX_MESSAGE_BYTES == v.MAX_MESSAGE_BYTES
    parse("#" * (v.MAX_POLICY_BYTES - 1) + "\n")
    with pytest.raises(PolicyError):
        parse("#" * v.MAX_POLICY_BYTES + "\n")
