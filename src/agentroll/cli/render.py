"""`agentroll render`: messages (+ tools) -> token IDs with a real tokenizer and chat template."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agentroll.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", required=True, help="tokenizer name (smollm2, qwen3, llama3, ...) or path")
    p.add_argument("--template", help="template name (chatml-tools, qwen2.5, llama3.1, ...) or .jinja file; "
                   "default: the tokenizer's own")  # fmt: skip
    p.add_argument("--messages", required=True, type=Path, help="JSON file: a list of OpenAI-style messages")
    p.add_argument("--tools", type=Path, help="JSON file: a list of OpenAI function tools")
    p.add_argument("--no-generation-prompt", action="store_true", help="do not end with the assistant opener")


def run(args: argparse.Namespace) -> int:
    from agentroll.renderers.hf import TemplateConfig, TemplateRenderer
    from agentroll.renderers.templates import load_template
    from agentroll.renderers.tokenizers import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    template = load_template(args.template) if args.template else tok.chat_template
    if not template:
        raise ConfigError(f"tokenizer {args.tokenizer!r} ships no chat template: pass --template")
    messages, tools = load_conversation(args.messages, args.tools)
    renderer = TemplateRenderer(args.tokenizer, tok, template, TemplateConfig(tool_format=None, stop_tokens=()))
    text = renderer.render_text(messages, tools, add_generation_prompt=not args.no_generation_prompt)
    print(json.dumps({"token_ids": renderer.tokenizer.encode(text), "text": text}, ensure_ascii=False))
    return 0


def load_conversation(messages_file: Path, tools_file: Path | None) -> tuple[list, list]:
    """OpenAI-style messages and tools from JSON files, validated (errors name the field)."""
    from pydantic import ValidationError

    from agentroll.types import Message, ToolSpec

    raw_messages = _read_json(messages_file)
    raw_tools = _read_json(tools_file) if tools_file else []
    if not isinstance(raw_messages, list) or not isinstance(raw_tools, list):
        raise ConfigError("--messages and --tools must each hold a JSON list")
    try:
        messages = [Message.from_openai(m) for m in raw_messages]
        tools = [ToolSpec.from_openai(t) for t in raw_tools]
    except (ValidationError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"invalid conversation: {e}") from e
    return messages, tools


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from e
