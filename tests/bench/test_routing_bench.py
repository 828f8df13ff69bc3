"""Routing quick variant over two real vLLM CPU servers: sticky vs round-robin, from the servers' counters."""

from __future__ import annotations

import pytest

from agentroll.bench import routing
from tests.conftest import needs_vllm

pytestmark = [pytest.mark.slow, needs_vllm]


def test_sticky_routing_hits_the_prefix_cache_at_least_as_often_as_round_robin() -> None:
    figures = routing.measure(quick=True)
    sticky, rr = figures["routing_sticky_prefix_cache_hit_rate"], figures["routing_round_robin_prefix_cache_hit_rate"]
    assert 0.0 < rr <= 1.0 and 0.0 < sticky <= 1.0
    assert sticky >= rr  # a multi-turn episode finds its earlier turns on its own server
    for policy in routing.POLICIES:
        assert figures[f"routing_{policy}_tokens_per_s"] > 0
        assert all(t > 0 for t in figures[f"routing_{policy}_tokens"])
        per_server = figures[f"routing_{policy}_per_server_tokens"]
        assert len(per_server) == 2 and all(t > 0 for t in per_server)  # both servers served the run
    assert figures["routing_throughput_ratio"] > 0
    assert all(k.startswith("routing_") for k in figures)
