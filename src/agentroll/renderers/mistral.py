"""Mistral renderers, built natively from the tokenizers mistral-common ships.

Three formats, named after the tokenizer version they reproduce (mistral-common's
`encode_chat_completion` is the reference the tests compare against, token for token):

- `mistral-v3`: SentencePiece v3 (Mistral-7B-Instruct-v0.3, Mixtral-8x22B-Instruct).
- `mistral-v3-tekken`: Tekken with the v3 instruct format (Mistral-Nemo-Instruct-2407).
- `mistral-v7`: SentencePiece v7 (Mistral-Large-Instruct-2411): system prompts in
  `[SYSTEM_PROMPT]`, tool results as `[TOOL_RESULTS]id[TOOL_CONTENT]content`.
- `mistral-v11`: Tekken v11 (Mistral Small 3.1 / 3.2): as v7, but each call is
  `[TOOL_CALLS]name[CALL_ID]id[ARGS]{json}`.
- `mistral-v13`: Tekken v13 (Magistral, Devstral): `[TOOL_CALLS]name[ARGS]{json}` with no id,
  tool results as `[TOOL_RESULTS]content[/TOOL_RESULTS]`, and `[AVAILABLE_TOOLS]` before the
  *first* user message (so a new user message moves nothing: prefix-stable).

No v11+ tokenizer file ships on PyPI (mistral-common's are v1-v7). `tekken_file(version)` writes
one: the Tekken vocabulary mistral-common ships (tekken_240911) with the version set and the
special-token table a v11+ file must carry (`[ARGS]` at 32, `[CALL_ID]` at 33, `[THINK]` /
`[/THINK]` at 34 / 35, the other ranks as in the v3-v7 files). The token IDs of ordinary text are
therefore Nemo's, not a v11 model's; the format (what mistral-common's own v11 / v13 encoders
emit) is what the tests check, token for token.

Rules that matter for prefix stability: `[AVAILABLE_TOOLS]` sits before the *last*
user message (and, in v3, so does the system prompt, joined to that message's
text). A new user message therefore moves them: the bridge then starts a new
segment and says why. Tool results and tool calls are always rendered in history.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from agentroll.errors import RenderError, TokenizerError
from agentroll.renderers.base import Bridge, Drift
from agentroll.renderers.tokencheck import first_drift, sampled_turns
from agentroll.renderers.tokenizers.loader import cache_dir
from agentroll.types import Message, ParsedMessage, ParseMode, ToolSpec

_TOKENIZER_FILES = {
    "v3": "mistral_instruct_tokenizer_240323.model.v3",
    "v3-tekken": "tekken_240718.json",
    "v7": "mistral_instruct_tokenizer_241114.model.v7",
    "v11": "tekken_240911.json",  # + the v11 special tokens (tekken_file)
    "v13": "tekken_240911.json",
}
_V11_SPECIALS = {32: "[ARGS]", 33: "[CALL_ID]", 34: "[THINK]", 35: "[/THINK]"}


def tekken_file(version: str) -> Path:
    """The Tekken file for `version`: mistral-common's own, or (v11, v13) one written from tekken_240911 with
    that version and a v11+ special-token table, under the agentroll cache (see the module docstring)."""
    shipped = Path(str(resources.files("mistral_common") / "data" / _TOKENIZER_FILES[version]))
    if version not in ("v11", "v13"):
        return shipped
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    out = cache_dir() / f"mistral-tekken-240911-{version}.json"
    if out.exists():
        return out
    data = json.loads(shipped.read_text(encoding="utf-8"))
    n = data["config"]["default_num_special_tokens"]
    known = {int(t["rank"]): str(t["token_str"]) for t in Tekkenizer.DEPRECATED_SPECIAL_TOKENS} | _V11_SPECIALS
    data["config"]["version"] = version
    data["special_tokens"] = [
        {"rank": i, "token_str": known.get(i, f"<SPECIAL_{i}>"), "is_control": True} for i in range(n)
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(out)
    return out


class MistralTokenizerAdapter:
    """encode/decode over a mistral-common raw tokenizer (SentencePiece or Tekken).

    `encode` maps special-token strings ([INST], [TOOL_CALLS], ...) to their IDs and
    encodes the text between them as mistral-common does: each piece on its own,
    no BOS. `decode` keeps special tokens verbatim.
    """

    def __init__(self, raw: Any):
        self.raw = raw
        self.special_ids = _special_ids(raw)
        self._special_by_id = {i: s for s, i in self.special_ids.items()}
        # Longest first, so "[/INST]" is never read as a shorter token's prefix.
        alternatives = "|".join(re.escape(s) for s in sorted(self.special_ids, key=len, reverse=True))
        self._split = re.compile(f"({alternatives})")

    def text(self, text: str) -> list[int]:
        """Ordinary text only: special-token strings stay text."""
        return self.raw.encode(text, bos=False, eos=False)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for i, piece in enumerate(self._split.split(text)):
            if i % 2:
                ids.append(self.special_ids[piece])
            elif piece:
                ids.extend(self.text(piece))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        out: list[str] = []
        run: list[int] = []
        for i in ids:
            special = self._special_by_id.get(int(i))
            if special is None:
                run.append(int(i))
                continue
            if run:
                out.append(self.raw.decode(run))
                run = []
            out.append(special)
        if run:
            out.append(self.raw.decode(run))
        return "".join(out)

    def token(self, name: str) -> int:
        """The ID of a special token; TokenizerError when this vocabulary lacks it."""
        if name not in self.special_ids:
            raise TokenizerError(f"this Mistral tokenizer has no {name} token")
        return self.special_ids[name]


def _special_ids(raw: Any) -> dict[str, int]:
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    if isinstance(raw, Tekkenizer):
        return {getattr(s, "value", s): i for s, i in raw._special_tokens_reverse_vocab.items()}
    return {raw.id_to_piece(i): i for i in sorted(raw.special_ids)}


@cache
def load_tokenizer(version: str) -> MistralTokenizerAdapter:
    """The tokenizer file mistral-common ships for `version` ("v3", "v3-tekken", "v7")."""
    if version not in _TOKENIZER_FILES:
        raise TokenizerError(f"unknown Mistral tokenizer version {version!r}; known: {', '.join(_TOKENIZER_FILES)}")
    path = tekken_file(version)
    try:
        if path.suffix == ".json":
            from mistral_common.tokens.tokenizers.tekken import Tekkenizer

            return MistralTokenizerAdapter(Tekkenizer.from_file(str(path)))
        from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer

        return MistralTokenizerAdapter(SentencePieceTokenizer(str(path)))
    except ImportError as e:  # SentencePiece files need the sentencepiece extra
        raise TokenizerError(f"Mistral {version} tokenizer: {e} (pip install 'mistral-common[sentencepiece]')") from e


# --- normalization: mistral-common merges runs of same-role messages ------------------------------


@dataclass(slots=True)
class _Turn:
    """One normalized message: consecutive user (or assistant) messages merged."""

    role: str
    content: str = ""
    tool_calls: tuple = ()
    tool_call_id: str | None = None
    source: int = -1  # index of the (first) message it came from; -1: padding


def _normalize(messages: Sequence[Message], *, system_inline: bool) -> tuple[list[_Turn], str | None]:
    """Merge same-role runs (joined by a blank line); v3 (`system_inline`) pulls system text out."""
    turns: list[_Turn] = []
    system_texts = [m.content for m in messages if m.role == "system" and m.content] if system_inline else []
    prev_role: str | None = None
    for index, m in enumerate(messages):
        merge = m.role == prev_role and m.role in ("user", "assistant")
        prev_role = m.role
        if m.role == "system" and system_inline:
            continue
        text = m.content or ""
        if merge:
            last = turns[-1]
            last.content = f"{last.content}\n\n{text}" if last.content and text else last.content or text
            last.tool_calls += m.tool_calls
            continue
        turns.append(_Turn(m.role, text, m.tool_calls, m.tool_call_id, index))
    if not turns or (system_inline and turns[0].role != "user"):
        turns.insert(0, _Turn("user"))  # mistral-common opens every v3 conversation with a user turn
    return turns, "\n\n".join(system_texts) if system_texts else None


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class MistralRenderer:
    """Render / parse / bridge for one Mistral tokenizer version (see the module docstring)."""

    def __init__(self, version: str = "v3", name: str | None = None):
        if version not in _TOKENIZER_FILES:
            raise RenderError(f"unknown Mistral format {version!r}; known: {', '.join(_TOKENIZER_FILES)}")
        self.version = version
        self.name = name or f"mistral-{version}"
        self.tokenizer = load_tokenizer(version)
        self._v7 = version in ("v7", "v11", "v13")  # [SYSTEM_PROMPT] blocks, results carry ids (v13: no ids)
        self._named_calls = version in ("v11", "v13")  # [TOOL_CALLS]name[ARGS]{...} per call
        self._tools_first = version == "v13"  # [AVAILABLE_TOOLS] before the first user message
        tok = self.tokenizer.token
        self.bos, self.eos = tok("<s>"), tok("</s>")
        self._inst, self._end_inst = tok("[INST]"), tok("[/INST]")
        self._tools_open, self._tools_close = tok("[AVAILABLE_TOOLS]"), tok("[/AVAILABLE_TOOLS]")
        self._results_open, self._results_close = tok("[TOOL_RESULTS]"), tok("[/TOOL_RESULTS]")
        self._calls = tok("[TOOL_CALLS]")
        if self._v7:
            self._sys_open, self._sys_close = tok("[SYSTEM_PROMPT]"), tok("[/SYSTEM_PROMPT]")
            self._tool_content = tok("[TOOL_CONTENT]")
        if self._named_calls:
            self._args, self._call_id = tok("[ARGS]"), tok("[CALL_ID]")

    # --- render ---------------------------------------------------------------------------------

    def render(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), *, add_generation_prompt: bool = True
    ) -> list[int]:
        """Prompt IDs. Mistral has no assistant opener, so `add_generation_prompt` changes nothing."""
        return self._render(messages, tools, {})

    def _render(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], verbatim: dict[int, list[int]]
    ) -> list[int]:
        """`verbatim`: message index -> the IDs the model sampled for that assistant message."""
        turns, system = _normalize(messages, system_inline=not self._v7)
        users = [i for i, t in enumerate(turns) if t.role == "user"]
        last_user = (users[0] if self._tools_first else users[-1]) if users else -1
        ids = [self.bos]
        for i, turn in enumerate(turns):
            if turn.role == "user" and i == last_user:  # the tools' user message (v3: with the system text)
                ids += self._tools_block(tools)
                ids += self._user(turn.content, system)
            elif turn.source in verbatim:
                sampled = verbatim[turn.source]
                ids += sampled if sampled[-1:] == [self.eos] else [*sampled, self.eos]
            else:
                ids += self._turn(turn)
        return ids

    def _turn(self, turn: _Turn) -> list[int]:
        if turn.role == "user":
            return self._user(turn.content, None)
        if turn.role == "assistant":
            return self._assistant(turn)
        if turn.role == "tool":
            return self._tool_result(turn)
        return [self._sys_open, *self.tokenizer.text(turn.content), self._sys_close]  # v7 system

    def _tools_block(self, tools: Sequence[ToolSpec]) -> list[int]:
        if not tools:
            return []
        specs = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
            }
            for t in tools
        ]
        return [self._tools_open, *self.tokenizer.text(json.dumps(specs, ensure_ascii=False)), self._tools_close]

    def _user(self, content: str, system: str | None) -> list[int]:
        text = f"{system}\n\n{content}" if system else content
        return [self._inst, *self.tokenizer.text(text), self._end_inst]

    def _assistant(self, turn: _Turn) -> list[int]:
        if turn.tool_calls and turn.content and not self._v7:
            raise RenderError("mistral v3: an assistant message cannot carry both content and tool calls")
        ids = self.tokenizer.text(turn.content.rstrip(" ")) if turn.content else []
        if turn.tool_calls and self._named_calls:
            for c in turn.tool_calls:
                call_id = [self._call_id, *self.tokenizer.text(c.id)] if self.version == "v11" and c.id else []
                args = json.dumps(json.loads(json.dumps(c.arguments, ensure_ascii=False)), ensure_ascii=False)
                ids += [self._calls, *self.tokenizer.text(c.name), *call_id, self._args, *self.tokenizer.text(args)]
        elif turn.tool_calls:
            calls = []
            for c in turn.tool_calls:
                # A JSON round trip, as mistral-common normalizes arguments before dumping them.
                call = {"name": c.name, "arguments": json.loads(json.dumps(c.arguments, ensure_ascii=False))}
                if c.id and c.id != "null":
                    call["id"] = c.id
                calls.append(call)
            ids += [self._calls, *self.tokenizer.text(json.dumps(calls, ensure_ascii=False))]
        return [*ids, self.eos]

    def _tool_result(self, turn: _Turn) -> list[int]:
        if self._tools_first:  # v13: no id
            return [self._results_open, *self.tokenizer.text(turn.content), self._results_close]
        if self._v7:
            call_id = self.tokenizer.text(turn.tool_call_id or "")
            body = self.tokenizer.text(turn.content)
            return [self._results_open, *call_id, self._tool_content, *body, self._results_close]
        # v3 embeds the result as JSON when it parses as JSON (an empty result becomes {}).
        payload = {"content": _json_or_text(turn.content or "{}"), "call_id": turn.tool_call_id}
        return [self._results_open, *self.tokenizer.text(json.dumps(payload, ensure_ascii=False)), self._results_close]

    # --- parse ----------------------------------------------------------------------------------

    def parse(
        self, token_ids: Sequence[int], tools: Sequence[ToolSpec] = (), *, mode: ParseMode = "strict"
    ) -> ParsedMessage:
        """Sampled IDs -> message. Text before `[TOOL_CALLS]` is content; calls keep their ids."""
        from agentroll.renderers.toolcalls.mistral import MistralParser

        ids = list(token_ids)
        stopped = bool(ids) and ids[-1] == self.eos
        if stopped:
            ids = ids[:-1]
        markers = {m: self.tokenizer.special_ids[m] for m in MistralParser.markers if m in self.tokenizer.special_ids}
        parsed = MistralParser().parse_ids(ids, self.tokenizer, tools, special_ids=markers, mode=mode)
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
        """Tokens after the sampled assistant turn; a new segment when the reference would move text."""
        reason = self._break_reason(history, new_messages, tools)
        if reason is not None:
            return Bridge(self.render([*history, *new_messages], tools), new_segment=True, reason=reason)
        ids = [] if stopped else [self.eos]
        if new_messages:  # no tools/system placement can be involved here: _break_reason ruled that out
            for turn in _normalize(new_messages, system_inline=False)[0]:
                ids += self._turn(turn)
        return Bridge(ids)

    def _break_reason(
        self, history: Sequence[Message], new_messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> str | None:
        roles = {m.role for m in new_messages}
        if new_messages and new_messages[0].role == "assistant":
            return "mistral merges consecutive assistant messages, so the sampled turn would change"
        if "user" in roles and tools and not self._tools_first:
            return "mistral renders [AVAILABLE_TOOLS] before the last user message, which just moved"
        if not self._v7:
            if "system" in roles:
                return "mistral v3 joins system prompts into the last user message, which changed"
            if "user" in roles and any(m.role == "system" and m.content for m in history):
                return "mistral v3 renders the system prompt in the last user message, which just moved"
        return None

    def stop_token_ids(self) -> list[int]:
        return [self.eos]

    def check_prefix(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], token_ids: Sequence[int], loss_mask: Sequence[int]
    ) -> Drift | None:
        """Compare a segment with the canonical render, its sampled turns taken verbatim."""
        return first_drift(
            self.tokenizer, self._render(messages, tools, sampled_turns(messages, token_ids, loss_mask)), token_ids
        )


def mistral_v3() -> MistralRenderer:
    return MistralRenderer("v3")


def mistral_v3_tekken() -> MistralRenderer:
    return MistralRenderer("v3-tekken")


def mistral_v11() -> MistralRenderer:
    return MistralRenderer("v11")


def mistral_v13() -> MistralRenderer:
    return MistralRenderer("v13")


def mistral_v7() -> MistralRenderer:
    return MistralRenderer("v7")
