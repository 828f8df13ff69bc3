"""The view model and page from run directories built with the real SmolLM2 renderer and calculator tool.

No engine here (fast): the model's turn is the tokenizer's encoding of a call, so every ID is one the real
renderer, parser, bridge and tool produced or consumed. The same bookkeeping helpers as the episode loop
(agent.records) set the masks and turn records. The run on the real engine is in test_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest

from agentroll.agent.records import FORCED, append_tokens, turn_record
from agentroll.renderers import get_renderer
from agentroll.rollout.store import MANIFEST, RunStore, write_json
from agentroll.tools import Toolset, make_builtin
from agentroll.trajectory import Completion, Segment, Trajectory
from agentroll.types import Message
from agentroll.view.data import load_run
from agentroll.view.page import render_page, write_report

RENDERER = get_renderer("smollm2")
TOOLSET = Toolset([make_builtin("calculator")])


def build_episode(eid: str, expressions: list[str], answer: str = "The answer is 42.") -> Trajectory:
    """One tool-calling episode: each turn a forced calculator call, then a plain answer (stop 'done')."""
    tools = TOOLSET.specs()
    messages = [Message(role="system", content="Use the calculator."), Message(role="user", content=f"Task {eid}?")]
    traj = Trajectory(id=eid, task_id=eid.split(":")[0], messages=list(messages), metadata={"renderer": "smollm2"})
    seg, check = Segment(), []
    traj.segments.append(seg)
    append_tokens(seg, check, RENDERER.render(messages, tools), 0)
    for n, expr in enumerate([*expressions, None]):
        forced = RENDERER.forced_call_prefix(tools, "calculator") if expr else []
        text = f' {{"expression": "{expr}"}}}}\n</tool_call><|im_end|>' if expr else f"{answer}<|im_end|>"
        sampled = RENDERER.tokenizer.encode(text)
        started = time.monotonic()
        completion = Completion(sampled, logprobs=[-0.01 * (n + 1) * (k + 1) for k in range(len(sampled))])
        append_tokens(seg, check, forced, FORCED)
        append_tokens(seg, check, sampled, 1, completion.logprobs)
        parsed = RENDERER.parse([*forced, *sampled], tools)
        turn = turn_record(
            completion, parsed, index=n, segment=0, context_len=len(seg), forced=len(forced), started=started
        )
        traj.turns.append(turn)
        traj.messages.append(parsed.message)
        if not parsed.tool_calls:
            break
        results = asyncio.run(TOOLSET.call_many([c.call for c in parsed.tool_calls]))
        traj.tool_results.extend(results)
        new = [Message(role="tool", tool_call_id=r.tool_call_id, name=r.name, content=r.content) for r in results]
        bridge = RENDERER.bridge(traj.messages, new, tools, stopped=parsed.stopped)
        traj.messages.extend(new)
        append_tokens(seg, check, bridge.token_ids, 0)
        turn.bridge_len = len(bridge.token_ids)
    traj.stop_reason, traj.reward, traj.rewards = "done", 1.0, {"exact_match": 1.0}
    return traj


def strip_ids(model: dict, strip: dict) -> list[int]:
    """A strip's token IDs with its shared prompt prefix put back (as the page does)."""
    prefix = model["prefixes"][strip["prefix"][0]][: strip["prefix"][1]] if strip["prefix"] else []
    return prefix + strip["ids"]


def strip_mask(strip: dict) -> str:
    """The mask runs ("0:5,1:3") as one character per token."""
    return "".join(m * int(n) for m, n in (run.split(":") for run in strip["mask"].split(",")))


def write_run(run_dir: Path, trajs: list[Trajectory], renderer: str = "smollm2") -> Path:
    run_dir.mkdir(parents=True)
    write_json(run_dir / MANIFEST, {"config": {"renderer": renderer, "engine": "embedded"}, "started_at": "now"})
    store = RunStore(run_dir)
    for t in trajs:
        store.append(t)
    store.close()
    return run_dir


@pytest.fixture(scope="module")
def trajs() -> list[Trajectory]:
    return [build_episode("0:0", ["6 * 7", "42 / 2"]), build_episode("1:0", []), build_episode("2:0", ["2 ** 10"])]


def test_strip_marks_forced_opener_sampled_and_rendered_tokens_apart(trajs: list[Trajectory], tmp_path: Path) -> None:
    model = load_run(write_run(tmp_path / "run", trajs))
    t, strip = trajs[0], model["details"][0]["segments"][0]
    mask = strip_mask(strip)
    forced = len(RENDERER.forced_call_prefix(TOOLSET.specs(), "calculator"))
    assert strip_ids(model, strip) == t.segments[0].token_ids and len(mask) == len(t.segments[0])
    for turn, shown in zip(t.turns, model["details"][0]["turns"], strict=True):
        start = turn.prompt_len - shown["forced"]
        assert mask[start : turn.prompt_len] == "2" * shown["forced"]
        assert mask[turn.prompt_len : turn.prompt_len + len(turn.sampled_ids)] == "1" * len(turn.sampled_ids)
    assert mask.count("2") == 2 * forced  # two forced calls, the final answer is free
    assert mask.count("1") == sum(t.segments[0].loss_mask)
    # sampled logprobs, in order, and nothing for the rest
    assert strip["lp"] == [round(lp, 4) for lp in t.segments[0].logprobs if lp is not None]


def test_tool_results_sit_on_the_turn_that_called_them(trajs: list[Trajectory], tmp_path: Path) -> None:
    model = load_run(write_run(tmp_path / "run", trajs))
    turns = model["details"][0]["turns"]
    assert [[r["content"] for r in t["results"]] for t in turns] == [["42"], ["21.0"], []]  # both calls are call_0
    assert turns[0]["calls"][0]["name"] == "calculator" and turns[0]["results"][0]["metadata"] == {"value": 42}
    row = model["episodes"][0]
    assert (row["turns"], row["tool_calls"], row["tool_errors"], row["stop"]) == (3, 2, 0, "done")
    assert row["tokens"] == len(trajs[0].segments[0]) and row["sampled"] == sum(trajs[0].segments[0].loss_mask)


def test_shared_prompt_is_stored_once(trajs: list[Trajectory], tmp_path: Path) -> None:
    model = load_run(write_run(tmp_path / "run", trajs))
    strips = [d["segments"][0] for d in model["details"]]
    assert len(model["prefixes"]) == 1 and all(s["prefix"][0] == 0 for s in strips)
    first = trajs[0].segments[0].token_ids
    assert model["prefixes"][0] == first[: model["details"][0]["turns"][0]["start"]]  # its prompt, up to turn 1
    for s, t in zip(strips[1:], trajs[1:], strict=True):  # the others reuse what they share with it (system + tools)
        ids = t.segments[0].token_ids
        assert s["prefix"][1] == next(i for i, (a, b) in enumerate(zip(first, ids, strict=False)) if a != b) > 100
    assert all(strip_ids(model, s) == t.segments[0].token_ids for s, t in zip(strips, trajs, strict=True))


def test_token_text_comes_from_the_run_renderer(trajs: list[Trajectory], tmp_path: Path) -> None:
    model = load_run(write_run(tmp_path / "run", trajs))
    ids = {i for t in trajs for i in t.segments[0].token_ids}
    assert set(model["vocab"]) == {str(i) for i in ids}
    assert all(model["vocab"][str(i)] == RENDERER.tokenizer.decode([i]) for i in ids)
    assert "<|im_start|>" in model["vocab"].values() and model["run"]["decode_note"] == ""


def test_unknown_renderer_falls_back_to_token_ids(trajs: list[Trajectory], tmp_path: Path) -> None:
    for t in trajs:
        t.metadata["renderer"] = "no-such-renderer"
    model = load_run(write_run(tmp_path / "run", trajs, renderer="no-such-renderer"))
    assert model["vocab"] == {} and "no-such-renderer" in model["run"]["decode_note"]
    assert strip_ids(model, model["details"][0]["segments"][0]) == trajs[0].segments[0].token_ids


def test_summary_is_counted_from_disk_when_summary_json_is_missing(trajs: list[Trajectory], tmp_path: Path) -> None:
    model = load_run(write_run(tmp_path / "run", trajs))
    assert model["summary"]["episodes"] == 3 and model["summary"]["tool_calls"] == 3
    assert model["summary"]["stop_reasons"] == {"done": 3}


def test_model_text_cannot_break_out_of_the_embedded_json(tmp_path: Path) -> None:
    evil = "</script><script>window.pwned=1</script><!--"
    traj = build_episode("0:0", [], answer=evil)
    traj.metadata["note"] = evil
    page = render_page(load_run(write_run(tmp_path / "run", [traj])))
    assert evil not in page and page.count("</script>") == page.count("<script")
    tags = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page, flags=re.S)
    assert [name for name, _ in tags] == ["run-data", "ep-0"]
    assert json.loads(tags[1][1])["metadata"]["note"] == evil  # same text once parsed


def test_report_is_self_contained(trajs: list[Trajectory], tmp_path: Path) -> None:
    out, model = write_report(write_run(tmp_path / "run", trajs))
    page = out.read_text(encoding="utf-8")
    assert out == tmp_path / "run" / "report.html" and len(model["episodes"]) == 3
    # nothing the browser would fetch: no external scripts, styles, fonts, images or fetch/XHR calls
    assert not re.search(r"""<(script|link|img|iframe)[^>]*\s(src|href)=|@import|url\(|fetch\(|XMLHttpRequest""", page)
    assert page.count('<script type="application/json"') == 1 + len(trajs)
