"""`agentroll bench` end to end (P2-P4, quick): one JSON object with the headline figures, the machine and
the date, and a markdown report. Values are checked for sanity, not against targets (CI machines are shared)."""

from __future__ import annotations

import json

import pytest

from agentroll.bench import report
from agentroll.cli.main import main


def test_bench_json_has_every_headline_figure_and_the_machine(capsys, tmp_path):
    doc = tmp_path / "benchmarks.md"
    assert main(["bench", "--only", "p2,p3,p4", "--quick", "--json", "--write", str(doc)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(report.HEADLINE_KEYS) <= set(out)
    assert out["p1_loop_efficiency"] is None  # not selected: present, but not measured
    assert out["p2_tokens_per_s"] > 1_000 and out["p2_turns_per_s"] > 5
    assert 150 < out["p2_tokens_per_s"] / out["p2_turns_per_s"] < 250  # the scripted turns' length
    assert out["p2_checked_turns_per_s"] > 0
    assert 0.2 < out["p3_cost_growth"] < 5 and len(out["p3_by_turn_us"]) == 64
    assert out["p4_bridge_speedup"] > 1 and out["p4_full_ms_at_64"] > out["p4_full_ms_at_1"]
    assert {"cpu", "logical_cores", "ram_gib", "python", "vllm", "torch", "transformers"} <= set(out["machine"])
    assert out["date"].endswith("UTC")
    text = doc.read_text()
    assert "| P2 orchestration ceiling, turns/s (one core) |" in text
    assert "agentroll bench --only p2,p3,p4 --quick --write" in text and out["machine"]["cpu"] in text


def test_a_benchmark_module_that_is_not_there_yet_is_skipped_and_said():
    said = []
    results = report.run(["p9"], quick=True, say=said.append)
    assert "p9" in results["skipped"] and "skipped" in said[0]


def test_an_unknown_benchmark_name_is_refused(capsys):
    assert main(["bench", "--only", "p2,nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_table_marks_each_target_pass_or_miss():
    rows = report.table({"p2_turns_per_s": 6000, "p3_cost_growth": 1.5})
    marks = {label: mark for label, _, _, mark in rows}
    assert marks["P2 orchestration ceiling, turns/s (one core)"] == "PASS"
    assert marks["P3 per-turn loop cost, turn 64 / turn 1"] == "MISS"
    assert marks["P1 loop efficiency (loop tok/s / raw engine tok/s)"] == "-"


@pytest.mark.parametrize("value,shown", [(0.987, "0.987"), (1234567.0, "1,234,567"), (42, "42")])
def test_figures_are_formatted_for_reading(value, shown):
    assert report._fmt(value) == shown
