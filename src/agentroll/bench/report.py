"""Run the selected benchmarks and present them: targets, the table, the JSON object, docs/benchmarks.md."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentroll.bench.common import machine, now_utc

BENCHMARKS = ("p1", "p2", "p3", "p4", "p5", "routing")
HEADLINE_KEYS = (
    "p1_loop_efficiency", "p2_tokens_per_s", "p2_turns_per_s", "p3_cost_growth", "p4_bridge_speedup",
    "p5_loop_efficiency",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    label: str
    op: str  # ">=" or "<="
    value: float

    def met(self, figure: float) -> bool:
        return figure >= self.value if self.op == ">=" else figure <= self.value


TARGETS = (
    Target("p1_loop_efficiency", "P1 loop efficiency (loop tok/s / raw engine tok/s)", ">=", 0.97),
    Target("p2_tokens_per_s", "P2 orchestration ceiling, sampled tokens/s (one core)", ">=", 1_000_000),
    Target("p2_turns_per_s", "P2 orchestration ceiling, turns/s (one core)", ">=", 5_000),
    Target("p3_cost_growth", "P3 per-turn loop cost, turn 64 / turn 1", "<=", 1.1),
    Target("p4_bridge_speedup", "P4 bridge vs full re-render + encode (32 turns)", ">=", 20),
    Target("p5_loop_efficiency", "P5 loop efficiency, tools of 1-2 s, episodes over-subscribed", ">=", 0.95),
)
# Figures shown without a target (side-by-side context).
EXTRA = {
    "p2_checked_tokens_per_s": "P2 with check_prefix=end (default), tokens/s",
    "p2_checked_turns_per_s": "P2 with check_prefix=end (default), turns/s",
    "p4_speedup_at_64": "P4 speedup at 64 turns",
    "p4_bridge_growth_64_over_1": "P4 bridge cost, 64 turns / 1 turn",
    "p5_loop_efficiency_without_oversubscription": "P5 with episodes in flight = engine batch",
}


def run(names: Sequence[str], *, quick: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """Measure each named benchmark in order; a module that is not there yet is skipped and said so."""
    results: dict[str, Any] = {"date": now_utc(), "machine": machine(), "quick": quick, "skipped": {}}
    for key in HEADLINE_KEYS:
        results[key] = None
    for name in names:
        try:
            module = importlib.import_module(f"agentroll.bench.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"agentroll.bench.{name}":
                raise
            results["skipped"][name] = f"module agentroll.bench.{name} is not there yet"
            say(f"bench {name}: skipped (agentroll.bench.{name} is not there yet)")
            continue
        say(f"bench {name}: measuring{' (quick)' if quick else ''} ...")
        results.update(module.measure(quick=quick))
    return results


def table(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, PASS/MISS/-) rows for every target and every extra figure measured."""
    rows = []
    for t in TARGETS:
        figure = results.get(t.key)
        if figure is None:
            rows.append((t.label, "not measured", f"{t.op} {_fmt(t.value)}", "-"))
        else:
            rows.append((t.label, _fmt(figure), f"{t.op} {_fmt(t.value)}", "PASS" if t.met(figure) else "MISS"))
    for key, label in EXTRA.items():
        if results.get(key) is not None:
            rows.append((label, _fmt(results[key]), "", ""))
    for key in sorted(results):
        if key.startswith("routing_") and not key.endswith("_notes") and isinstance(results[key], int | float):
            rows.append((key, _fmt(results[key]), "", ""))
    return rows


def format_table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("benchmark", "measured", "target", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(results: dict[str, Any], command: str) -> str:
    """docs/benchmarks.md: date, machine, the table, each benchmark's notes, how to reproduce."""
    m = results["machine"]
    rows = table(results)
    out = [
        "# agentroll benchmarks",
        "",
        f"Measured {results['date']} with `{command}`{' (quick variant)' if results.get('quick') else ''}.",
        "",
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"vllm {m['vllm']}, torch {m['torch']}, transformers {m['transformers']}, tokenizers {m['tokenizers']}. "
        f"Load average when the run started: {m.get('load_avg_1m')} (other work shares the machine; every ratio is "
        "measured side by side in one run).",
        "",
        "| benchmark | measured | target | |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "## How each was measured",
        "",
    ]
    for name in BENCHMARKS:
        notes = results.get(f"{name}_notes")
        if notes:
            out += [f"- **{name}**: {notes}", ""]
        elif name in results.get("skipped", {}):
            out += [f"- **{name}**: not measured ({results['skipped'][name]}).", ""]
    out += ["## All figures", "", "Every figure of the run, per-round values included (`--json` prints the same).", ""]
    out += [f"- `{k}`: {_fmt(v)}" for k, v in sorted(results.items()) if _is_figure(k, v)]
    out += ["", "## Reproduce", "", "```", command, "```", ""]
    return "\n".join(out)


def _is_figure(key: str, value: Any) -> bool:
    return key.split("_")[0] in BENCHMARKS and not key.endswith("_notes") and value is not None


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value < 100:
        return f"{value:.3g}"
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return str(value)
