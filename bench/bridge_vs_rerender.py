"""P3/P4 table: per-turn cost of extending an episode by one turn, bridge vs full re-render + encode.

A thin entry point over `agentroll.bench.p4` (see it for the method); `agentroll bench --only p4` runs
the same measurement pinned to one core and reports it with the other benchmarks.

    python bench/bridge_vs_rerender.py [--renderer smollm2] [--repeats 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

from agentroll.bench.p4 import HEADLINE, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renderer", default="smollm2")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    table = rows(args.renderer, args.repeats)
    if args.json:
        print(json.dumps({"renderer": args.renderer, "rows": table}))
        return 0
    print(f"renderer {args.renderer}: per-turn cost, median of {args.repeats}")
    print(f"{'turns':>6} {'full re-render ms':>18} {'bridge ms':>10} {'speedup':>8}")
    for row in table:
        print(f"{row['turns']:>6} {row['full_ms']:>18.3f} {row['bridge_ms']:>10.3f} {row['speedup']:>7.1f}x")
    by_turns = {row["turns"]: row for row in table}
    print(f"bridge speedup at {HEADLINE} turns: {by_turns[HEADLINE]['speedup']:.1f}x (target >= 20x)")
    print(f"bridge cost 64 turns / 1 turn: {by_turns[64]['bridge_ms'] / by_turns[1]['bridge_ms']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
