"""What a weight update costs: seconds with no token sampled (stall), per pause mode, on the embedded engine.

For each mode, `--requests` generations of `--new-tokens` tokens are started; after `--after` seconds the
engine takes a checkpoint folder (the default model again, as a new version) and then an in-memory state
dict. Printed per update: stall_s (pause -> resume), load_s (vLLM's reload_weights), the requests' fate.
`wait` includes draining the requests in flight; a state dict adds writing it to a temporary folder first
(reported as write_s, outside the stall).

    python bench/weight_update.py [--requests 8] [--new-tokens 160] [--after 1.5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from agentroll.engines.checkpoint import ensure_default_checkpoint
from agentroll.engines.embedded import EmbeddedEngine
from agentroll.types import SamplingParams


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    from safetensors.torch import load_file

    model = ensure_default_checkpoint()
    engine = EmbeddedEngine(model=str(model), kv_cache_gib=1)
    await engine.health()
    state = load_file(str(model / "model.safetensors"))
    sp = SamplingParams(temperature=0.7, max_tokens=args.new_tokens, ignore_eos=True)
    rows, version = [], 0
    try:
        for mode in ("keep", "abort", "wait"):
            for source_kind in ("folder", "state_dict"):
                version += 1
                calls = [asyncio.create_task(engine.generate([1, 2, 3, 4 + i], sp)) for i in range(args.requests)]
                await asyncio.sleep(args.after)
                started = time.monotonic()
                source = model if source_kind == "folder" else state
                update = await engine.update_weights(source, version=version, mode=mode)
                total = time.monotonic() - started
                done = await asyncio.gather(*calls)
                rows.append(
                    {
                        "mode": mode,
                        "source": source_kind,
                        "stall_s": round(update.stall_s, 3),
                        "load_s": round(update.load_s, 3),
                        "write_s": round(total - update.stall_s, 3),
                        "finished": sum(c.finish_reason == "length" for c in done),
                        "aborted": sum(c.finish_reason == "abort" for c in done),
                        "split_by_version": sum(len(c.policy_versions or []) > 1 for c in done),
                    }
                )
    finally:
        await engine.aclose()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=160)
    ap.add_argument("--after", type=float, default=1.5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'mode':>6} {'source':>10} {'stall_s':>8} {'load_s':>7} {'write_s':>8} finished aborted split")
    for r in rows:
        print(
            f"{r['mode']:>6} {r['source']:>10} {r['stall_s']:>8} {r['load_s']:>7} {r['write_s']:>8} "
            f"{r['finished']:>8} {r['aborted']:>7} {r['split_by_version']:>5}"
        )
    return 0


if __name__ == "__main__":  # the embedded engine spawns workers: guard the entry point
    raise SystemExit(main())
