"""Where a rollout's tokens/s goes, from the recorded requests: the loop's own delay between a turn's answer
and the episode's next request, how many requests the engine had in flight over the run, the tail with
few in flight, and the HTTP client's overhead against the server's own request latency."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence

from agentroll.bench.p1_vllm import Delta
from agentroll.bench.p1_workload import Phase, Request


def client_delays(requests: Sequence[Request]) -> list[float]:
    """Seconds from each answer to the same episode's next request (parse, tools, bridge, scheduling)."""
    by_session: dict[str, list[Request]] = {}
    for r in requests:
        by_session.setdefault(r.session, []).append(r)
    delays: list[float] = []
    for turns in by_session.values():
        turns.sort(key=lambda r: r.seq)
        delays += [b.sent - a.done for a, b in itertools.pairwise(turns)]
    return delays


def mean_in_flight(phase: Phase) -> float:
    """Time-averaged requests in flight between the first request and the last answer."""
    span = phase.span_s
    return sum(r.done - r.sent for r in phase.requests if r.done) / span if span > 0 else 0.0


def time_below(phase: Phase, level: int) -> float:
    """Share of the phase's span during which fewer than `level` requests were in flight (the tail)."""
    events = sorted([(r.sent, 1) for r in phase.requests if r.done] + [(r.done, -1) for r in phase.requests if r.done])
    span = phase.span_s
    if span <= 0:
        return 0.0
    below, in_flight, last = 0.0, 0, events[0][0]
    for t, step in events:
        if in_flight < level:
            below += t - last
        in_flight, last = in_flight + step, t
    return below / span


def http_overhead_ms(phase: Phase, server: Delta) -> float:
    """Mean client-side latency minus the server's own mean request latency, in ms."""
    done = [r.done - r.sent for r in phase.requests if r.done and not r.failed]
    if not done or not server.requests:
        return 0.0
    return 1000 * (statistics.fmean(done) - server.latency_s / server.requests)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def profile(rollout: Phase, replay: Phase, rollout_server: Delta, replay_server: Delta, cap: int) -> dict[str, float]:
    """P1 profile figures (prefixed p1_profile_) for one rollout and the replay of its requests."""
    delays = client_delays(rollout.requests)
    return {
        "p1_profile_client_delay_ms_median": round(1000 * percentile(delays, 0.5), 3),
        "p1_profile_client_delay_ms_p90": round(1000 * percentile(delays, 0.9), 3),
        "p1_profile_client_delay_ms_max": round(1000 * max(delays, default=0.0), 3),
        # Episode-turns the engine could have been serving while the loop worked between turns.
        "p1_profile_client_delay_share": round(sum(delays) / (cap * rollout.span_s), 5) if rollout.span_s else 0.0,
        "p1_profile_rollout_mean_in_flight": round(mean_in_flight(rollout), 2),
        "p1_profile_replay_mean_in_flight": round(mean_in_flight(replay), 2),
        "p1_profile_rollout_time_below_half_cap": round(time_below(rollout, max(1, cap // 2)), 4),
        "p1_profile_replay_time_below_half_cap": round(time_below(replay, max(1, cap // 2)), 4),
        "p1_profile_rollout_setup_s": round(rollout.wall_s - rollout.span_s, 4),
        "p1_profile_rollout_client_cpu_s": round(rollout.cpu_s, 3),
        "p1_profile_replay_client_cpu_s": round(replay.cpu_s, 3),
        "p1_profile_rollout_http_overhead_ms": round(http_overhead_ms(rollout, rollout_server), 2),
        "p1_profile_replay_http_overhead_ms": round(http_overhead_ms(replay, replay_server), 2),
    }
