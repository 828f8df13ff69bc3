"""`agentroll` console script: one subcommand per module, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys

from agentroll.errors import AgentrollError

# name -> (module, one-line help). Each module has `add_arguments(parser)` and `run(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "parse": ("agentroll.cli.parse", "parse model output text into tool calls (JSON lines in/out)"),
    "render": ("agentroll.cli.render", "render messages (+ tools) to token IDs with a chat template"),
    "doctor": ("agentroll.cli.doctor", "is this model's chat template safe for token-exact RL?"),
    "engine": ("agentroll.cli.engine", "inference engines: `engine check`"),
    "tools": ("agentroll.cli.tools", "tools: `tools list`, `tools call`"),
    "envs": ("agentroll.cli.envs", "environments a run config can name: `envs list`"),
    "run": ("agentroll.cli.run", "run a dataset of episodes to a run directory (resumable)"),
    "verify": (
        "agentroll.cli.verify",
        "recompute a run's logprobs (transformers or an engine); fail on a breach",
    ),
    "eval": ("agentroll.cli.eval", "evaluate a checkpoint on a config's tasks: pass@k, reward, tool use, --compare"),
    "export": ("agentroll.cli.export", "export a run: jsonl | parquet | hf | verl | trl"),
    "serve": ("agentroll.cli.serve", "OpenAI-compatible server that captures every token into trajectories"),
    "bench": ("agentroll.cli.bench", "benchmarks P1-P4 + routing, side by side in one run (--json)"),
    "view": ("agentroll.cli.view", "write a self-contained HTML report of a run directory"),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(prog="agentroll", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only the chosen command's module is imported
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            modules[name] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser, modules = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(modules[args.command].run(args) or 0)
    except AgentrollError as e:
        print(f"agentroll {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
