"""P1 quick variant on a real vLLM CPU server: every figure comes from the server's own counters.

Asserts how the figures are made (tokens the server counted, both phases, positive ratios, rates in
[0, 1]), never the target: the ratio on a shared 2-core machine is what it is.
"""

from __future__ import annotations

import math
import statistics

import pytest

from agentroll.bench import p1
from tests.conftest import needs_vllm

pytestmark = [pytest.mark.slow, needs_vllm]


@pytest.fixture(scope="module")
def figures() -> dict:
    return p1.measure(quick=True)


def test_p1_ratio_is_the_median_of_rollout_over_replay_tokens_per_s(figures: dict) -> None:
    tps = zip(figures["p1_rollout_tokens_per_s"], figures["p1_replay_tokens_per_s"], strict=True)
    ratios = [rollout / replay for rollout, replay in tps]
    assert len(ratios) >= 2  # alternated at least twice
    assert all(r > 0 for r in ratios)
    assert math.isclose(figures["p1_loop_efficiency"], statistics.median(ratios), rel_tol=0.01)
    assert figures["p1_warmup_ratio"] > 0  # the warm-up round ran and is reported, outside the median


def test_p1_replays_exactly_the_tokens_the_rollout_sampled(figures: dict) -> None:
    rollout, replay = figures["p1_rollout_tokens"], figures["p1_replay_tokens"]
    assert all(t > 0 for t in rollout)
    # The server's own count of the replay equals what the rollout's requests produced (ignore_eos, exact lengths).
    assert replay == figures["p1_client_counted_tokens"]
    assert rollout == figures["p1_client_counted_tokens"]


def test_p1_reports_multi_turn_episodes_and_cache_rates(figures: dict) -> None:
    assert figures["p1_episodes"] == 8
    assert all(n > figures["p1_episodes"] for n in figures["p1_requests"])  # some episodes went past turn 1
    for key in ("p1_rollout_prefix_cache_hit_rate", "p1_replay_prefix_cache_hit_rate"):
        assert all(0.0 < r <= 1.0 for r in figures[key]), key  # the shared system prompt is cached
    assert 0.0 <= figures["p1_profile_client_delay_share"] <= 1.0
    assert figures["p1_profile_rollout_mean_in_flight"] > 0
    assert figures["p1_chained_replay_tokens_per_s"] > 0
    assert "p1_notes" in figures and "concurrency 8" in figures["p1_notes"]
    assert all(k.startswith("p1_") for k in figures)
