"""PAM service files read as libpam reads them: words, includes, and what a control does."""

from __future__ import annotations

from pathlib import Path

import pytest

from pam_twofa.cli import pamconf

HOOK = "auth required pam_python.so /usr/lib/python3/dist-packages/pam_twofa/hook.py"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("auth  required\tpam_unix.so nullok", ["auth", "required", "pam_unix.so", "nullok"]),
        (
            "auth [success=1 default=ignore] pam_unix.so",
            ["auth", "[success=1 default=ignore]", "pam_unix.so"],
        ),
        (
            "auth required pam_x.so [arg with spaces]",
            ["auth", "required", "pam_x.so", "[arg with spaces]"],
        ),
        ("auth required pam_x.so a]b c", ["auth", "required", "pam_x.so", "a]b", "c"]),
        ("   ", []),
    ],
)
def test_a_line_splits_into_words_with_brackets_kept_whole(text: str, words: list[str]) -> None:
    assert pamconf.split_words(text) == words


def test_includes_and_substacks_are_expanded_in_place_with_their_origin(tmp_path: Path) -> None:
    (tmp_path / "common-auth").write_text("auth requisite pam_deny.so\n")
    (tmp_path / "extra").write_text("auth optional pam_echo.so\n")
    (tmp_path / "svc").write_text(
        "# a comment\n"
        "@include common-auth\n"
        "account required pam_unix.so\n"
        "-auth optional pam_systemd_home.so\n"
        "auth substack extra\n"
        f"{HOOK} fail=secure  # trailing comment\n"
    )
    lines = pamconf.auth_lines(str(tmp_path), "svc")
    assert [line.module for line in lines] == [
        "pam_deny.so",
        "pam_systemd_home.so",
        "pam_echo.so",
        "pam_python.so",
    ]
    assert lines[0].origin == f"{tmp_path / 'common-auth'}:1"
    assert lines[-1].origin == f"{tmp_path / 'svc'}:6"
    assert lines[-1].arguments == (
        "/usr/lib/python3/dist-packages/pam_twofa/hook.py",
        "fail=secure",
    )
    assert [pamconf.is_hook(line) for line in lines] == [False, False, False, True]


def test_a_file_that_includes_itself_ends(tmp_path: Path) -> None:
    (tmp_path / "loop").write_text("@include loop\nauth required pam_unix.so\n")
    lines = pamconf.auth_lines(str(tmp_path), "loop")
    assert 1 <= len(lines) <= 9


def test_a_missing_include_is_an_error_for_the_check_to_report(tmp_path: Path) -> None:
    (tmp_path / "svc").write_text("@include nowhere\n")
    with pytest.raises(FileNotFoundError):
        pamconf.auth_lines(str(tmp_path), "svc")


def test_the_hook_is_found_only_as_pam_pythons_first_argument() -> None:
    line = pamconf.Line("required", "pam_python.so", ("/opt/x/pam_twofa/hook.py",), "f:1")
    assert pamconf.is_hook(line)
    late = pamconf.Line("required", "pam_python.so", ("other.py", "pam_twofa/hook.py"), "f:1")
    assert not pamconf.is_hook(late)
    exec_line = pamconf.Line("required", "pam_exec.so", ("pam_twofa/hook.py",), "f:1")
    assert not pamconf.is_hook(exec_line)


@pytest.mark.parametrize(
    ("control", "skipped"),
    [
        ("sufficient", pamconf.ENDS),
        ("[success=done default=ignore]", pamconf.ENDS),
        ("[success=2 default=ignore]", 2),
        ("[default=ignore]", None),
        ("required", None),
        ("requisite", None),
        ("optional", None),
    ],
)
def test_how_far_a_success_jumps(control: str, skipped: int | None) -> None:
    assert pamconf.lines_skipped_on_success(control) == skipped


@pytest.mark.parametrize(
    ("control", "stops"),
    [
        ("required", True),
        ("requisite", True),
        ("sufficient", False),
        ("optional", False),
        ("[success=ok]", True),  # what a bracket does not name acts as 'bad'
        ("[success=ok default=die]", True),
        ("[success=ok default=ignore]", False),
        ("[success=ok service_err=ignore default=bad]", False),
        ("[success=ok auth_err=bad authinfo_unavail=die service_err=bad default=ignore]", True),
    ],
)
def test_whether_every_refusal_of_the_hook_fails_the_login(control: str, stops: bool) -> None:
    assert pamconf.failure_stops_login(control) is stops
