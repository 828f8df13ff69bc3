"""Shared test data: a weather tool and a one-shot example the 135M model follows."""

from __future__ import annotations

import json
import uuid

MODEL = "smollm2"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def call_message(city: str, call_id: str = "call_0") -> dict:
    function = {"name": "get_weather", "arguments": json.dumps({"city": city})}
    call = {"id": call_id, "type": "function", "function": function}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


# SmolLM2-135M fills a forced call's arguments reliably after one worked example.
FEW_SHOT = [
    {"role": "user", "content": "Weather in Rome?"},
    call_message("Rome", "call_rome"),
    {"role": "tool", "tool_call_id": "call_rome", "content": "Rome: rain"},
    {"role": "assistant", "content": "It rains in Rome."},
]


def ask(city: str) -> list[dict]:
    return [*FEW_SHOT, {"role": "user", "content": f"Weather in {city}?"}]


def new_session_id(name: str) -> str:
    """Unique per run, so a reused server (AGENTROLL_TEST_SERVE_URL) never mixes runs' sessions."""
    return f"{name}-{uuid.uuid4().hex[:8]}"
