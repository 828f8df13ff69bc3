"""`agentroll doctor`: is this model's chat template safe for token-exact RL?"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", required=True, help="tokenizer name (smollm2, qwen3, llama3, ...) or path")
    p.add_argument("--template", help="template name or .jinja file (default: the tokenizer's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from agentroll.errors import ConfigError
    from agentroll.renderers.doctor import diagnose
    from agentroll.renderers.templates import ALIASES, load_template
    from agentroll.renderers.tokenizers import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    template = load_template(args.template) if args.template else tok.chat_template
    if not template:
        raise ConfigError(f"tokenizer {args.tokenizer!r} ships no chat template: pass --template")
    registered = {name: load_template(name) for name in ALIASES}
    report = diagnose(tok, template, registered=registered)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print(report)
    return 0 if report.safe else 1


def _print(report) -> None:
    round_trip = "ok" if report.tool_call_parses else "FAILS"
    print(f"tool-call format : {report.tool_format or 'none detected'} (round trip {round_trip})")
    print(f"stop tokens      : {report.stop_tokens} ids {report.stop_token_ids}")
    print(f"thinking         : {report.thinking}")
    print(f"stateful template: {report.stateful}")
    print("prefix stability :")
    for s in report.scenarios:
        verdict = "ok" if s.ok else "UNSAFE"
        extra = f" (new segment: {s.reason})" if s.new_segment else (f" ({s.reason})" if s.reason else "")
        print(f"  {s.name:28s} {verdict}{extra}")
        if s.diff:
            print("    " + s.diff.replace("\n", "\n    "))
    print(f"recommended      : {report.recommended}")
    print("verdict          : " + ("SAFE" if report.safe else "UNSAFE: " + "; ".join(report.problems)))
