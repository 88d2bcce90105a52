"""Run the real command-line tools as a person would, and read what they print."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(
    module: str, socket: str, *args: str, user: int | None = None, input: str | None = None
) -> Run:
    """`python -m pam_twofa.cli.<module> --socket S ARGS...`, optionally as another uid."""
    done = subprocess.run(
        [sys.executable, "-m", f"pam_twofa.cli.{module}", "--socket", socket, *args],
        capture_output=True,
        text=True,
        input=input,
        user=user,
        group=None,
        timeout=60,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def twofactl(socket: str, *args: str, **kwargs: Any) -> Run:
    return run_cli("ctl", socket, *args, **kwargs)
