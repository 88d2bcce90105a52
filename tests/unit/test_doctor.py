"""Where the hook sits in a PAM stack: the cases doctor must tell apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from pam_twofa.cli.doctor import Setup, _code_alone_logs_in, pam_stack

HOOK = "auth required pam_python.so /usr/lib/python3/dist-packages/pam_twofa/hook.py"
DEBIAN_COMMON_AUTH = (
    "auth [success=1 default=ignore] pam_unix.so nullok\n"
    "auth requisite pam_deny.so\n"
    "auth required pam_permit.so\n"
)


@pytest.mark.parametrize(
    ("stack", "ok", "words"),
    [
        (f"@include common-auth\n{HOOK}\n", True, "the hook runs"),
        (f"{HOOK}\n@include common-auth\n", True, "the hook runs"),
        ("@include common-auth\n", False, "not in the auth stack"),
        (f"auth sufficient pam_unix.so\n{HOOK}\n", False, "succeeds past the hook"),
        (
            f"auth [success=done default=ignore] pam_unix.so\n{HOOK}\n",
            False,
            "succeeds past the hook",
        ),
        (
            f"auth [success=2 default=ignore] pam_unix.so\nauth requisite pam_deny.so\n{HOOK}\n",
            False,
            "past the hook",
        ),
        (
            f"auth [success=1 default=ignore] pam_unix.so\nauth requisite pam_deny.so\n{HOOK}\n",
            True,
            "runs",
        ),
        (HOOK.replace("required", "optional") + "\n", False, "would not stop a login"),
        (HOOK.replace("required", "requisite") + "\n", True, "requisite"),
        (f"auth substack common-auth\n{HOOK}\n", True, "runs"),
        (f"-auth optional pam_foo.so\n{HOOK}  # comment\n", True, "runs"),
        ("auth required pam_python.so /opt/other/hook.py\n", False, "not in the auth stack"),
        (f"{HOOK} fail=open\n", False, "while twofad is down or busy a login needs no code"),
        (f"{HOOK} fail=secure\n", True, "runs"),
        (HOOK.replace("required", "[success=ok default=die]") + "\n", True, "runs"),
        (HOOK.replace("required", "[success=ok default=bad]") + "\n", True, "runs"),
        (HOOK.replace("required", "[success=ok]") + "\n", True, "runs"),
        (
            HOOK.replace("required", "[success=ok authinfo_unavail=ignore default=bad]") + "\n",
            False,
            "would not stop a login",
        ),
        (
            HOOK.replace("required", "[success=ok default=ignore]") + "\n",
            False,
            "would not stop a login",
        ),
    ],
)
def test_hook_position(tmp_path: Path, stack: str, ok: bool, words: str) -> None:
    (tmp_path / "common-auth").write_text(DEBIAN_COMMON_AUTH)
    (tmp_path / "svc").write_text(stack)
    check = pam_stack(str(tmp_path), "svc")
    assert check.ok is ok, check
    assert words in check.detail


def test_a_missing_file(tmp_path: Path) -> None:
    check = pam_stack(str(tmp_path), "nothing")
    assert not check.ok and "cannot read" in check.detail


@pytest.mark.parametrize(
    ("methods", "stack", "alone"),
    [
        ("keyboard-interactive:pam", f"{HOOK}\n", True),
        ("keyboard-interactive", f"{HOOK}\nauth optional pam_unix.so\n", True),
        ("keyboard-interactive:pam", f"@include common-auth\n{HOOK}\n", False),
        ("keyboard-interactive:pam", f"auth requisite pam_sss.so\n{HOOK}\n", False),
        ("publickey,keyboard-interactive:pam", f"{HOOK}\n", False),
        ("publickey,keyboard-interactive:pam keyboard-interactive:pam", f"{HOOK}\n", True),
        ("password,keyboard-interactive:pam", f"{HOOK}\n", False),
    ],
)
def test_a_code_alone_is_not_a_second_factor(
    tmp_path: Path, methods: str, stack: str, alone: bool
) -> None:
    (tmp_path / "common-auth").write_text(DEBIAN_COMMON_AUTH)
    (tmp_path / "sshd").write_text(stack)
    found = _code_alone_logs_in(methods, Setup(pam_dir=str(tmp_path)))
    assert (found is not None) is alone, found
    if alone:
        assert "the code alone logs in" in str(found)


def test_a_failed_check_and_its_fix_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "svc").write_text("auth required pam_unix.so\n")
    line = pam_stack(str(tmp_path), "svc").line()
    assert "\n" not in line
    assert line.startswith("✗ PAM svc: the hook is not in the auth stack")
    assert " — fix: add " in line
