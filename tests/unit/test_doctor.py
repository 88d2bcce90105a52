"""Where the hook sits in a PAM stack: the cases doctor must tell apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from pam_twofa.doctor import pam_stack

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
