"""The `openai-agents` SDK runs a small tool-using agent against a session; every token is captured.

The tool returns a stamp the prompt never shows, so the stamp can reach the trajectory only
through a real tool call: the model's forced call (mask 1), the SDK running the tool, and the
server bridging the result (mask 0).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from agentroll.renderers import get_renderer

from .helpers import MODEL, call_message, new_session_id

pytestmark = pytest.mark.slow
STAMP = "STAMP-9052"


def test_an_agents_sdk_tool_loop_is_captured_token_exactly(live_url):
    agents = pytest.importorskip("agents")
    from openai import AsyncOpenAI

    agents.set_tracing_disabled(True)  # tracing would export to api.openai.com
    ran: list[str] = []
    sid = new_session_id("agent")

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        ran.append(city)
        return f"{city}: {STAMP} sun"

    async def scenario():
        client = AsyncOpenAI(base_url=f"{live_url}/sessions/{sid}/v1", api_key="none", max_retries=0, timeout=300)
        agent = agents.Agent(
            name="weather",
            instructions="Answer weather questions with the get_weather tool.",
            tools=[get_weather],
            model=agents.OpenAIChatCompletionsModel(model=MODEL, openai_client=client),
            model_settings=agents.ModelSettings(tool_choice="get_weather", max_tokens=20, temperature=0),
        )  # reset_tool_choice (default): after the tool ran, the model answers freely
        try:
            return await agents.Runner.run(agent, _few_shot("Paris"), max_turns=3)
        except agents.MaxTurnsExceeded:
            return None  # a 135M model may call again; the capture is what this test checks
        finally:
            await client.close()

    asyncio.run(scenario())
    assert ran == ["Paris"]
    t = httpx.get(f"{live_url}/sessions/{sid}/trajectory", timeout=60).json()
    assert len(t["segments"]) == 1 and t["metadata"]["drift"] == []
    assert len(t["turns"]) >= 2
    call = t["turns"][0]["tool_calls"][0]
    assert call["status"] == "ok" and call["call"]["arguments"] == {"city": "Paris"}
    seg = t["segments"][0]
    sampled = [tok for tok, m in zip(seg["token_ids"], seg["loss_mask"], strict=True) if m == 1]
    assert sampled == [tok for turn in t["turns"] for tok in turn["sampled_ids"]]
    rendered = [tok for tok, m in zip(seg["token_ids"], seg["loss_mask"], strict=True) if m == 0]
    assert STAMP in get_renderer("smollm2").tokenizer.decode(rendered)
    assert httpx.post(f"{live_url}/sessions/{sid}/verify", timeout=120).json()["ok"]  # teacher-forced logprobs match


def _few_shot(city: str) -> list[dict]:
    """One worked example as Responses-API input items (what the agents SDK takes)."""
    example = call_message("Rome", "call_rome")["tool_calls"][0]
    return [
        {"role": "user", "content": "Weather in Rome?"},
        {"type": "function_call", "call_id": example["id"], "name": "get_weather",
         "arguments": json.dumps({"city": "Rome"})},
        {"type": "function_call_output", "call_id": example["id"], "output": "Rome: rain"},
        {"role": "assistant", "content": "It rains in Rome."},
        {"role": "user", "content": f"Weather in {city}?"},
    ]  # fmt: skip
