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


class CodeSource:
    """Valid codes for one secret, each for a time step not used before.

    The daemon accepts a step at most once and never one older than the last it
    accepted, so each call moves forward: the current step, else the next (still in
    the ±1 window), else it waits for the clock to catch up.
    """

    def __init__(self, secret: str, period: int = 30) -> None:
        self.secret = secret
        self.period = period
        self.last_step = -1

    def spend(self, at: float) -> None:
        """Note that the code for time `at` was used (e.g. to confirm an enrollment)."""
        self.last_step = max(self.last_step, int(at // self.period))

    def next(self) -> str:
        import time

        while True:
            now = time.time()
            step = int(now // self.period)
            for candidate in (step, step + 1):
                if candidate > self.last_step:
                    self.last_step = candidate
                    return oathtool(self.secret, candidate * self.period, period=self.period)
            time.sleep((step + 1) * self.period - now + 0.05)


def fresh_step(period: int = 30, min_left: float = 3.0) -> int:
    """The current time step, after waiting for the next one if this one is nearly over."""
    import time

    left = period - time.time() % period
    if left < min_left:
        time.sleep(left + 0.05)
    return int(time.time() // period)
