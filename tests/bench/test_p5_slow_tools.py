"""P5 quick variant on a real vLLM CPU server: tools that take time, episodes over-subscribed.

Asserts how the figures are made (the server's counters, the same tokens replayed, the tool waits drawn,
busy fraction and occupancy in range), never the target."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from agentroll.bench import p5
from agentroll.tools import make_builtin
from tests.conftest import needs_vllm


def test_the_slow_tool_waits_a_lognormal_time_of_the_asked_mean_and_answers_as_its_tool():
    tool = p5.SlowTool(make_builtin("calculator"), latency_s=0.01, seed=1)

    async def go():
        return [await tool.run({"expression": "6 * 7"}) for _ in range(200)]

    outs = asyncio.run(go())
    assert {str(getattr(o, "content", o)) for o in outs} == {"42"}
    assert 0.008 < statistics.mean(tool.waits) < 0.012 and max(tool.waits) <= 0.08


@pytest.mark.slow
@needs_vllm
def test_p5_measures_every_cell_against_a_replay_of_the_same_requests():
    figures = p5.measure(quick=True)
    cells = figures["p5_cells"]
    plan = p5.QUICK
    assert [(c["tool_latency_s"], c["oversubscription"]) for c in cells] == [
        (lat, k) for lat in plan["latencies"] for k in plan["oversubscription"]
    ]
    for c in cells:
        assert c["tokens"] > 0 and c["loop_efficiency"] > 0
        assert 0.0 < c["busy_fraction"] <= 1.0 and 0.0 < c["batch_occupancy"] <= 1.0 + 1e-6
        assert c["episodes_in_flight"] == c["oversubscription"] * p5.BATCH
        if c["tool_latency_s"]:
            assert c["tool_calls"] > 0 and c["tool_wait_mean_s"] > 0
    slow = [c for c in cells if c["tool_latency_s"] == max(plan["latencies"])]
    assert figures["p5_loop_efficiency"] == max(slow, key=lambda c: c["oversubscription"])["loop_efficiency"]
    assert all(k.startswith("p5_") for k in figures)
