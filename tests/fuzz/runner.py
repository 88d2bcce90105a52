"""Run a target over many generated inputs, on several processes, timing every input.

The inputs come in chunks of CHUNK, each from its own generator seeded by (seed,
target, chunk number): a run is the same whatever the number of processes, and a
finding's place ("chunk 12, input 345") with the seed is enough to make it again.

An input that takes more than HANG_SECONDS is run once more; only if it is slow again
is it a hang (a busy machine can stall any process for a moment).  One still running
after ABORT_SECONDS is interrupted by an alarm and reported; a chunk stuck where no
alarm reaches (inside C) stops the target after STALL_SECONDS.
"""

from __future__ import annotations

import random
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from .targets import Target, by_name

CHUNK = 500
HANG_SECONDS = 1.0
ABORT_SECONDS = 10.0
STALL_SECONDS = 300.0
EXAMPLES_KEPT = 3  # per kind of finding
INPUT_SHOWN = 400  # characters of an input's repr in a report

CRASH = "crash"
HANG = "hang"
INTERNAL = "internal"


@dataclass
class Finding:
    kind: str  # crash, hang or internal
    key: str  # what makes two findings the same: kind, exception and where it rose
    summary: str
    where: str
    detail: str = ""
    input: str = ""


@dataclass
class Result:
    """One target's figures, from one chunk or a whole run."""

    target: str
    inputs: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    retimed: int = 0  # slow once, fast when run again: the machine, not the code
    counts: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.counts[finding.key] += 1
        if self.counts[finding.key] <= EXAMPLES_KEPT:
            self.findings.append(finding)

    def merge(self, other: Result) -> None:
        self.inputs += other.inputs
        self.slowest = max(self.slowest, other.slowest)
        self.retimed += other.retimed
        for finding in other.findings:
            if sum(1 for f in self.findings if f.key == finding.key) < EXAMPLES_KEPT:
                self.findings.append(finding)
        self.counts.update(other.counts)
        self.notes.extend(other.notes)

    def total(self, kind: str) -> int:
        return sum(n for key, n in self.counts.items() if key.startswith(kind + ":"))

    @property
    def ok(self) -> bool:
        return not self.counts


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= INPUT_SHOWN else text[:INPUT_SHOWN] + f"... ({len(text)} chars)"


def _finding(kind: str, exc: BaseException, where: str, case: Any) -> Finding:
    frames = traceback.extract_tb(exc.__traceback__)
    place = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    detail = "".join(traceback.format_exception(exc, limit=-5)).rstrip()
    summary = f"{type(exc).__name__}: {str(exc)[:300]}"
    return Finding(
        kind, f"{kind}:{type(exc).__name__}@{place}", summary, where, detail, shown(case)
    )


# --- one chunk, in whatever process ---------------------------------------------------


class _Interrupted(BaseException):
    """Raised by the alarm into an input that has run for ABORT_SECONDS."""


_started: float | None = None


def _on_alarm(signum: int, frame: Any) -> None:
    if _started is not None and time.perf_counter() - _started > ABORT_SECONDS:
        raise _Interrupted(f"still running after {ABORT_SECONDS:g} s")


def _timed(check: Callable[[Any], None], case: Any) -> tuple[float, BaseException | None]:
    global _started
    _started = start = time.perf_counter()
    try:
        check(case)
        error: BaseException | None = None
    except (Exception, _Interrupted) as exc:
        error = exc
    finally:
        _started = None
    return time.perf_counter() - start, error


def run_chunk(target_name: str, seed: int, chunk: int, count: int) -> Result:
    """Generate and check `count` inputs of one chunk; the Result holds what went wrong."""
    target = by_name(target_name)
    rng = random.Random(f"{seed}:{target_name}:{chunk}")
    result = Result(target_name)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 1.0, 1.0)
    try:
        for index in range(count):
            where = f"seed {seed}, chunk {chunk}, input {index}"
            try:
                case = target.generate(rng)
            except Exception as exc:
                result.add(_finding(CRASH, exc, where + " (the generator failed)", None))
                break  # the rest of this chunk's inputs would differ from a clean run
            elapsed, error = _timed(target.check, case)
            result.inputs += 1
            if isinstance(error, _Interrupted):
                result.add(_finding(HANG, error, where, case))
            elif error is not None:
                result.add(_finding(CRASH, error, where, case))
            if elapsed > HANG_SECONDS and not isinstance(error, _Interrupted):
                again, _ = _timed(target.check, case)
                if again > HANG_SECONDS:
                    summary = f"took {elapsed:.2f} s, and {again:.2f} s again"
                    result.add(Finding(HANG, f"{HANG}:slow", summary, where, "", shown(case)))
                else:
                    result.retimed += 1
                elapsed = again
            result.slowest = max(result.slowest, elapsed)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return result


# --- a whole target --------------------------------------------------------------------


def _chunks(count: int) -> list[tuple[int, int]]:
    return [(n, min(CHUNK, count - n * CHUNK)) for n in range(-(-count // CHUNK))]


def run_target(target: Target, count: int, seed: int, jobs: int) -> Result:
    """All `count` inputs of `target`, on `jobs` processes (1: in this one)."""
    result = Result(target.name)
    start = time.perf_counter()
    chunks = _chunks(count)
    if jobs <= 1:
        for chunk, size in chunks:
            result.merge(run_chunk(target.name, seed, chunk, size))
    else:
        _run_parallel(target, seed, jobs, chunks, result)
    result.seconds = time.perf_counter() - start
    return result


def _run_parallel(
    target: Target, seed: int, jobs: int, chunks: list[tuple[int, int]], result: Result
) -> None:
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("fork"))
    todo = list(reversed(chunks))
    running: set[Future[Result]] = set()
    try:
        while todo or running:
            while todo and len(running) < 2 * jobs:
                chunk, size = todo.pop()
                running.add(executor.submit(run_chunk, target.name, seed, chunk, size))
            done, running = wait(running, timeout=STALL_SECONDS, return_when=FIRST_COMPLETED)
            if not done:
                summary = f"no chunk of {CHUNK} inputs finished in {STALL_SECONDS:g} s"
                result.add(Finding(HANG, f"{HANG}:stalled", summary, f"seed {seed}"))
                _kill_workers(executor)
                return
            for future in done:
                result.merge(future.result())
    except BrokenProcessPool as exc:
        result.add(_finding(CRASH, exc, f"seed {seed}: a worker process died", None))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    """Stop our own stuck worker processes, by the PIDs the executor started."""
    for process in list((executor._processes or {}).values()):
        process.kill()
