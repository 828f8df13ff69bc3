"""The generic renderer: any Hugging Face chat template + tokenizer.

Rendering uses transformers' own template machinery (the same function
`apply_chat_template` calls), so the first prompt is byte-identical to what
`tokenizer.apply_chat_template(..., tokenize=True)` gives.

The bridge never re-renders the history. It renders a fixed-size context
(a placeholder user turn + the last sampled assistant turn) with and without
the new messages and appends only the difference:

    A = template([user, assistant])                       # ends "...<|im_end|>\n"
    B = template([user, assistant, *new], gen_prompt)      # A + "<|im_start|>user\n<tool_response>..."
    bridge = encode(tail_after_stop_token(A) + B[len(A):])

so its cost depends on the new messages only. When the template does not
extend (B does not start with A, or it drops the turn's reasoning from
history), the bridge says so and returns a fresh full prompt for a new segment.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentroll.errors import RenderError
from agentroll.renderers.base import Bridge, Drift
from agentroll.renderers.fragments import FragmentCache
from agentroll.renderers.segments import SegmentEncoder, decodes_by_joining
from agentroll.types import Message, ParsedMessage, ParseMode, ToolCall, ToolSpec

_PLACEHOLDER_USER = Message(role="user", content=".")
PLACEHOLDER_ARGS = '{"__AR_ARG__": 0}'  # a placeholder call's arguments as templates write them (tojson)
_MAX_BLANKS = 16  # consecutive whitespace characters a guided call's JSON may hold between tokens


class HFTokenizer:
    """Adapter from a transformers tokenizer to agentroll's Tokenizer protocol.

    For a fast tokenizer this calls its Rust backend directly: the same IDs and text as
    `hf.encode(text, add_special_tokens=False)` / `hf.decode(ids, ...)` (which wrap exactly these calls
    in batch bookkeeping and argument checks), at a fraction of the cost. The loop encodes and decodes
    on every turn, so that wrapper cost was most of a turn's.
    """

    def __init__(self, hf: Any):
        self.hf = hf
        self._backend = getattr(hf, "backend_tokenizer", None)
        self._pieces: dict[int, str] = {}
        spec = json.loads(self._backend.to_str()) if self._backend is not None else None  # read once: it is large
        self._segments = SegmentEncoder.for_backend(self._backend, spec) if spec is not None else None
        self._join_pieces = spec is not None and decodes_by_joining(spec)

    def _plain_backend(self) -> Any:
        """The backend when a direct call gives what `hf.encode` gives (no truncation, padding or split specials)."""
        backend = self._backend
        if backend is None or self.hf.split_special_tokens or backend.truncation or backend.padding:
            return None
        if backend.encode_special_tokens:  # transformers resets it before each call, for the same reason
            backend.encode_special_tokens = False
        return backend

    def encode(self, text: str) -> list[int]:
        backend = self._plain_backend()
        if backend is None:
            return self.hf.encode(text, add_special_tokens=False)
        if self._segments is not None:  # the same IDs, from cached pieces (see segments.py)
            return self._segments.encode(text)
        return backend.encode(text, add_special_tokens=False).ids

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """`[encode(t) for t in texts]` in one backend call."""
        backend = self._plain_backend()
        if backend is None or not texts:
            return [self.encode(t) for t in texts]
        return [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        if self._backend is None:
            return self.hf.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if self._join_pieces:  # the same text from cached pieces (see segments.py)
            text = "".join(self.decode_each(ids))
            if "\ufffd" not in text:
                return text
        return self._backend.decode(ids if isinstance(ids, list) else list(ids), skip_special_tokens=False)

    def decode_each(self, ids: Sequence[int]) -> list[str]:
        """Each token decoded on its own (cached per ID: a vocabulary's worth at most)."""
        pieces = self._pieces
        out = list(map(pieces.get, ids))  # one C-level pass; the loop below runs for unseen IDs only
        if None in out:
            for k, i in enumerate(ids):
                if out[k] is None:
                    out[k] = pieces[i] = self._decode_one(i)
        return out

    def _decode_one(self, token_id: int) -> str:
        if self._backend is None:
            return self.decode([token_id])
        return self._backend.decode([token_id], skip_special_tokens=False)

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.hf(text, add_special_tokens=False, return_offsets_mapping=True)
        return enc["input_ids"], enc["offset_mapping"]

    def token_id(self, token: str) -> int | None:
        ids = self.encode(token)
        return ids[0] if len(ids) == 1 else None


@dataclass(frozen=True)
class TemplateConfig:
    """What a family adds to a bare template: how calls are written, where turns end, reasoning tags."""

    tool_format: str | None = "hermes"  # a toolcalls parser name; None: the model cannot call tools
    stop_tokens: tuple[str, ...] = ("<|im_end|>",)  # tokens that end an assistant turn
    reasoning_tags: tuple[str, str] | None = None  # ("<think>", "</think>") for thinking models
    arguments_as_json: bool = False  # the template concatenates arguments as a JSON string (DeepSeek)
    content_required: bool = False  # the template calls string methods on content: pass "" for None (Qwen3)
    # The template carries state across messages (e.g. a flag set by the first tool call and never reset),
    # so a turn cannot be rendered from local context: the bridge renders the whole text (still encoding
    # only the new part). Costs O(conversation) per turn; `agentroll doctor` detects when it is needed.
    stateful: bool = False
    # The template writes message contents verbatim and branches only on roles, names and ids, so a
    # bridge can be rendered once per message shape and filled in (fragments.py). Set per family where
    # the renderer tests compare it with the full bridge.
    fragment_bridge: bool = False
    template_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"enable_thinking": False}


class TemplateRenderer:
    """Renderer over a Hugging Face chat template. See the module docstring for the bridge."""

    def __init__(self, name: str, hf_tokenizer: Any, chat_template: str, config: TemplateConfig | None = None):
        self.name = name
        self.tokenizer = HFTokenizer(hf_tokenizer)
        self.chat_template = chat_template
        self.config = config or TemplateConfig()
        self._template_kwargs = {**hf_tokenizer.special_tokens_map, **self.config.template_kwargs}
        self._kwargs = _plain(self._template_kwargs)
        self._tools_cache: dict[tuple[int, ...], tuple[tuple[ToolSpec, ...], Any]] = {}
        self._stop_ids = [self._single_id(t) for t in self.config.stop_tokens]  # may be empty: render only
        usable = self.config.fragment_bridge and not self.config.stateful  # a stateful bridge needs the history
        self._fragments = FragmentCache(self._fragment_text) if usable else None

    def _single_id(self, token: str) -> int:
        tid = self.tokenizer.token_id(token)
        if tid is None:
            raise RenderError(f"stop token {token!r} is not a single token in {self.name}'s vocabulary")
        return tid

    # --- render -------------------------------------------------------------------------------------

    def render_text(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), *, add_generation_prompt: bool = True
    ) -> str:
        chat = [self._to_template(m) for m in messages]
        try:
            tool_data = self._plain_tools(tools)
            return _render_plain(self.chat_template, chat, tool_data, add_generation_prompt, self._kwargs)
        except Exception as e:  # jinja raise_exception / TypeError inside a template
            raise RenderError(f"{self.name}: the chat template failed: {e}") from e

    def _plain_tools(self, tools: Sequence[ToolSpec]) -> Any:
        """The tools as the template sees them, converted once per tool list (the bridge renders twice a turn)."""
        if not tools:
            return None
        key = tuple(map(id, tools))
        hit = self._tools_cache.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], tools, strict=True)):
            return hit[1]
        if len(self._tools_cache) >= 64:
            self._tools_cache.clear()
        plain = _plain([t.to_openai() for t in tools])
        self._tools_cache[key] = (tuple(tools), plain)  # holding the specs keeps their ids unique
        return plain

    def render(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), *, add_generation_prompt: bool = True
    ) -> list[int]:
        return self.tokenizer.encode(self.render_text(messages, tools, add_generation_prompt=add_generation_prompt))

    def _to_template(self, m: Message) -> dict[str, Any]:
        d = m.to_hf()
        if self.config.content_required and d["content"] is None:
            d["content"] = ""
        # apply_chat_template drops None-valued keys before rendering; do the same so the text is identical.
        d = {k: v for k, v in d.items() if v is not None}
        if self.config.arguments_as_json and m.tool_calls:
            for call, wire in zip(m.tool_calls, d["tool_calls"], strict=True):
                wire["function"]["arguments"] = call.raw if call.raw is not None else _dumps(call.arguments)
        return d

    def stop_token_ids(self) -> list[int]:
        return list(self._stop_ids)

    # --- parse --------------------------------------------------------------------------------------

    def parse(
        self, token_ids: Sequence[int], tools: Sequence[ToolSpec] = (), *, mode: ParseMode = "strict"
    ) -> ParsedMessage:
        ids = list(token_ids)
        stopped = bool(ids) and ids[-1] in self._stop_ids
        if stopped:
            ids = ids[:-1]
        reasoning, ids = self._split_reasoning(ids)
        if self.config.tool_format is None:
            text = self.tokenizer.decode(ids)
            message = Message(role="assistant", content=text.strip() or None, reasoning=reasoning)
            return ParsedMessage(message=message, stopped=stopped)
        parsed = _parser(self.config.tool_format).parse_ids(
            ids, self.tokenizer, tools, special_ids=self._special_ids(), mode=mode
        )
        offset = len(token_ids) - len(ids) - (1 if stopped else 0)  # spans are relative to the whole turn
        calls = tuple(
            c.model_copy(update={"span": (c.span[0] + offset, c.span[1] + offset)}) for c in parsed.tool_calls
        )
        message = parsed.message.model_copy(update={"reasoning": reasoning or parsed.message.reasoning})
        return ParsedMessage(message=message, tool_calls=calls, stopped=stopped)

    @functools.cache  # noqa: B019 - one renderer per model, lives as long as the process
    def _special_ids(self) -> dict[str, int]:
        from agentroll.renderers.toolcalls.base import discover_special_ids

        markers = _parser(self.config.tool_format).markers
        hf = self.tokenizer.hf
        special = {t.content for t in hf.added_tokens_decoder.values()}
        return {m: i for m, i in discover_special_ids(self.tokenizer, markers).items() if m in special}

    def _split_reasoning(self, ids: list[int]) -> tuple[str | None, list[int]]:
        """Leading `<think>...</think>` becomes reasoning; the rest stays as IDs for the call parser."""
        if self.config.reasoning_tags is None:
            return None, ids
        open_tag, close_tag = self.config.reasoning_tags
        close_id = self.tokenizer.token_id(close_tag)
        if close_id is None or close_id not in ids:
            return None, ids
        end = ids.index(close_id)
        text = self.tokenizer.decode(ids[:end])
        text = text.split(open_tag, 1)[1] if open_tag in text else text
        return text.strip() or None, ids[end + 1 :]

    # --- bridge -------------------------------------------------------------------------------------

    def bridge(
        self,
        history: Sequence[Message],
        new_messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        *,
        stopped: bool = True,
    ) -> Bridge:
        if not history or history[-1].role != "assistant":
            raise RenderError("bridge: history must end with the sampled assistant message")
        last = history[-1]
        if self._fragments is not None:
            text = self._fragments.text(last, new_messages, tools, stopped)
            if text is not None:
                return Bridge(self.tokenizer.encode(text))
        context = list(history) if self.config.stateful else [_PLACEHOLDER_USER, last]
        text, reason = self._bridge_text(context, new_messages, tools, stopped)
        if text is None:
            return self._fresh(history, new_messages, tools, reason or "")
        return Bridge(self.tokenizer.encode(text))

    def _bridge_text(
        self, context: list[Message], new_messages: Sequence[Message], tools: Sequence[ToolSpec], stopped: bool
    ) -> tuple[str | None, str | None]:
        """(the bridge's text, None), or (None, why the turn cannot be bridged). `context` ends with the turn."""
        last = context[-1]
        try:
            before = self.render_text(context, tools, add_generation_prompt=False)
            after = self.render_text([*context, *new_messages], tools, add_generation_prompt=True)
        except RenderError as e:
            return None, f"the template cannot render the turn alone: {e}"
        if not after.startswith(before):
            return None, "the template re-renders history differently"
        if last.reasoning and last.reasoning.strip() not in after:
            return None, "the template drops the turn's reasoning from history"
        closing = self._closing(before, stopped)
        if closing is None:
            return None, "the assistant turn ends with no known stop token"
        return closing + after[len(before) :], None

    def _fragment_text(
        self, last: Message, new_messages: Sequence[Message], tools: Sequence[ToolSpec], stopped: bool
    ) -> str | None:
        return self._bridge_text([_PLACEHOLDER_USER, last], new_messages, tools, stopped)[0]

    def _closing(self, before: str, stopped: bool) -> str | None:
        """Template text after the model's stop token (e.g. ChatML's '\\n'); plus the token itself if not sampled."""
        hits = [(before.rfind(t), t) for t in self.config.stop_tokens]
        pos, token = max(hits, default=(-1, ""))
        if pos < 0:
            return None
        tail = before[pos + len(token) :]
        return tail if stopped else token + tail

    def _fresh(
        self, history: Sequence[Message], new_messages: Sequence[Message], tools: Sequence[ToolSpec], reason: str
    ) -> Bridge:
        ids = self.render([*history, *new_messages], tools, add_generation_prompt=True)
        return Bridge(ids, new_segment=True, reason=reason)

    # --- forced tool calls (tool_choice "required" / a named tool) -------------------------------------

    def forced_call_prefix(self, tools: Sequence[ToolSpec], name: str | None = None) -> list[int]:
        """Tokens that open a tool call in this template's own format, to append after the generation
        prompt (mask 0) so the model can only continue with a call: up to the function name for
        `required`, up to the arguments for a named tool. Cut from the template's rendering of a call."""
        turn = self._call_turn(tools)
        if name is None:
            return self.tokenizer.encode(turn[: turn.index("__AR_NAME__")])
        opened = turn[: turn.index("__AR_NAME__")] + name + turn[turn.index("__AR_NAME__") + len("__AR_NAME__") :]
        args_at = opened.find('{"__AR_ARG__"')
        if args_at < 0:
            raise RenderError(f"{self.name}: cannot force a named call: no JSON arguments in the call format")
        # Stop before trailing whitespace: BPE vocabularies merge it into the next token (" {"), so a prompt
        # ending in a bare space is one the model never saw in training.
        return self.tokenizer.encode(opened[:args_at].rstrip(" "))

    def guided_call(self, tools: Sequence[ToolSpec], name: str | None = None) -> GuidedCall:
        """tool_choice enforced by the engine's guided decoding. The template's call opener is forced (mask 0),
        as for `forced_call_prefix`: up to the function name (required) or up to the arguments (named). A
        structural tag then holds the rest of the turn to the template's own call text: the name of an
        offered tool, arguments valid under that tool's JSON Schema, the template's closing text. The model's
        stop token follows (the grammar allows nothing else)."""
        turn = self._call_turn(tools)
        at, args_at = turn.index("__AR_NAME__"), turn.find(PLACEHOLDER_ARGS)
        if args_at < 0:
            raise RenderError(f"{self.name}: cannot guide a call: no JSON arguments in the call format")
        after = turn[args_at + len(PLACEHOLDER_ARGS) :]
        stops = [i for t in self.config.stop_tokens if (i := after.find(t)) >= 0]
        closer = after[: min(stops)] if stops else after
        between = turn[at + len("__AR_NAME__") : args_at]
        offered = [t for t in tools if name is None or t.name == name]
        if not offered:
            raise RenderError(f"{self.name}: no tool named {name!r} to call")

        def rest(t: ToolSpec, head: str) -> dict[str, Any]:
            parts = [{"type": "const_string", "value": head}] if head else []
            # xgrammar lets JSON whitespace run on; a small model can loop on newlines until max_tokens,
            # leaving the call unfinished. A cap still allows indented JSON, never an endless run.
            parts.append({"type": "json_schema", "json_schema": t.input_schema, "max_whitespace_cnt": _MAX_BLANKS})
            parts += [{"type": "const_string", "value": closer}] if closer else []
            return {"type": "sequence", "elements": parts}

        opener = turn[:at] if name is None else turn[:at] + name + between
        prefix = opener.rstrip(" ")  # BPE merges a trailing space into the next token: the grammar writes it
        cut = opener[len(prefix) :]
        calls = [rest(t, cut + (t.name + between if name is None else "")) for t in offered]
        body = calls[0] if len(calls) == 1 else {"type": "or", "elements": calls}
        return GuidedCall(self.tokenizer.encode(prefix), {"type": "structural_tag", "format": body})

    def _call_turn(self, tools: Sequence[ToolSpec]) -> str:
        """The template's text for an assistant turn holding one placeholder call (after the generation prompt)."""
        call = ToolCall(id="call_forced", name="__AR_NAME__", arguments={"__AR_ARG__": 0})
        user = [_PLACEHOLDER_USER]
        prompt = self.render_text(user, tools, add_generation_prompt=True)
        full = self.render_text(
            [*user, Message(role="assistant", tool_calls=(call,))], tools, add_generation_prompt=False
        )
        if not full.startswith(prompt) or "__AR_NAME__" not in full:
            raise RenderError(
                f"{self.name}: cannot force a tool call: the template does not write calls after its prompt"
            )
        return full[len(prompt) :]

    # --- runtime check (PrefixChecker) --------------------------------------------------------------

    def check_prefix(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], token_ids: Sequence[int], loss_mask: Sequence[int]
    ) -> Drift | None:
        from agentroll.renderers.check import check_segment

        return check_segment(self, messages, tools, token_ids, loss_mask)


@dataclass(frozen=True)
class GuidedCall:
    """What a guided call needs: the forced opener's IDs and the structural tag for the rest of the turn."""

    prefix: list[int]
    structural_tag: dict[str, Any]


def render_chat_text(
    chat_template: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = False,
    **template_kwargs: Any,
) -> str:
    """Render template dicts to text with transformers' own machinery (what apply_chat_template uses)."""
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        conversations=[messages],
        tools=tools,
        chat_template=chat_template,
        add_generation_prompt=add_generation_prompt,
        **template_kwargs,
    )
    return rendered[0]


def _render_plain(
    chat_template: str, messages: list[dict[str, Any]], tools: Any, add_generation_prompt: bool, kwargs: dict[str, Any]
) -> str:
    """`render_chat_text` for tools and kwargs already converted by `_plain`: the steps transformers'
    render_jinja_template takes (plain data, reasoning aliases, its compiled template), without
    converting the tool schemas again on every call."""
    try:
        from transformers.utils.chat_template_utils import (
            _alias_reasoning_fields,
            _compile_jinja_template,
            _plain_template_data,
        )
    except ImportError:  # a transformers without these helpers: the public path, same text
        return render_chat_text(chat_template, messages, tools, add_generation_prompt, **kwargs)
    chat = _alias_reasoning_fields(_plain_template_data(messages))
    return _compile_jinja_template(chat_template).render(
        messages=chat, tools=tools, documents=None, add_generation_prompt=add_generation_prompt, **kwargs
    )


def _plain(value: Any) -> Any:
    """Template data as transformers passes it to a template (JSON types only; see _plain_template_data)."""
    try:
        from transformers.utils.chat_template_utils import _plain_template_data
    except ImportError:
        return value
    return _plain_template_data(value)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


@functools.cache
def _parser(name: str) -> Any:
    from agentroll.renderers.toolcalls import get_parser

    return get_parser(name)
