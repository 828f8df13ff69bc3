"""P3/P4: per-turn cost of extending an episode by one turn, bridge vs full re-render + encode.

Each turn is a tool call plus a ~50-token tool result. For a conversation of N turns, measure
  full:   tokenizer.apply_chat_template(all messages, tools, tokenize=True)   (what re-tokenizing loops do)
  bridge: renderer.bridge(history, [tool result], tools)                      (what agentroll does)
Both on the real SmolLM2 tokenizer and the chatml-tools template, measured side by side in one run.

    python bench/bridge_vs_rerender.py [--renderer smollm2] [--repeats 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from agentroll.renderers import get_renderer
from agentroll.types import Message, ToolCall, ToolSpec

TURNS = (1, 2, 4, 8, 16, 32, 64)
TOOL = ToolSpec(
    name="search",
    description="Search the corpus.",
    input_schema={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
RESULT = "Doc 17: The Eiffel Tower was completed in 1889 for the World's Fair in Paris, France. " * 2


def conversation(turns: int) -> list[Message]:
    messages = [Message(role="system", content="Answer with the search tool."), Message(role="user", content="Q?")]
    for i in range(turns):
        call = ToolCall(id=f"call_{i}", name="search", arguments={"query": f"eiffel tower fact {i}"})
        messages.append(Message(role="assistant", content=None, tool_calls=(call,)))
        messages.append(Message(role="tool", content=f"[{i}] {RESULT}", tool_call_id=call.id, name="search"))
    return messages


def best_ms(fn, repeats: int) -> float:
    """Median of `repeats` timings, in ms (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def measure(renderer_name: str, repeats: int) -> dict:
    r = get_renderer(renderer_name)
    hf, tools = r.tokenizer.hf, [TOOL]
    openai_tools = [t.to_openai() for t in tools]
    rows = []
    for n in TURNS:
        messages = conversation(n)
        history, new = messages[:-1], messages[-1:]
        dicts = [m.to_hf() for m in messages]

        def full(dicts=dicts):
            return hf.apply_chat_template(
                dicts, tools=openai_tools, chat_template=r.chat_template, add_generation_prompt=True, tokenize=True
            )

        def bridge(history=history, new=new):
            return r.bridge(history, new, tools)

        assert not bridge().new_segment
        full_ms, bridge_ms = best_ms(full, repeats), best_ms(bridge, repeats)
        rows.append({"turns": n, "full_ms": full_ms, "bridge_ms": bridge_ms, "speedup": full_ms / bridge_ms})
    by_turn = {row["turns"]: row for row in rows}
    return {
        "renderer": renderer_name,
        "rows": rows,
        "p4_bridge_speedup_at_32": by_turn[32]["speedup"],
        "p3_bridge_cost_growth_64_over_1": by_turn[64]["bridge_ms"] / by_turn[1]["bridge_ms"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renderer", default="smollm2")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = measure(args.renderer, args.repeats)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"renderer {result['renderer']}: per-turn cost, median of {args.repeats}")
    print(f"{'turns':>6} {'full re-render ms':>18} {'bridge ms':>10} {'speedup':>8}")
    for row in result["rows"]:
        print(f"{row['turns']:>6} {row['full_ms']:>18.3f} {row['bridge_ms']:>10.3f} {row['speedup']:>7.1f}x")
    print(f"P4 bridge speedup at 32 turns: {result['p4_bridge_speedup_at_32']:.1f}x (target >= 20x)")
    print(f"P3 bridge cost turn 64 / turn 1: {result['p3_bridge_cost_growth_64_over_1']:.2f} (target <= 1.1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
