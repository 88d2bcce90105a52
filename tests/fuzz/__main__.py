"""`python -m fuzz` (with tests/ on the path): what `make fuzz` runs.

Each offline group (decoder, policy, typed) gets --count inputs, split among its
targets; the policy parser, pure-Python PyYAML and some hundred times slower than the
decoder, gets --policy-count.  Then --live-count requests go to a live twofad.  The
exit status is 1 if anything crashed, hung or answered `internal`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import live, report, runner, targets

DEFAULT_SEED = 20_250_601
DEFAULT_COUNT = 1_000_000
DEFAULT_POLICY_COUNT = 1_000_000
DEFAULT_LIVE_COUNT = 100_000
GROUP_NAMES = (*targets.GROUPS, "live")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fuzz", description="Fuzz pam-twofa's parsers and a live twofad."
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default: %(default)s")
    parser.add_argument(
        "--count",
        type=int,
        default=DEFAULT_COUNT,
        help="inputs for the decoder and for the typed-input parsing, each (default: %(default)s)",
    )
    parser.add_argument(
        "--policy-count",
        type=int,
        help=f"inputs for the policy parser (default: {DEFAULT_POLICY_COUNT}, "
        "or --count if that is given and smaller)",
    )
    parser.add_argument(
        "--live-count",
        type=int,
        default=DEFAULT_LIVE_COUNT,
        help="requests to the live daemon (default: %(default)s)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes for the offline targets (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=GROUP_NAMES,
        help="run only this group (repeatable)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    policy_count = args.policy_count
    if policy_count is None:
        policy_count = min(DEFAULT_POLICY_COUNT, args.count)
    counts = {"decoder": args.count, "typed": args.count, "policy": policy_count}
    groups = args.only or GROUP_NAMES
    print(f"pam-twofa fuzz: seed {args.seed}, {args.jobs} processes", flush=True)
    print(report.HEADER, flush=True)
    start = time.perf_counter()
    results = []
    for target in targets.TARGETS:
        if target.group not in groups:
            continue
        count = round(counts[target.group] * target.share)
        result = runner.run_target(target, count, args.seed, args.jobs)
        results.append(result)
        print(report.row(result), flush=True)
    offline = sum(result.inputs for result in results)
    if "live" in groups and args.live_count > 0:
        result = live.run_live(args.live_count, args.seed)
        results.append(result)
        print(report.row(result, live=True), flush=True)
    report.findings(results, sys.stdout)
    failed = [result for result in results if not result.ok]
    live_requests = sum(r.inputs for r in results) - offline
    print(
        f"\n{offline:,} offline inputs, {live_requests:,} live requests, "
        f"{time.perf_counter() - start:.0f} s in all: "
        + ("FAILED" if failed else "no crash, no hang, no internal error")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
