"""Codes from oathtool: an implementation independent of the one under test."""

from __future__ import annotations

import subprocess


def oathtool(
    secret: str,
    at: float,
    *,
    algorithm: str = "SHA1",
    digits: int = 6,
    period: int = 30,
) -> str:
    """The TOTP code oathtool computes for `secret` (base32) at unix time `at`."""
    result = subprocess.run(
        [
            "oathtool",
            f"--totp={algorithm.lower()}",
            "--base32",
            f"--digits={digits}",
            f"--time-step-size={period}s",
            f"--now=@{int(at)}",
            secret,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def oathtool_hex(hex_key: str, at: float, *, algorithm: str = "SHA1", digits: int = 8) -> str:
    """oathtool with a hex key, as RFC 6238's test vectors give them."""
    result = subprocess.run(
        [
            "oathtool",
            f"--totp={algorithm.lower()}",
            f"--digits={digits}",
            f"--now=@{int(at)}",
            hex_key,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()
