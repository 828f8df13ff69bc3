"""What the P1 and routing benchmarks read from a real vLLM server: its own counters (/metrics), a prefix
cache reset between phases, and starting servers that allow that reset.

Token counts come from the engine, never from the client: `vllm:generation_tokens_total` is what the
server sampled; `vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total` is its prefix-cache hit
rate (both in tokens, vLLM 0.32 names).
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from agentroll.errors import EngineError, EngineUnavailable

GENERATION_TOKENS = "vllm:generation_tokens_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
CACHE_HITS = "vllm:prefix_cache_hits_total"
CACHE_QUERIES = "vllm:prefix_cache_queries_total"
PREEMPTIONS = "vllm:num_preemptions_total"
E2E_SUM = "vllm:e2e_request_latency_seconds_sum"  # the server's own request latency (arrival -> finished)
E2E_COUNT = "vllm:e2e_request_latency_seconds_count"
COUNTERS = (GENERATION_TOKENS, PROMPT_TOKENS, CACHE_HITS, CACHE_QUERIES, PREEMPTIONS, E2E_SUM, E2E_COUNT)


def read_counters(base_url: str, names: Sequence[str] = COUNTERS, timeout_s: float = 10.0) -> dict[str, float]:
    """The server's Prometheus counters `names`, summed over their label sets (one engine here)."""
    with urllib.request.urlopen(base_url.rstrip("/") + "/metrics", timeout=timeout_s) as r:
        text = r.read().decode("utf-8", "replace")
    found = parse_counters(text, names)
    missing = [n for n in names if n not in found]
    if missing:
        raise EngineError(f"{base_url}/metrics lacks {missing} (another vLLM version?)")
    return found


def parse_counters(text: str, names: Sequence[str]) -> dict[str, float]:
    """Prometheus text exposition -> {name: value summed over label sets} for the counters asked."""
    wanted = set(names)
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name = head.split("{", 1)[0]
        if name in wanted:
            out[name] = out.get(name, 0.0) + float(value)
    return out


@dataclass(frozen=True, slots=True)
class Delta:
    """What a server did between two counter snapshots."""

    generated: float
    prompt: float
    cache_hits: float
    cache_queries: float
    preemptions: float
    requests: float
    latency_s: float  # summed over requests, as the server measured them

    @property
    def hit_rate(self) -> float:
        return self.cache_hits / self.cache_queries if self.cache_queries else 0.0


def delta(before: dict[str, float], after: dict[str, float]) -> Delta:
    d = {n: after[n] - before[n] for n in COUNTERS}
    return Delta(
        generated=d[GENERATION_TOKENS],
        prompt=d[PROMPT_TOKENS],
        cache_hits=d[CACHE_HITS],
        cache_queries=d[CACHE_QUERIES],
        preemptions=d[PREEMPTIONS],
        requests=d[E2E_COUNT],
        latency_s=d[E2E_SUM],
    )


def reset_prefix_cache(base_url: str) -> bool:
    """Empty the server's prefix cache (a dev-mode endpoint) so each phase starts cold; False if refused."""
    req = urllib.request.Request(base_url.rstrip("/") + "/reset_prefix_cache", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
    except OSError:
        return False
    with contextlib.suppress(ValueError):
        return bool(json.loads(body).get("success", True))
    return True


@contextlib.contextmanager
def vllm_servers(n: int, *, kv_cache_gib: int = 1, max_model_len: int = 2048) -> Iterator[list[Any]]:
    """`n` real vLLM CPU servers for the default model (SmolLM2-135M), started in parallel, stopped by PID.

    Dev mode is on for them only (the prefix-cache reset endpoint); their KV caches total n x kv_cache_gib.
    """
    from agentroll.engines.checkpoint import ensure_default_checkpoint
    from agentroll.engines.launch import start_vllm_server

    model_dir = ensure_default_checkpoint()
    with _env(VLLM_SERVER_DEV_MODE="1"), ThreadPoolExecutor(n) as ex:
        # start_vllm_server copies os.environ when it spawns; the variable is gone again right after.
        futures = [ex.submit(start_vllm_server, model_dir, kv_cache_gib=kv_cache_gib, max_model_len=max_model_len)
                   for _ in range(n)]  # fmt: skip
    started = [f.result() for f in futures if f.exception() is None]
    try:
        if len(started) < n:
            raise next(f.exception() for f in futures if f.exception() is not None)
        yield started
    except Exception as e:
        dead = [s for s in started if s.proc.poll() is not None]
        if dead:  # say why, from the server's own log (on a shared machine: often the OOM killer)
            log = dead[0].log_tail(20)
            raise EngineUnavailable(f"vLLM server {dead[0].url} died during the benchmark:\n{log}") from e
        raise
    finally:
        for server in started:
            server.stop()


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
