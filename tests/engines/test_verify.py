"""The teacher-forced delta: what counts as agreement and what must never pass."""

from __future__ import annotations

import math

from agentroll.engines.verify import TOLERANCE, LogprobCheck, max_logprob_delta


def test_delta_is_the_largest_absolute_gap() -> None:
    assert max_logprob_delta([-1.0, -2.0, -0.5], [-1.0002, -2.0, -0.4]) == abs(-0.5 - -0.4)
    assert max_logprob_delta([], []) == 0.0


def test_matching_infinities_agree_and_a_lone_infinity_fails() -> None:
    assert max_logprob_delta([-math.inf, -1.0], [-math.inf, -1.0]) == 0.0
    assert max_logprob_delta([-math.inf], [-3.0]) == math.inf


def test_a_length_mismatch_never_passes() -> None:
    assert max_logprob_delta([-1.0], [-1.0, -2.0]) == math.inf
    assert not LogprobCheck(max_logprob_delta([-1.0], []), [-1.0], []).ok


def test_tolerance_is_one_thousandth() -> None:
    assert LogprobCheck(TOLERANCE, [], []).ok and not LogprobCheck(TOLERANCE * 1.01, [], []).ok
