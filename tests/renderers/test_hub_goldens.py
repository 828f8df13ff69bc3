"""The 53 chat-template goldens of huggingface.js render to exactly the expected text.

Data: tests/data/chat_templates/hfjs_jinja_e2e_cases.json (MIT, see tests/data/README.md). Two cases
differ for reasons outside agentroll, and one case leans on a JS-only state; each is asserted as the known
difference rather than skipped:
- Hammer2.1 prints `{{ tools }}`: JavaScript's JSON vs Python's repr of the same list.
- SmolLM3 calls `strftime_now`: the JS test pins the date to 2025-07-10; Python renders today's date.
- AI21-Jamba-1.6 defaults an *undefined* add_generation_prompt to True; the JS case leaves it undefined,
  while transformers always defines it (False by default). Rendered with True, it is exact.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from agentroll.renderers.hf import render_chat_text

DATA = Path(__file__).parent.parent / "data" / "chat_templates" / "hfjs_jinja_e2e_cases.json"
CASES = {
    f"{group}/{name}": case for group, cases in json.loads(DATA.read_text()).items() for name, case in cases.items()
}
KNOWN_DIFFERENT = {"custom_templates/MadeAgents/Hammer2.1", "custom_templates/HuggingFaceTB/SmolLM3-3B"}


def _render(case: dict, undefined_generation_prompt: bool = False) -> str:
    data = dict(case["data"])
    messages, tools = data.pop("messages"), data.pop("tools", None)
    add_generation_prompt = data.pop("add_generation_prompt", undefined_generation_prompt)
    return render_chat_text(case["chat_template"], messages, tools, add_generation_prompt, **data)


def test_there_are_53_goldens():
    assert len(CASES) == 53
    assert set(CASES) >= KNOWN_DIFFERENT


@pytest.mark.parametrize("name", sorted(set(CASES) - KNOWN_DIFFERENT))
def test_hub_template_renders_exactly_the_golden_text(name):
    undefined_is_true = name == "custom_templates/ai21labs/AI21-Jamba-Large-1.6"
    assert _render(CASES[name], undefined_is_true) == CASES[name]["target"]


def test_hammer_differs_only_in_how_tools_are_printed():
    case = CASES["custom_templates/MadeAgents/Hammer2.1"]
    got, want = _render(case), case["target"]
    tools = case["data"]["tools"]
    assert str(tools) in got and json.dumps(tools) in want
    assert got.replace(str(tools), "TOOLS") == want.replace(json.dumps(tools), "TOOLS")


def test_smollm3_differs_only_in_the_date():
    case = CASES["custom_templates/HuggingFaceTB/SmolLM3-3B"]
    today = datetime.datetime.now().strftime("%d %B %Y")
    assert _render(case) == case["target"].replace("10 July 2025", today)
