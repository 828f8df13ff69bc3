"""Generated model outputs per tool-call format, for the differential suite against vLLM's parsers.

`cases(fmt, n, seed)` yields GenCase(text, tags): one to three calls (random names, nested JSON or Python
arguments with unicode, escapes and quotes), prose around them, and with some probability one change a
model makes in practice, named by its tag: `truncated` (cut at a random point), `bad_json` (a broken
call), `args_string` (arguments as a JSON-encoded string), `unclosed` (the closing marker left off),
`prose_before` / `prose_after` / `prose_between`, `unknown_tool`. Seeded: the same seed, the same cases.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

NAMES = ("get_weather", "search", "calc_v2", "lookup_user", "send_email")
KEYS = ("city", "query", "n", "options", "unit", "path", "text", "ids", "deep", "flag")
WORDS = ("the", "weather", "is", "naïve", "café", "日本語", "🙂", "42", "ok", "Let", "me", "check", "x=1", "\\n")
PROSE = ("Let me check that.", "Sure!", "I'll look it up.", "Voilà — un instant.", "好的，我来查一下。", "Done.")


@dataclass(frozen=True)
class GenCase:
    text: str
    tags: frozenset[str]


def _string(r: random.Random) -> str:
    pick = r.random()
    if pick < 0.5:
        return " ".join(r.choice(WORDS) for _ in range(r.randint(1, 4)))
    if pick < 0.8:
        return "".join(r.choice(string.ascii_letters + string.digits + " _-./") for _ in range(r.randint(0, 12)))
    return r.choice(['say "hi"', "a\\b", "line1\nline2", "{not json}", "[1, 2]", "</tag>", "tab\there", ""])


def _value(r: random.Random, depth: int = 0):
    pick = r.random()
    if depth < 2 and pick < 0.15:
        return {r.choice(KEYS): _value(r, depth + 1) for _ in range(r.randint(0, 3))}
    if depth < 2 and pick < 0.3:
        return [_value(r, depth + 1) for _ in range(r.randint(0, 3))]
    if pick < 0.65:
        return _string(r)
    if pick < 0.8:
        return r.randint(-1000, 10**6)
    if pick < 0.9:
        return round(r.uniform(-100, 100), r.randint(0, 4))
    return r.choice([True, False, None])


def arguments(r: random.Random) -> dict:
    keys = r.sample(KEYS, r.randint(0, 4))
    return {k: _value(r) for k in keys}


def _dumps(r: random.Random, obj) -> str:
    """JSON as models write it: compact or spaced, ASCII-escaped or not."""
    if r.random() < 0.3:
        return json.dumps(obj, ensure_ascii=r.random() < 0.5, separators=(",", ":"))
    return json.dumps(obj, ensure_ascii=r.random() < 0.3)


def _break_json(r: random.Random, text: str) -> str:
    """A call body that is no longer JSON: a dropped closing brace, a trailing comma, a bare word."""
    pick = r.random()
    if pick < 0.4 and text.endswith("}"):
        return text[:-1]
    if pick < 0.7 and text.endswith("}"):
        return text[:-1] + ",}"
    return text.replace(":", " ", 1)


def _json_call(r: random.Random, name: str, args: dict, tags: set[str], key: str = "arguments") -> str:
    if "args_string" in tags and not tags & {"did_args_string"}:
        tags.add("did_args_string")
        return _dumps(r, {"name": name, key: json.dumps(args)})
    return _dumps(r, {"name": name, key: args})


def _tags(r: random.Random, p: float = 0.5) -> set[str]:
    """Which change(s) this case gets: none about half the time."""
    if r.random() >= p:
        return set()
    return {r.choice(["truncated", "bad_json", "args_string", "unclosed", "unknown_tool"])}


def _prose(r: random.Random, tags: set[str]) -> tuple[str, str, str]:
    before = r.choice(PROSE) + r.choice([" ", "\n", "\n\n"]) if r.random() < 0.3 else ""
    after = r.choice(["\n", " "]) + r.choice(PROSE) if r.random() < 0.2 else ""
    between = r.choice(["\n", " ", "\n" + r.choice(PROSE) + "\n"]) if r.random() < 0.5 else ""
    tags |= {t for t, s in (("prose_before", before), ("prose_after", after)) if s}
    if between.strip():
        tags.add("prose_between")
    return before, between, after


def _calls(r: random.Random, tags: set[str]) -> list[tuple[str, dict]]:
    out = [(r.choice(NAMES), arguments(r)) for _ in range(r.choices([1, 2, 3], [0.6, 0.3, 0.1])[0])]
    if "unknown_tool" in tags:
        out[0] = ("not_offered_" + out[0][0], out[0][1])
    return out


def _finish(r: random.Random, text: str, tags: set[str], markers: tuple[str, ...] = ()) -> GenCase:
    """Truncation cuts anywhere but inside a marker: markers are single tokens in these models' vocabularies,
    so generation cannot stop halfway through one."""
    if "truncated" in tags:
        cut = r.randint(1, max(1, len(text) - 1))
        for m in markers:
            at = text.find(m)
            while at >= 0:
                if at < cut < at + len(m):
                    cut = at + len(m)
                at = text.find(m, at + 1)
        text = text[:cut]
    return GenCase(text, frozenset(tags - {"did_args_string"}))


def hermes(r: random.Random) -> GenCase:
    tags = _tags(r)
    before, between, after = _prose(r, tags)
    bodies = [_json_call(r, n, a, tags) for n, a in _calls(r, tags)]
    if "bad_json" in tags:
        k = r.randrange(len(bodies))
        bodies[k] = _break_json(r, bodies[k])
    ws = r.choice(["", "\n"])
    parts = [f"<tool_call>{ws}{b}{ws}</tool_call>" for b in bodies]
    text = before + (between or r.choice(["", "\n"])).join(parts)
    if "unclosed" in tags:
        text = text[: -len("</tool_call>")]
        after = ""
        tags.discard("prose_after")
    return _finish(r, text + after, tags, ("<tool_call>", "</tool_call>"))


def llama3_json(r: random.Random) -> GenCase:
    tags = _tags(r)
    tags.discard("unclosed")
    before, _, after = _prose(r, tags)
    key = r.choice(["parameters", "parameters", "arguments"])
    bodies = [_json_call(r, n, a, tags, key) for n, a in _calls(r, tags)]
    if "bad_json" in tags:
        k = r.randrange(len(bodies))
        bodies[k] = _break_json(r, bodies[k])
    calls = r.choice(["; ", ";", " ; "]).join(bodies)
    lead = r.random()
    if lead < 0.25:
        text = before.rstrip() + "<|python_tag|>" + calls
        tags.add("python_tag")
    elif before:
        text = before.rstrip() + "\n" + calls  # prose, then the calls on a line of their own
    else:
        text = calls
    return _finish(r, text + after, tags, ("<|python_tag|>",))


def _py(r: random.Random, v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_py(r, k)}: {_py(r, x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_py(r, x) for x in v) + "]"
    if isinstance(v, str):
        return repr(v) if r.random() < 0.5 else json.dumps(v, ensure_ascii=False)
    return repr(v)


def pythonic(r: random.Random) -> GenCase:
    tags = _tags(r)
    tags -= {"args_string", "unclosed"}
    calls = _calls(r, tags)
    parts = [f"{n}({', '.join(f'{k}={_py(r, v)}' for k, v in a.items())})" for n, a in calls]
    if "bad_json" in tags:
        k = r.randrange(len(parts))
        parts[k] = parts[k].replace("(", "(=", 1) if "=" in parts[k] else parts[k] + ")"
    return _finish(r, "[" + ", ".join(parts) + "]", tags)


def mistral(r: random.Random) -> GenCase:
    tags = _tags(r)
    tags.discard("unclosed")
    before, _, _ = _prose(r, tags)
    tags -= {"prose_after", "prose_between"}
    objs = []
    for n, a in _calls(r, tags):
        obj = {"name": n, "arguments": json.dumps(a) if "args_string" in tags and not objs else a}
        if r.random() < 0.3:
            obj["id"] = "".join(r.choice(string.ascii_letters + string.digits) for _ in range(9))
        objs.append(obj)
    body = _dumps(r, objs)
    if "bad_json" in tags:
        body = body[:-1] if r.random() < 0.5 else body.replace(":", " ", 1)
    return _finish(r, before + "[TOOL_CALLS]" + body, tags, ("[TOOL_CALLS]",))


def mistral_v11(r: random.Random) -> GenCase:
    """`[TOOL_CALLS]name[ARGS]{...}` per call (v13+; v11 adds `[CALL_ID]id` before `[ARGS]`, sometimes here)."""
    tags = _tags(r)
    tags -= {"unclosed", "args_string"}
    before, _, after = _prose(r, tags)
    tags.discard("prose_between")
    parts = []
    for n, a in _calls(r, tags):
        body = _dumps(r, a)
        if "bad_json" in tags and not parts:
            body = _break_json(r, body)
        call_id = ""
        if r.random() < 0.2:
            call_id = "[CALL_ID]" + "".join(r.choice(string.ascii_letters + string.digits) for _ in range(9))
            tags.add("call_id")
        parts.append(f"[TOOL_CALLS]{n}{call_id}[ARGS]{body}")
    return _finish(r, before + "".join(parts) + after, tags, ("[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"))


DS = {k: f"<｜{k}｜>" for k in ("tool▁calls▁begin", "tool▁calls▁end", "tool▁call▁begin", "tool▁call▁end", "tool▁sep")}


def _section(r: random.Random, write: Callable[[int, str, str], str]) -> tuple[str, str, set[str]]:
    """Prose before a section of calls, the calls (`write(index, name, JSON arguments)` each; under bad_json
    the first one's JSON broken), and the case's tags."""
    tags = _tags(r) - {"args_string", "unclosed"}
    before, _, _ = _prose(r, tags)
    tags -= {"prose_after", "prose_between"}
    parts = []
    for i, (n, a) in enumerate(_calls(r, tags)):
        body = _dumps(r, a)
        parts.append(write(i, n, _break_json(r, body) if "bad_json" in tags and not parts else body))
    return before, "".join(parts), tags


def deepseek_v3(r: random.Random) -> GenCase:
    def write(i: int, name: str, body: str) -> str:
        return f"{DS['tool▁call▁begin']}function{DS['tool▁sep']}{name}\n```json\n{body}\n```{DS['tool▁call▁end']}"

    before, calls, tags = _section(r, write)
    return _finish(r, before + DS["tool▁calls▁begin"] + calls + DS["tool▁calls▁end"], tags, tuple(DS.values()))


KIMI = tuple(
    f"<|{k}|>"
    for k in (
        "tool_calls_section_begin",
        "tool_calls_section_end",
        "tool_call_begin",
        "tool_call_argument_begin",
        "tool_call_end",
    )
)


def kimi_k2(r: random.Random) -> GenCase:
    def write(i: int, name: str, body: str) -> str:
        return f"<|tool_call_begin|>functions.{name}:{i}<|tool_call_argument_begin|>{body}<|tool_call_end|>"

    before, calls, tags = _section(r, write)
    return _finish(r, before + "<|tool_calls_section_begin|>" + calls + "<|tool_calls_section_end|>", tags, KIMI)


GENERATORS: dict[str, Callable[[random.Random], GenCase]] = {
    "hermes": hermes,
    "llama3_json": llama3_json,
    "pythonic": pythonic,
    "mistral": mistral,
    "mistral_v11": mistral_v11,
    "deepseek_v3": deepseek_v3,
    "kimi_k2": kimi_k2,
}


def cases(fmt: str, n: int, seed: int = 0) -> Iterator[GenCase]:
    r = random.Random(f"{fmt}:{seed}")
    for _ in range(n):
        yield GENERATORS[fmt](r)
