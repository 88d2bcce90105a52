"""`make fuzz`'s offline targets, a few thousand inputs in all: none may crash or hang.

The same generators and oracles as the full run (tests/fuzz), with small counts, so a
regression in the decoder, the policy parser or the reading of typed codes shows up
in `make test` too.
"""

from __future__ import annotations

import io

import pytest

from fuzz import report, runner, targets
from fuzz.__main__ import DEFAULT_SEED

INPUTS_PER_GROUP = 1000


@pytest.mark.parametrize("target", targets.TARGETS, ids=lambda target: target.name)
def test_no_generated_input_crashes_or_hangs(target: targets.Target) -> None:
    count = round(INPUTS_PER_GROUP * target.share)
    result = runner.run_target(target, count, DEFAULT_SEED, jobs=1)
    out = io.StringIO()
    report.findings([result], out)
    assert result.ok, out.getvalue()
    assert result.inputs == count


def test_a_crash_is_reported_with_its_input() -> None:
    """The harness itself: an exception escaping a check is a finding, not a pass."""

    def check(case: object) -> None:
        raise ValueError("boom")

    target = targets.Target("broken", "decoder", 1.0, lambda rng: rng.random(), check)
    targets_before = targets.TARGETS
    targets.TARGETS = (*targets_before, target)
    try:
        result = runner.run_target(target, 3, DEFAULT_SEED, jobs=1)
    finally:
        targets.TARGETS = targets_before
    assert result.total(runner.CRASH) == 3 and not result.ok
    assert result.findings[0].summary == "ValueError: boom"
    assert result.findings[0].where == f"seed {DEFAULT_SEED}, chunk 0, input 0"
