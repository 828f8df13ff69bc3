"""P4: per-turn cost of extending an episode by one turn, the bridge vs a full re-render + encode.

Each turn is a tool call plus a ~50-token tool result. For a conversation of N turns, measured side by
side in one process pinned to one core, on the real SmolLM2 tokenizer and the chatml-tools template:
  full:   tokenizer.apply_chat_template(all messages, tools, tokenize=True)   (what re-tokenizing loops do)
  bridge: renderer.bridge(history, [tool result], tools)                      (what agentroll does)
"""

from __future__ import annotations

from typing import Any

from agentroll.bench.common import median_ms, run_pinned
from agentroll.errors import AgentrollError
from agentroll.renderers import get_renderer
from agentroll.types import Message, ToolCall, ToolSpec

TURNS = (1, 2, 4, 8, 16, 32, 64)
HEADLINE = 32  # turns: the reference point docs/benchmarks.md compares at
TOOL = ToolSpec(
    name="search",
    description="Search the corpus.",
    input_schema={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
RESULT = "Doc 17: The Eiffel Tower was completed in 1889 for the World's Fair in Paris, France. " * 2


def measure(*, quick: bool = False) -> dict[str, Any]:
    return run_pinned("p4", quick=quick)


def conversation(turns: int) -> list[Message]:
    """System + question, then `turns` x (a search call, its ~50-token result)."""
    messages = [Message(role="system", content="Answer with the search tool."), Message(role="user", content="Q?")]
    for i in range(turns):
        call = ToolCall(id=f"call_{i}", name="search", arguments={"query": f"eiffel tower fact {i}"})
        messages.append(Message(role="assistant", content=None, tool_calls=(call,)))
        messages.append(Message(role="tool", content=f"[{i}] {RESULT}", tool_call_id=call.id, name="search"))
    return messages


def rows(renderer_name: str = "smollm2", repeats: int = 30, turns: tuple[int, ...] = TURNS) -> list[dict[str, Any]]:
    """Per conversation length: full re-render + encode ms, bridge ms, speedup (medians of `repeats`)."""
    r = get_renderer(renderer_name)
    hf, tools = r.tokenizer.hf, [TOOL]
    openai_tools = [t.to_openai() for t in tools]
    out = []
    for n in turns:
        messages = conversation(n)
        history, new = messages[:-1], messages[-1:]
        dicts = [m.to_hf() for m in messages]

        def full(dicts=dicts):
            return hf.apply_chat_template(
                dicts, tools=openai_tools, chat_template=r.chat_template, add_generation_prompt=True, tokenize=True
            )

        def bridge(history=history, new=new):
            return r.bridge(history, new, tools)

        if bridge().new_segment:
            raise AgentrollError(f"p4: {renderer_name} cannot bridge this conversation")
        full_ms, bridge_ms = median_ms(full, repeats), median_ms(bridge, repeats)
        out.append({"turns": n, "full_ms": full_ms, "bridge_ms": bridge_ms, "speedup": full_ms / bridge_ms})
    return out


def measure_here(*, quick: bool = False) -> dict[str, Any]:
    repeats = 10 if quick else 50
    table = rows(repeats=repeats)
    by_turns = {row["turns"]: row for row in table}
    return {
        "p4_bridge_speedup": round(by_turns[HEADLINE]["speedup"], 1),
        **{f"p4_speedup_at_{n}": round(by_turns[n]["speedup"], 1) for n in (1, 64)},
        **{f"p4_full_ms_at_{n}": round(by_turns[n]["full_ms"], 3) for n in (1, 32, 64)},
        **{f"p4_bridge_ms_at_{n}": round(by_turns[n]["bridge_ms"], 3) for n in (1, 32, 64)},
        "p4_bridge_growth_64_over_1": round(by_turns[64]["bridge_ms"] / by_turns[1]["bridge_ms"], 3),
        "p4_rows": [{k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()} for row in table],
        "p4_notes": (
            "per-turn cost of one tool call + ~50-token result: full = transformers apply_chat_template(all "
            "messages, tools, tokenize=True), bridge = renderer.bridge(history, [result]); smollm2 tokenizer + "
            f"chatml-tools template, median of {repeats} calls each, one process pinned to one core; "
            f"p4_bridge_speedup is at {HEADLINE} turns."
        ),
    }
