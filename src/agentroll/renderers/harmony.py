"""gpt-oss renderer: the harmony format, built natively (openai-harmony is the reference).

    <|start|>system<|message|>...Reasoning: medium...<|end|>
    <|start|>developer<|message|># Instructions ... # Tools ... namespace functions {...}<|end|>
    <|start|>user<|message|>...<|end|>
    <|start|>assistant<|channel|>analysis<|message|>reasoning<|end|>
    <|start|>assistant to=functions.NAME<|channel|>commentary <|constrain|>json<|message|>{args}<|call|>
    <|start|>functions.NAME to=assistant<|channel|>commentary<|message|>result<|end|>
    <|start|>assistant<|channel|>final<|message|>answer<|end|>        (sampled: ...<|return|>)

Mapping: system messages -> developer "# Instructions"; assistant `reasoning` ->
analysis; content -> final (commentary when the turn also calls tools); tool calls
-> one commentary message each (harmony has no call ids; parsed calls are
`call_<i>`). History policy (openai-harmony's): once the last assistant message is a
final answer, analysis messages before the first final answer are dropped, and a
final answer the model ended with `<|return|>` is re-rendered with `<|end|>`. Both
change tokens the episode already holds, so the bridge starts a new segment then.

Token IDs come from quicktok's `o200k_harmony` (the gpt-oss vocabulary).
`o200k_tiktoken_dir()` builds the `o200k_base.tiktoken` file openai-harmony needs
offline (from quicktok's o200k ranks, checked against tiktoken's published hash).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from agentroll.errors import RenderError, TokenizerError
from agentroll.renderers.base import Bridge, Drift
from agentroll.renderers.harmony_ts import tools_section
from agentroll.renderers.tokencheck import first_drift, sampled_turns
from agentroll.types import Message, ParsedMessage, ParseMode, ToolSpec

# tiktoken_ext/openai_public.py: the sha256 of the published o200k_base.tiktoken.
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
EFFORTS = ("low", "medium", "high")


def o200k_tiktoken_dir() -> Path:
    """A folder holding a verified `o200k_base.tiktoken` (for TIKTOKEN_ENCODINGS_BASE), built once."""
    root = Path(os.environ.get("AGENTROLL_CACHE_DIR") or Path.home() / ".cache" / "agentroll") / "tiktoken"
    path = root / "o200k_base.tiktoken"
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == O200K_SHA256:
        return root
    from agentroll.renderers.tokenizers.quicktok import read_ranks

    ranks = read_ranks("o200k")
    data = b"".join(base64.b64encode(raw) + b" %d\n" % rank for raw, rank in sorted(ranks.items(), key=lambda x: x[1]))
    digest = hashlib.sha256(data).hexdigest()
    if digest != O200K_SHA256:
        raise TokenizerError(f"o200k_base rebuilt from quicktok has sha256 {digest}, expected {O200K_SHA256}")
    root.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_bytes(data)
    scratch.replace(path)  # atomic: concurrent builders never expose a half-written file
    return root


class HarmonyTokenizer:
    """encode/decode over quicktok's o200k_harmony; `text` never maps special tokens."""

    def __init__(self):
        import quicktok

        self._enc = quicktok.get_encoding("o200k_harmony")

    def encode(self, text: str) -> list[int]:
        return self._enc.encode_with_special(text)

    def text(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self._enc.decode(list(ids))

    def token(self, name: str) -> int:
        return self._enc.encode_single_token(name)


@cache
def _tokenizer() -> HarmonyTokenizer:
    return HarmonyTokenizer()


@dataclass(slots=True, frozen=True)
class HMessage:
    """One harmony message (an agentroll Message may become several)."""

    role: str  # "system" | "developer" | "user" | "assistant" | "tool"
    text: str
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None
    author: str | None = None  # tools: "functions.NAME", rendered in place of the role
    source: int = -1  # index of the Message it came from


def to_harmony(messages: Sequence[Message], names: dict[str, str] | None = None) -> list[HMessage]:
    """Conversation messages -> harmony messages (system text goes to the developer header instead).

    `names` maps tool_call_id -> tool name for tool results that carry no name;
    calls seen in `messages` are added as they come.
    """
    names = dict(names or {})
    out: list[HMessage] = []
    for i, m in enumerate(messages):
        if m.role == "user":
            out.append(HMessage("user", m.content or "", source=i))
        elif m.role == "tool":
            name = m.name or names.get(m.tool_call_id or "")
            if not name:
                raise RenderError(f"harmony needs the tool's name for result {m.tool_call_id!r}")
            out.append(
                HMessage("tool", m.content or "", "commentary", "assistant", author=f"functions.{name}", source=i)
            )
        elif m.role == "assistant":
            out.extend(_assistant(m, i))
            names.update({c.id: c.name for c in m.tool_calls})
    return out


def _assistant(m: Message, source: int = -1) -> list[HMessage]:
    out = []
    if m.reasoning:
        out.append(HMessage("assistant", m.reasoning, "analysis", source=source))
    if m.tool_calls:
        if m.content:  # a preamble before the calls
            out.append(HMessage("assistant", m.content, "commentary", source=source))
        for c in m.tool_calls:
            args = c.raw if c.raw is not None else _json(c.arguments)
            call = HMessage("assistant", args, "commentary", f"functions.{c.name}", "<|constrain|>json", source=source)
            out.append(call)
    elif m.content or not out:
        out.append(HMessage("assistant", m.content or "", "final", source=source))
    return out


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def dropped(hmsgs: Sequence[HMessage]) -> set[int]:
    """Indices openai-harmony drops: analysis before the first final, once the last assistant is final."""
    last = next((h for h in reversed(hmsgs) if h.role == "assistant"), None)
    if last is None or last.channel != "final":
        return set()
    first_final = next(i for i, h in enumerate(hmsgs) if h.channel == "final")
    return {i for i, h in enumerate(hmsgs[:first_final]) if h.channel == "analysis"}


class HarmonyRenderer:
    """Render / parse / bridge for gpt-oss. See the module docstring for the mapping and history policy."""

    def __init__(
        self,
        *,
        reasoning_effort: str = "medium",
        model_identity: str | None = DEFAULT_IDENTITY,
        knowledge_cutoff: str | None = "2024-06",
        current_date: str | None = None,
        name: str = "gpt-oss",
    ):
        if reasoning_effort not in EFFORTS:
            raise RenderError(f"reasoning_effort must be one of {', '.join(EFFORTS)}, not {reasoning_effort!r}")
        self.name = name
        self.reasoning_effort = reasoning_effort
        self.model_identity, self.knowledge_cutoff, self.current_date = model_identity, knowledge_cutoff, current_date
        self.tokenizer = _tokenizer()
        tok = self.tokenizer.token
        self._start, self._message, self._channel = tok("<|start|>"), tok("<|message|>"), tok("<|channel|>")
        self._end, self._call, self._return = tok("<|end|>"), tok("<|call|>"), tok("<|return|>")
        self._constrain = tok("<|constrain|>")

    # --- render ---------------------------------------------------------------------------------

    def render(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), *, add_generation_prompt: bool = True
    ) -> list[int]:
        """The whole conversation (system + developer header first) as prompt IDs.

        Ending on an assistant message without a generation prompt renders that turn as
        it is sampled: after its prompt (that prompt's history policy), final -> `<|return|>`.
        """
        return self._render(messages, tools, add_generation_prompt, {})

    def _render(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], open_turn: bool, verbatim: dict[int, list[int]]
    ) -> list[int]:
        """`verbatim`: message index -> the IDs sampled for that assistant turn (after its opener)."""
        ids = self._header(messages, tools)
        trailing = not open_turn and bool(messages) and messages[-1].role == "assistant"
        hmsgs = to_harmony(messages[:-1] if trailing else messages)
        drop = dropped(hmsgs)
        kept_whole = {h.source for k, h in enumerate(hmsgs) if h.source in verbatim} - {hmsgs[k].source for k in drop}
        for k, h in enumerate(hmsgs):
            if h.source in kept_whole:
                if k == 0 or hmsgs[k - 1].source != h.source:
                    ids += self._opener() + self._in_history(verbatim[h.source], h.source, messages)
            elif k not in drop:
                ids += self._message_ids(h)
        if trailing:
            last = len(messages) - 1
            ids += self._opener() + (verbatim.get(last) or self._sampled_turn(messages[-1], last))
        elif open_turn:
            ids += self._opener()
        return ids

    def _sampled_turn(self, m: Message, source: int) -> list[int]:
        """An assistant message as the model emits it after `<|start|>assistant`."""
        ids = [t for h in _assistant(m, source) for t in self._message_ids(h)][len(self._opener()) :]
        return [*ids[:-1], self._return] if ids[-1] == self._end else ids

    def _in_history(self, sampled: list[int], source: int, messages: Sequence[Message]) -> list[int]:
        """A sampled turn as history shows it: closed if it was cut off, a final `<|return|>` read as `<|end|>`."""
        if sampled[-1:] == [self._return]:
            return [*sampled[:-1], self._end]
        if sampled[-1:] not in ([self._end], [self._call]):
            return [*sampled, self._call if messages[source].tool_calls else self._end]
        return sampled

    def _header(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> list[int]:
        top = [
            s
            for s in (
                self.model_identity,
                self.knowledge_cutoff and f"Knowledge cutoff: {self.knowledge_cutoff}",
                self.current_date and f"Current date: {self.current_date}",
            )
            if s
        ]
        channels = "# Valid channels: analysis, commentary, final. Channel must be included for every message."
        if tools:
            channels += "\nCalls to these tools must go to the commentary channel: 'functions'."
        system = "\n\n".join(s for s in ("\n".join(top), f"Reasoning: {self.reasoning_effort}", channels) if s)
        ids = self._message_ids(HMessage("system", system))
        instructions = "\n\n".join(m.content or "" for m in messages if m.role == "system")
        sections = ["# Instructions", instructions] if instructions else []
        if tools:
            sections.append(tools_section(tools))
        if sections:
            ids += self._message_ids(HMessage("developer", "\n\n".join(sections)))
        return ids

    def _message_ids(self, h: HMessage) -> list[int]:
        # Each header piece is encoded on its own, exactly as openai-harmony does (BPE never merges across them).
        text = self.tokenizer.text
        ids = [self._start, *text(h.author if h.role == "tool" else h.role)]
        if h.recipient and h.recipient != "all":
            ids += text(f" to={h.recipient}")
        if h.channel:
            ids += [self._channel, *text(h.channel)]
        if h.content_type:
            if h.content_type.startswith("<|constrain|>"):
                rest = h.content_type[len("<|constrain|>") :]
                ids += [*text(" "), self._constrain, *(text(rest) if rest else [])]
            else:
                ids += text(f" {h.content_type}")
        ids += [self._message, *text(h.text)]
        ids.append(self._call if h.role == "assistant" and h.recipient else self._end)
        return ids

    def _opener(self) -> list[int]:
        return [self._start, *self.tokenizer.text("assistant")]

    # --- parse ----------------------------------------------------------------------------------

    def parse(
        self, token_ids: Sequence[int], tools: Sequence[ToolSpec] = (), *, mode: ParseMode = "strict"
    ) -> ParsedMessage:
        """Sampled IDs (after `<|start|>assistant`) -> analysis as reasoning, final as content, calls."""
        from agentroll.renderers.toolcalls.openai import MARKERS, OpenAIParser

        ids = list(token_ids)
        stopped = bool(ids) and ids[-1] in (self._return, self._call)
        special = {m: self.tokenizer.token(m) for m in MARKERS}
        parsed = OpenAIParser().parse_ids(ids, self.tokenizer, tools, special_ids=special, mode=mode)
        return parsed.model_copy(update={"stopped": stopped})

    # --- bridge ---------------------------------------------------------------------------------

    def bridge(
        self,
        history: Sequence[Message],
        new_messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        *,
        stopped: bool = True,
    ) -> Bridge:
        """Close the sampled turn if needed, render the new messages, open the next assistant turn."""
        reason = self._break_reason(history, new_messages, stopped)
        if reason is not None:
            return Bridge(self.render([*history, *new_messages], tools), new_segment=True, reason=reason)
        ids: list[int] = []
        if not stopped:
            ids.append(self._call if history[-1].tool_calls else self._end)
        names = {c.id: c.name for m in history for c in m.tool_calls}
        for h in to_harmony(new_messages, names):
            ids += self._message_ids(h)
        return Bridge(ids + self._opener())

    def _break_reason(self, history: Sequence[Message], new_messages: Sequence[Message], stopped: bool) -> str | None:
        if any(m.role == "system" for m in new_messages):
            return "harmony renders system text in the developer header, which changed"
        if not history or history[-1].role != "assistant":
            return "the history does not end with a sampled assistant turn"
        sampled = _assistant(history[-1], len(history) - 1)
        if stopped and sampled[-1].channel == "final":
            return "harmony re-renders a final answer's <|return|> as <|end|> in history"
        before = to_harmony(history[:-1])
        after = [*before, *sampled, *to_harmony(new_messages, {c.id: c.name for m in history for c in m.tool_calls})]
        # Compare by message index: `after` only appends, so equal index sets mean equal renders.
        if dropped(before) != dropped(after):
            return "harmony drops analysis before the first final answer once a turn ends in a final answer"
        return None

    def stop_token_ids(self) -> list[int]:
        """`<|return|>` ends a final answer, `<|call|>` a tool call (`<|end|>` only ends one message)."""
        return [self._return, self._call]

    def check_prefix(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], token_ids: Sequence[int], loss_mask: Sequence[int]
    ) -> Drift | None:
        """Compare a segment with the canonical render, sampled turns verbatim unless history rewrites them."""
        open_turn = bool(messages) and messages[-1].role != "assistant"
        verbatim = sampled_turns(messages, token_ids, loss_mask)
        return first_drift(self.tokenizer, self._render(messages, tools, open_turn, verbatim), token_ids)


def gpt_oss() -> HarmonyRenderer:
    return HarmonyRenderer()
