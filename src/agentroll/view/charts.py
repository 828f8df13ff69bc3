"""Small self-contained SVG charts (no plotting library): what `agentroll eval` draws."""

from __future__ import annotations

from html import escape
from typing import Any

BAR_H, GAP, LEFT, WIDTH = 22, 8, 220, 420
COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2")


def pass_chart(result: dict[str, Any]) -> str:
    """Horizontal bars of each candidate's pass@1 (and per category), with their 95% intervals as whiskers."""
    rows: list[tuple[str, dict[str, Any], str]] = []
    for i, (label, report) in enumerate(result["candidates"].items()):
        colour = COLOURS[i % len(COLOURS)]
        rows.append((label, report.get("pass@1") or {}, colour))
        rows += [(f"  {name}", part.get("pass@1") or {}, colour) for name, part in report.get("categories", {}).items()]
    height = 40 + len(rows) * (BAR_H + GAP) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 90}" height="{height}"'
        ' font-family="sans-serif" font-size="12">',
        f'<text x="10" y="20" font-size="14">pass@1 ({escape(result["metric"])}), 95% interval over tasks</text>',
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x = LEFT + tick * WIDTH
        out.append(f'<line x1="{x}" y1="30" x2="{x}" y2="{height - 25}" stroke="#ddd"/>')
        out.append(f'<text x="{x}" y="{height - 10}" text-anchor="middle">{tick:g}</text>')
    for n, (label, v, colour) in enumerate(rows):
        y = 36 + n * (BAR_H + GAP)
        out.append(f'<text x="{LEFT - 8}" y="{y + BAR_H * 0.7}" text-anchor="end">{escape(label)}</text>')
        if v.get("mean") is None:
            continue
        out.append(f'<rect x="{LEFT}" y="{y}" width="{v["mean"] * WIDTH:.1f}" height="{BAR_H}" fill="{colour}"/>')
        lo, hi, mid = LEFT + v["low"] * WIDTH, LEFT + v["high"] * WIDTH, y + BAR_H / 2
        out.append(f'<line x1="{lo:.1f}" y1="{mid}" x2="{hi:.1f}" y2="{mid}" stroke="#222" stroke-width="1.5"/>')
        out.append(f'<text x="{LEFT + WIDTH + 8}" y="{y + BAR_H * 0.7}">{v["mean"]:.3f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
