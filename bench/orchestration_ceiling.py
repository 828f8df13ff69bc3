"""P2 and P3: the episode loop against the instant engine on one core (tokens/s, turns/s, cost growth).

A thin entry point over `agentroll.bench.p2` / `p3` (see them for the method); the same as
`agentroll bench --only p2,p3`.

    python bench/orchestration_ceiling.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys

from agentroll.bench import p2, p3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    result = {**p2.measure(quick=args.quick), **p3.measure(quick=args.quick)}
    result.pop("p3_by_turn_us")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
