"""Sessions stitch an agent's calls into one token-exact trajectory (mask, logprobs, no drift)."""

from __future__ import annotations

import io
import json
from dataclasses import asdict

import httpx
import openai
import pyarrow.parquet as pq
import pytest

from agentroll.cli.export import load_trajectories
from agentroll.renderers import get_renderer
from agentroll.server.export import save
from agentroll.trajectory import Trajectory
from agentroll.types import Message, ToolSpec

from .helpers import MODEL, NAMED, WEATHER, ask, new_session_id

pytestmark = pytest.mark.slow
STAMP = "STAMP-4417"  # only the tool result carries it: it can reach the trajectory only through the bridge


def session(live_url: str, sid: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/sessions/{sid}/v1", api_key="none", max_retries=0, timeout=300)


def trajectory(live_url: str, sid: str) -> dict:
    r = httpx.get(f"{live_url}/sessions/{sid}/trajectory", timeout=60)
    r.raise_for_status()
    return r.json()


def test_a_tool_loop_is_one_segment_with_the_engine_tokens_and_no_drift(live_url):
    sid = new_session_id("weather")
    sdk = session(live_url, sid)
    ids = {"return_token_ids": True}
    messages = ask("Paris")
    first = sdk.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], tool_choice=NAMED, max_tokens=20, temperature=0,
        logprobs=True, extra_body=ids,
    )  # fmt: skip
    answer = first.choices[0].message  # sent back as the client got it, as agent frameworks do
    assert json.loads(answer.tool_calls[0].function.arguments) == {"city": "Paris"}
    tool_result = {"role": "tool", "tool_call_id": answer.tool_calls[0].id, "content": f"Paris: {STAMP} sun"}
    messages += [answer.model_dump(exclude_none=True), tool_result]
    second = sdk.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], max_tokens=12, temperature=0, logprobs=True, extra_body=ids
    )
    t = trajectory(live_url, sid)
    assert [s["reason"] for s in t["segments"]] == ["initial"]
    assert t["metadata"]["drift"] == [] and len(t["turns"]) == 2
    seg = t["segments"][0]
    tokens, mask, logprobs = seg["token_ids"], seg["loss_mask"], seg["logprobs"]
    c1, c2 = first.choices[0], second.choices[0]
    # The second call's prompt is the first call's exact tokens plus a bridge: nothing re-tokenized.
    p1, p2 = c1.model_extra["prompt_token_ids"], c2.model_extra["prompt_token_ids"]
    ids1, ids2 = c1.model_extra["token_ids"], c2.model_extra["token_ids"]
    assert p2[: len(p1) + len(ids1)] == [*p1, *ids1]
    assert tokens == [*p2, *ids2]
    # Exactly the engine's sampled tokens are trained, each with the logprob the client was given.
    assert [tok for tok, m in zip(tokens, mask, strict=True) if m == 1] == [*ids1, *ids2]
    given = [e.logprob for e in (*c1.logprobs.content, *c2.logprobs.content)]
    assert [lp for lp, m in zip(logprobs, mask, strict=True) if m == 1] == pytest.approx(given)
    assert all(lp is None for lp, m in zip(logprobs, mask, strict=True) if m == 0)
    renderer = get_renderer("smollm2")
    assert STAMP in renderer.tokenizer.decode([tok for tok, m in zip(tokens, mask, strict=True) if m == 0])
    # The client-side prefix check agrees with the server's: the canonical render extends these tokens.
    forced = t["turns"][0]["meta"]["forced_prefix_len"]
    check_mask = list(mask)
    start = len(p1) - forced
    check_mask[start : len(p1)] = [2] * forced
    history = [Message.model_validate(m) for m in t["messages"]]
    assert renderer.check_prefix(history, [ToolSpec.from_openai(WEATHER)], tokens, check_mask) is None
    # A trainer's recomputation (one teacher-forced pass over the segment) gives the sampled logprobs.
    report = httpx.post(f"{live_url}/sessions/{sid}/verify", timeout=120).json()
    # The named call was guided (the server's default): its tokens are of the constrained distribution, counted
    # apart; every other sampled token is checked against the engine's own teacher-forced logprobs.
    assert t["turns"][0]["constrained"] == "tool_call" and t["turns"][1]["constrained"] is None
    assert report["ok"] and report["tokens_checked"] == len(ids2) and report["constrained_tokens"] == len(ids1), report


def test_an_edited_history_starts_a_new_segment_that_says_why(live_url):
    sid = new_session_id("edited")
    sdk = session(live_url, sid)
    hello = [{"role": "user", "content": "Say hi."}]
    answer = sdk.chat.completions.create(model=MODEL, messages=hello, max_tokens=4, temperature=0)
    reply = {"role": "assistant", "content": answer.choices[0].message.content}
    sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say bye."}, reply, *hello], max_tokens=4, temperature=0
    )
    t = trajectory(live_url, sid)
    why = "messages[0] differs from the previous call's conversation"
    assert [s["reason"] for s in t["segments"]] == ["initial", why]
    assert [turn["segment"] for turn in t["turns"]] == [0, 1]


def test_rewards_are_recorded_and_sessions_export_in_the_runner_formats(live_url, tmp_path):
    sid = new_session_id("reward")
    sdk = session(live_url, sid)
    sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "2+2?"}], max_tokens=4)
    body = {"reward": 0.5, "rewards": {"format": 1.0}, "task_id": "task-7"}
    r = httpx.post(f"{live_url}/sessions/{sid}/reward", json=body)
    assert r.status_code == 200
    t = trajectory(live_url, sid)
    assert (t["reward"], t["rewards"]) == (0.5, {"format": 1.0})
    lines = httpx.get(f"{live_url}/sessions/export", timeout=60).text.splitlines()
    exported = {traj.id: traj for traj in (Trajectory.from_dict(json.loads(line)) for line in lines)}
    assert exported[sid].reward == 0.5 and exported[sid].task_id == "task-7"
    assert [asdict(seg) for seg in exported[sid].segments] == t["segments"]
    # verl's shape, as the runner exports it: one row per segment, the sampled tokens in the response mask.
    table = pq.read_table(io.BytesIO(httpx.get(f"{live_url}/sessions/export?format=verl", timeout=60).content))
    row = next(r for r in table.to_pylist() if r["id"] == sid)
    assert row["uid"] == "task-7" and sum(row["response_mask"]) == len(t["turns"][0]["sampled_ids"])
    # --save-dir writes the runner's trajectories.jsonl; `agentroll export RUN_DIR` reads it back.
    run_dir = tmp_path / "run"
    save(list(exported.values()), str(run_dir))
    assert [x.to_dict() for x in load_trajectories(run_dir)] == [x.to_dict() for x in exported.values()]
    listed = httpx.get(f"{live_url}/sessions").json()["data"]
    assert {"id": sid, "turns": 1, "segments": 1, "reward": 0.5} in listed
    assert httpx.delete(f"{live_url}/sessions/{sid}").json()["segments"] == t["segments"]
    assert httpx.get(f"{live_url}/sessions/{sid}/trajectory").status_code == 404


def test_a_session_header_captures_calls_made_on_the_plain_base_url(live_url):
    sid = new_session_id("header")
    sdk = openai.OpenAI(base_url=f"{live_url}/v1", api_key="none", max_retries=0, default_headers={
        "X-Agentroll-Session": sid})  # fmt: skip
    r = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=3,
                                    extra_body={"return_token_ids": True})  # fmt: skip
    t = trajectory(live_url, sid)
    assert t["turns"][0]["sampled_ids"] == r.choices[0].model_extra["token_ids"]
