"""The command-line tools' shared parsing: codes read from standard input for `-`."""

from __future__ import annotations

import argparse
import io

import pytest

from pam_twofa.cli import _common


def _args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**values)


def test_a_dash_is_replaced_by_the_line_on_standard_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("123456\n"))
    args = _args(code="-", user="alice")
    _common.codes_from_stdin(args)
    assert args.code == "123456" and args.user == "alice"


def test_two_codes_are_read_one_line_each_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("111111\n222222\n"))
    args = _args(code1="-", code2="-")
    _common.codes_from_stdin(args)
    assert (args.code1, args.code2) == ("111111", "222222")


def test_only_dashes_read_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("999999\n"))
    args = _args(code1="123456", code2="-", code=None)
    _common.codes_from_stdin(args)
    assert (args.code1, args.code2, args.code) == ("123456", "999999", None)


@pytest.mark.parametrize("given", ["", "\n", "   \n"])
def test_an_empty_standard_input_is_refused(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(given))
    with pytest.raises(ValueError, match="had none"):
        _common.codes_from_stdin(_args(code="-"))


def test_an_overlong_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("7" * 10_000))
    with pytest.raises(ValueError, match="one short line"):
        _common.codes_from_stdin(_args(code="-"))
