"""The view model -> one self-contained HTML file: inline CSS, JS and JSON; nothing is fetched at view time.

The page's code and style are package data (assets/report.{html,css,js}); the data goes into
`<script type="application/json">` tags: #run-data (run, summary, episode rows, vocabulary, shared
prompt prefixes) and one
#ep-N per episode, which the page parses only when that episode is selected.
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from agentroll.view.data import load_run

ASSETS = resources.files("agentroll.view") / "assets"


def render_page(model: dict[str, Any]) -> str:
    """The report as an HTML string."""
    index = {k: model[k] for k in ("run", "summary", "episodes", "vocab", "prefixes")}
    data = [_json_tag("run-data", index)]
    data += [_json_tag(f"ep-{i}", detail) for i, detail in enumerate(model["details"])]
    parts = {
        "TITLE": html.escape(model["run"]["name"]),
        "CSS": (ASSETS / "report.css").read_text(encoding="utf-8"),
        "JS": (ASSETS / "report.js").read_text(encoding="utf-8"),
        "DATA": "\n".join(data),
    }
    template = (ASSETS / "report.html").read_text(encoding="utf-8")
    # One pass, so text inside the inserted parts is never taken for a placeholder.
    return re.sub(r"\{\{(TITLE|CSS|JS|DATA)\}\}", lambda m: parts[m.group(1)], template)


def write_report(run_dir: Path, out: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Write RUN_DIR's report (default RUN_DIR/report.html); returns its path and the model it shows."""
    model = load_run(run_dir)
    out = out or run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(model), encoding="utf-8")
    return out, model


def _json_tag(tag_id: str, obj: Any) -> str:
    # A model can write "</script>" or "<!--": "<" only occurs inside JSON strings, where \u003c is the same text.
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{tag_id}">{text}</script>'
