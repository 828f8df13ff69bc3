"""`agentroll parse --format NAME [--mode strict|lenient]`: model output text -> content + tool calls, JSON lines.

Each input line is `{"text": "...", "tools": [OpenAI function tools]}` ("tools" optional). Each output
line is `{"content", "tool_calls": [{"id", "name", "arguments", "status", "error", "salvaged"}], "status"}`,
or `{"line": N, "error": "..."}` for an input line that could not be read; the run goes on and the exit
code is 1 if any line was bad. `--mode lenient` also uses the calls vLLM's parsers accept after a repair,
each with what was repaired in "salvaged" (docs/toolcalls.md); strict, the default, reports them with
their failure status.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from agentroll.renderers.toolcalls import available, get_parser
from agentroll.types import ParsedMessage, ParseMode, ToolSpec


class ParseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    tools: list[dict[str, Any]] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", required=True, metavar="NAME", help=f"tool-call format, one of: {', '.join(available())}"
    )
    parser.add_argument(
        "--mode",
        choices=get_args(ParseMode),
        default="strict",
        help="strict (default): only well-formed calls are usable; lenient: also the calls vLLM's parsers "
        "accept after a repair, each marked with what was repaired (salvaged)",
    )


def run(args: argparse.Namespace) -> int:
    parser = get_parser(args.format)  # an unknown name raises UnknownNameError, listing the formats
    bad = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            request = ParseRequest.model_validate_json(line)
            tools = [ToolSpec.from_openai(t) for t in request.tools]
        except (ValidationError, KeyError, TypeError, AttributeError) as e:
            bad += 1
            _write({"line": number, "error": _describe(e)})
            continue
        _write(to_json(parser.parse(request.text, tools, mode=args.mode)))
    return 1 if bad else 0


def to_json(parsed: ParsedMessage) -> dict[str, Any]:
    calls = [
        {
            "id": p.call.id if p.call else None,
            "name": p.call.name if p.call else None,
            "arguments": p.call.arguments if p.call else None,
            "status": p.status.value,
            "error": p.error,
            "salvaged": p.salvaged,
        }
        for p in parsed.tool_calls
    ]
    return {"content": parsed.message.content, "tool_calls": calls, "status": parsed.status.value}


def _describe(e: Exception) -> str:
    if isinstance(e, ValidationError):
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(line)"
        return f"bad input line: {where}: {first['msg']}"
    if isinstance(e, KeyError):
        return f"bad tool: missing {e}"
    return f"bad tool: {e}"


def _write(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()
