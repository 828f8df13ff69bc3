"""`agentroll view` on a real run (embedded vLLM, forced calculator calls), opened in headless Debian chromium.

The page must render without a console error or uncaught exception, list every episode, show the selected
episode's exact tokens with their loss-mask classes, filter by stop reason, and produce a screenshot (a copy
is kept at docs/images/viewer.png for the README).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentroll.cli.main import main
from agentroll.rollout.store import read_records
from agentroll.trajectory import Trajectory
from tests.view.browser import CHROMIUM, Page

pytestmark = pytest.mark.slow
DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "images" / "viewer.png"
ROWS = "#episodes tbody tr"


def trajectories(run_dir: Path) -> list[Trajectory]:
    return [Trajectory.from_dict(r) for r in read_records(run_dir / "trajectories.jsonl")]


def expected_mask(t: Trajectory) -> str:
    """Loss mask per token as the page should colour it: 1 sampled, 0 rendered, 2 the forced call opener."""
    out = []
    for n, seg in enumerate(t.segments):
        mask = [str(m) for m in seg.loss_mask]
        for turn in t.turns:
            forced = turn.meta.get("forced_prefix_len", 0)
            if turn.segment == n and forced:
                mask[turn.prompt_len - forced : turn.prompt_len] = ["2"] * forced
        out += mask
    return "".join(out)


@pytest.fixture(scope="module")
def report(run_dir: Path) -> Path:
    assert main(["view", str(run_dir)]) == 0
    return run_dir / "report.html"


@pytest.fixture(scope="module")
def page(report: Path, loop: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium missing: run scripts/install_chromium.sh (Debian package chromium)")
    p = loop.run(Page.open(CHROMIUM, tmp_path_factory.mktemp("chromium")))
    try:
        loop.run(p.goto(report.as_uri()))
        yield p
    finally:
        loop.run(p.close())


def test_cli_writes_the_report_and_says_where_and_how_big(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = run_dir / "elsewhere.html"
    assert main(["view", str(run_dir), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (8 episodes, " in printed and printed.rstrip().endswith("MB)")
    assert 10_000 < out.stat().st_size < 2_000_000


def test_the_run_has_real_tool_calls_to_show(run_dir: Path) -> None:
    trajs = trajectories(run_dir)
    assert len(trajs) == 8
    results = [r for t in trajs for r in t.tool_results if not r.is_error]
    assert results, "no calculator call ran: the viewer test would not show tool results"


def test_page_renders_without_console_errors(page: Page, loop: Any) -> None:
    assert loop.run(page.eval("document.querySelectorAll('.chart svg').length")) == 6
    assert page.errors == []


def test_every_episode_is_a_row(page: Page, loop: Any, run_dir: Path) -> None:
    ids = loop.run(page.eval(f"[...document.querySelectorAll('{ROWS}')].map(tr => tr.cells[0].textContent)"))
    assert sorted(ids) == sorted(t.id for t in trajectories(run_dir))


def test_selected_episode_shows_its_exact_tokens_masks_and_tool_results(page: Page, loop: Any, run_dir: Path) -> None:
    trajs = trajectories(run_dir)
    t = max(trajs, key=lambda t: (len(t.tool_results), t.id))  # one with tool results
    loop.run(page.click(f"{ROWS}[data-i='{trajs.index(t)}']"))
    assert loop.run(page.eval("document.getElementById('detail').dataset.episode")) == t.id
    classes = loop.run(page.eval("[...document.querySelectorAll('#strip .tok')].map(s => s.classList[1]).join('')"))
    assert classes.replace("m", "") == expected_mask(t)  # one element per token, in order, mask by mask
    shown_ids = loop.run(page.eval("[...document.querySelectorAll('#strip .tok')].map(s => +s.dataset.id)"))
    assert shown_ids == [i for seg in t.segments for i in seg.token_ids]
    assert loop.run(page.eval("document.querySelectorAll('#strip .turn-mark').length")) == len(t.turns)
    turn_text = loop.run(page.eval("[...document.querySelectorAll('.turn')].map(e => e.textContent)"))
    for r in t.tool_results:
        assert any(r.content in text for text in turn_text)
    # hovering a sampled token names its id, text and logprob
    loop.run(page.hover("#strip .tok.m1"))
    info = loop.run(page.eval("document.getElementById('hover-info').textContent"))
    first = next(j for j, m in enumerate(t.segments[0].loss_mask) if m)
    assert info.startswith(f"id {t.segments[0].token_ids[first]} ") and " · sampled · " in info
    shown_logprob = float(re.search(r"logprob (\S+)", info).group(1))
    assert shown_logprob == pytest.approx(t.segments[0].logprobs[first], abs=1e-4)
    assert page.errors == []


def set_filter(page: Page, loop: Any, element_id: str, value: str, event: str) -> list[str]:
    """Set a filter control as a user would (value + its event); returns the episode IDs still listed."""
    loop.run(
        page.eval(
            f"(() => {{ const el = document.getElementById({element_id!r}); el.value = {value!r};"
            f" el.dispatchEvent(new Event({event!r})); }})()"
        )
    )
    return loop.run(page.eval(f"[...document.querySelectorAll('{ROWS}')].map(tr => tr.cells[0].textContent)"))


def test_filters_keep_only_matching_rows(page: Page, loop: Any, run_dir: Path) -> None:
    trajs = trajectories(run_dir)
    stop = trajs[-1].stop_reason
    shown = set_filter(page, loop, "filter-stop", stop, "change")
    assert sorted(shown) == sorted(t.id for t in trajs if t.stop_reason == stop)
    loop.run(page.click("#filter-clear"))
    rewards = sorted({t.reward for t in trajs})
    shown = set_filter(page, loop, "filter-reward-min", str(rewards[-1]), "input")
    assert sorted(shown) == sorted(t.id for t in trajs if t.reward >= rewards[-1])
    loop.run(page.click("#filter-clear"))
    assert loop.run(page.eval(f"document.querySelectorAll('{ROWS}').length")) == len(trajs)


def test_screenshot_is_a_real_picture_of_the_page(page: Page, loop: Any, run_dir: Path, tmp_path: Path) -> None:
    trajs = trajectories(run_dir)
    t = max(trajs, key=lambda t: (len(t.tool_results), t.id))
    loop.run(page.click(f"{ROWS}[data-i='{trajs.index(t)}']"))
    loop.run(page.fit(1440))
    loop.run(page.hover("#strip .tok.m1"))  # after resizing, so the hover line in the picture names a sampled token
    png = loop.run(page.screenshot(tmp_path / "viewer.png"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == 1440 and height > 900
    DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "viewer.png", DOCS_SCREENSHOT)
    assert page.errors == []
