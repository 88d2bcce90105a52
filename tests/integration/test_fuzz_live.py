"""`make fuzz`'s live target, a few hundred requests: a real twofad, clients as root
and as `nobody`, and not one internal error, hang or wrong reply."""

from __future__ import annotations

import io
import os

import pytest

from fuzz import live, report
from fuzz.__main__ import DEFAULT_SEED

pytestmark = pytest.mark.integration


def test_generated_requests_get_sound_replies_from_a_live_daemon() -> None:
    result = live.run_live(400, DEFAULT_SEED, processes=3, connections=2)
    out = io.StringIO()
    report.findings([result], out)
    assert result.ok, out.getvalue()
    assert result.inputs >= 400
    who = [note.split(":")[0] for note in result.notes]
    assert len(who) == 3
    if os.geteuid() == 0:
        assert "as nobody" in who
