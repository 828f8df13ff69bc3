"""The page's other branches in headless chromium, on run directories built with the real renderer (fast):
wall-clock throughput when the records carry timestamps, token IDs when the renderer cannot be loaded,
and segment breaks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agentroll.agent.records import turn_record
from agentroll.trajectory import Completion, Segment
from agentroll.view.page import write_report
from tests.view.browser import CHROMIUM, Page
from tests.view.test_data import RENDERER, TOOLSET, build_episode, write_run

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium missing: run scripts/install_chromium.sh"
)


async def open_report(report: Path, profile: Path, script: str) -> tuple[object, list[str]]:
    page = await Page.open(CHROMIUM, profile)
    try:
        await page.goto(report.as_uri())
        return await page.eval(script), page.errors
    finally:
        await page.close()


def test_throughput_is_drawn_over_wall_time_when_turns_carry_timestamps(tmp_path: Path) -> None:
    trajs = [build_episode(f"{n}:0", ["6 * 7"]) for n in range(3)]
    for n, t in enumerate(trajs):
        for k, turn in enumerate(t.turns):
            turn.meta["started_at"], turn.generate_s, turn.tools_s = 1_700_000_000.0 + 2 * n + k, 0.5, 0.0
    report, model = write_report(write_run(tmp_path / "run", trajs))
    assert [e["finished_at"] for e in model["episodes"]] == [1_700_000_001.5, 1_700_000_003.5, 1_700_000_005.5]
    note, errors = asyncio.run(
        open_report(report, tmp_path / "profile", "document.querySelector('#chart-5 .note').textContent")
    )
    assert note == "cumulative sampled tokens over wall time" and errors == []


def test_strip_shows_token_ids_when_the_renderer_cannot_be_loaded(tmp_path: Path) -> None:
    traj = build_episode("0:0", ["6 * 7"])
    report, _ = write_report(write_run(tmp_path / "run", [traj], renderer="no-such-renderer"))
    texts, errors = asyncio.run(
        open_report(
            report, tmp_path / "profile", "[...document.querySelectorAll('#strip .tok')].map(s => s.textContent)"
        )
    )
    assert texts == [f"[{i}]" for i in traj.segments[0].token_ids] and errors == []


def test_a_new_segment_is_shown_as_a_break_with_its_reason(tmp_path: Path) -> None:
    traj = build_episode("0:0", ["6 * 7"])
    # A second segment as the loop starts one: the history rendered again (mask 0), then a sampled turn.
    seg = Segment(reason="template drops reasoning from history")
    seg.extend(RENDERER.render(traj.messages, TOOLSET.specs()), mask=0)
    sampled = RENDERER.tokenizer.encode("Done: 42.<|im_end|>")
    seg.extend(sampled, mask=1, logprobs=[-0.5] * len(sampled))
    traj.segments.append(seg)
    completion = Completion(sampled, logprobs=[-0.5] * len(sampled))
    parsed = RENDERER.parse(sampled, TOOLSET.specs())
    traj.turns.append(
        turn_record(completion, parsed, index=2, segment=1, context_len=len(seg), forced=0, started=time.monotonic())
    )
    report, _ = write_report(write_run(tmp_path / "run", [traj]))
    script = (
        "[document.querySelector('#strip .seg-break').textContent, document.querySelectorAll('#strip .tok').length,"
        " [...document.querySelectorAll('#strip .turn-mark, #strip .seg-break')].map(e => e.textContent)]"
    )
    (label, tokens, marks), errors = asyncio.run(open_report(report, tmp_path / "profile", script))
    assert label == "segment 2 · template drops reasoning from history" and errors == []
    assert tokens == sum(len(s) for s in traj.segments)
    assert marks == ["T1", "T2", label, "T3"]
