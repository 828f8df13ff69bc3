"""Raw engine throughput on a fixed token workload: N prompts x M new tokens, ignore_eos.

This is the denominator of the loop-efficiency ratio (episode tokens/s over raw engine tokens/s).
It runs the embedded engine and a local vLLM server on the same fp32 SmolLM2 checkpoint, one
after the other (never both at once: they would share the same CPU cores), and prints tokens/s.

    python bench/engine_throughput.py [--prompts 64] [--new-tokens 128] [--engines embedded,vllm]
    python bench/engine_throughput.py --engines vllm://127.0.0.1:8000   # an already running server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

from agentroll.engines.base import Engine
from agentroll.engines.registry import make_engine
from agentroll.types import SamplingParams


def workload(n: int, prompt_len: int, seed: int = 0) -> list[list[int]]:
    """N distinct prompts of plain vocabulary tokens (no shared prefix to flatter the cache)."""
    rng = random.Random(seed)
    return [[1, *(rng.randrange(100, 40000) for _ in range(prompt_len - 1))] for _ in range(n)]


async def measure(engine: Engine, prompts: list[list[int]], new_tokens: int) -> dict[str, Any]:
    sp = SamplingParams(temperature=1.0, max_tokens=new_tokens, ignore_eos=True, seed=0)
    await engine.generate(prompts[0][:8], sp.model_copy(update={"max_tokens": 4}))  # warm up
    started = time.perf_counter()
    results = await asyncio.gather(*(engine.generate(p, sp) for p in prompts))
    elapsed = time.perf_counter() - started
    tokens = sum(len(c.token_ids) for c in results)
    return {"tokens": tokens, "seconds": round(elapsed, 3), "tokens_per_s": round(tokens / elapsed, 1)}


async def run_one(spec: str, prompts: list[list[int]], new_tokens: int) -> dict[str, Any]:
    engine = make_engine(spec)
    try:
        return await measure(engine, prompts, new_tokens)
    finally:
        await engine.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--engines", default="embedded,vllm", help="comma list: embedded, vllm (local), or specs")
    args = ap.parse_args()
    prompts = workload(args.prompts, args.prompt_len)
    rows = []
    for name in args.engines.split(","):
        if name == "vllm":  # start a local server on the same checkpoint, then stop it
            from agentroll.engines.checkpoint import ensure_default_checkpoint
            from agentroll.engines.launch import start_vllm_server

            server = start_vllm_server(ensure_default_checkpoint(), kv_cache_gib=2)
            try:
                result = asyncio.run(run_one(f"vllm://{server.url.removeprefix('http://')}", prompts, args.new_tokens))
            finally:
                server.stop()
        else:
            result = asyncio.run(run_one(name, prompts, args.new_tokens))
        rows.append({"engine": name, "prompts": args.prompts, "new_tokens": args.new_tokens, **result})
        print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
