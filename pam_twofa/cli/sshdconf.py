"""sshd's settings as it really runs with them: `sshd -T`, for `twofactl doctor`.

sshd_config alone does not say: Include files, drop-ins and compiled-in defaults all
count, and only sshd itself resolves them. `sshd -T` prints every setting, one a line,
lower-case keyword first. A keyword it prints more than once (port, hostkey) keeps its
first value here: the ones doctor asks about appear once.
"""

from __future__ import annotations

import subprocess


class Refused(Exception):
    """`sshd -T` failed; `reason` is the last line it wrote (sshd's own words)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def effective_settings(binary: str, config: str | None = None) -> dict[str, str]:
    """The settings of the sshd at `binary`, from its `config` (None: its default file)."""
    command = [binary, "-T"]
    if config:
        command += ["-f", config]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Refused((done.stderr.strip().splitlines() or ["no output"])[-1])
    return parse_settings(done.stdout)


def parse_settings(text: str) -> dict[str, str]:
    """`keyword value` lines to a mapping; the first value of a keyword stands."""
    settings: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        settings.setdefault(key, value)
    return settings
