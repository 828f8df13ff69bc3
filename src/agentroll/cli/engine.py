"""`agentroll engine check`: is this engine up, and are its logprobs the ones a trainer will see?

Prints one JSON object: health, models, max_model_len, a short seeded generation (token IDs,
text, logprobs) and `max_logprob_delta`, the largest |sampled - teacher-forced| logprob over
that generation. Exits non-zero when the engine is unhealthy, cannot be checked, or the delta
exceeds 1e-3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from agentroll.engines.base import PromptScorer
from agentroll.engines.registry import make_engine
from agentroll.engines.verify import TOLERANCE, check_logprobs
from agentroll.errors import AgentrollError
from agentroll.types import SamplingParams

DEFAULT_PROMPT = "What is the capital of France? Answer in one sentence."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="health, model, a seeded generation and its teacher-forced logprob delta")
    check.add_argument(
        "--engine", default="embedded", help="embedded | vllm://H:P | sglang://H:P | openai://H:P[/path]"
    )
    check.add_argument("--prompt", default=DEFAULT_PROMPT, help="user message, rendered with the tokenizer's template")
    check.add_argument("--prompt-ids", help="JSON list of prompt token IDs (skips the tokenizer)")
    check.add_argument("--tokenizer", help="tokenizer directory (default: the default model's checkpoint)")
    check.add_argument("--max-tokens", type=int, default=16)
    check.add_argument("--temperature", type=float, default=1.0)
    check.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(engine_check(args))
    print(json.dumps(report))
    return 0 if report["ok"] else 1


async def engine_check(args: argparse.Namespace) -> dict[str, Any]:
    tokenizer = _tokenizer(args.tokenizer) if args.prompt_ids is None or args.tokenizer else None
    prompt_ids = json.loads(args.prompt_ids) if args.prompt_ids else _render(tokenizer, args.prompt)
    engine = make_engine(args.engine)
    report: dict[str, Any] = {"engine": args.engine, "healthy": False, "ok": False}
    try:
        report["healthy"] = await engine.health()
        if not report["healthy"]:
            report["error"] = "engine is not healthy"
            return report
        report["models"] = await engine.models()
        report["max_model_len"] = engine.max_model_len
        sp = SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed, logprobs=1)
        c = await engine.generate(prompt_ids, sp, session_id="engine-check")
        text = tokenizer.decode(c.token_ids) if tokenizer is not None else c.meta.get("text")
        report["generation"] = {
            "prompt_ids": list(prompt_ids),
            "token_ids": c.token_ids,
            "text": text,
            "logprobs": c.logprobs,
            "finish_reason": c.finish_reason,
            "token_exact": c.token_exact,
            "meta": {k: v for k, v in c.meta.items() if k != "text"},
        }
        if not isinstance(engine, PromptScorer):
            report["error"] = f"{engine.name} cannot compute teacher-forced logprobs"
            return report
        check = await check_logprobs(engine, prompt_ids, c, session_id="engine-check")
        report["teacher_forced_logprobs"] = check.teacher_forced
        report["max_logprob_delta"] = check.max_delta
        report["tolerance"] = TOLERANCE
        report["ok"] = check.ok and c.token_exact
    except AgentrollError as e:
        report["error"] = f"{type(e).__name__}: {e}"
    finally:
        await engine.aclose()
    return report


def _tokenizer(path: str | None) -> Any:
    from transformers import AutoTokenizer

    if path is None:
        from agentroll.engines.checkpoint import ensure_default_checkpoint

        path = str(ensure_default_checkpoint())
    return AutoTokenizer.from_pretrained(path)


def _render(tokenizer: Any, text: str) -> list[int]:
    messages = [{"role": "user", "content": text}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    return [int(t) for t in ids]


if __name__ == "__main__":  # the embedded engine spawns workers: guard the entry point
    from agentroll.cli.main import main

    sys.exit(main(["engine", *sys.argv[1:]]))
