"""The table `make fuzz` prints, one row per target, and the findings after it."""

from __future__ import annotations

from typing import TextIO

from .runner import CRASH, HANG, INTERNAL, Result

HEADER = (
    f"{'target':<32} {'inputs':>10} {'seconds':>8} {'inputs/s':>9} "
    f"{'crashes':>7} {'hangs':>5} {'internal':>8} {'slowest':>9}"
)


def row(result: Result, *, live: bool = False) -> str:
    rate = result.inputs / result.seconds if result.seconds else 0.0
    internal = str(result.total(INTERNAL)) if live else "-"
    return (
        f"{result.target:<32} {result.inputs:>10,} {result.seconds:>8.1f} {rate:>9,.0f} "
        f"{result.total(CRASH):>7} {result.total(HANG):>5} {internal:>8} "
        f"{result.slowest * 1000:>6.1f} ms"
    )


def findings(results: list[Result], out: TextIO) -> None:
    for result in results:
        for note in result.notes:
            print(f"  {result.target}: {note}", file=out)
        if result.retimed:
            print(
                f"  {result.target}: {result.retimed} inputs took over 1 s once and under it "
                "when run again (a busy machine), not counted as hangs",
                file=out,
            )
    shown: set[str] = set()
    for result in results:
        for finding in result.findings:
            if finding.key in shown:
                continue
            shown.add(finding.key)
            count = result.counts[finding.key]
            print(
                f"\n{finding.kind.upper()} in {result.target} ({count}x): {finding.summary}",
                file=out,
            )
            print(f"  first at: {finding.where}", file=out)
            if finding.input:
                print(f"  input: {finding.input}", file=out)
            if finding.detail:
                print("  " + finding.detail.replace("\n", "\n  "), file=out)
