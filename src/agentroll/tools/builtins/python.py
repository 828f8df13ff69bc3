"""`python`: run a program in the bubblewrap sandbox (see tools/sandbox.py) and report what it printed.

The model reads the exit status, stdout and stderr (each truncated to a cap); metadata
carries the same facts as fields (`exit_code`, `timed_out`, `truncated`, ...) for rewards.
A program that fails, hits a limit or is killed is an error result; the run goes on.
"""

from __future__ import annotations

import signal
from typing import Any

from agentroll.tools.base import ToolOutput
from agentroll.tools.sandbox import SandboxLimits, SandboxResult, run_python
from agentroll.types import ToolSpec

_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "A complete Python 3 program. Print what you want to see."}
    },
    "required": ["code"],
    "additionalProperties": False,
}


class PythonTool:
    """The `python` built-in (Tool protocol). Options are the sandbox limits."""

    def __init__(self, limits: SandboxLimits | None = None, *, name: str = "python"):
        self.limits = limits or SandboxLimits()
        self.spec = ToolSpec(
            name=name,
            description=(
                "Run a Python 3 program in a sandbox (no network, no files outside its working directory,"
                f" {self.limits.timeout_s:g} s wall-clock limit, {self.limits.memory_mb} MB memory) and"
                " return its exit status, stdout and stderr."
            ),
            input_schema=_SCHEMA,
        )
        # The sandbox enforces its own deadline; this outer one only guards against a wedged sandbox.
        self.timeout_s: float | None = self.limits.timeout_s + 10.0

    async def run(self, arguments: dict[str, Any]) -> ToolOutput:
        result = await run_python(arguments["code"], self.limits)
        return ToolOutput(
            content=_report(result, self.limits),
            metadata={
                "exit_code": result.exit_code,
                "timed_out": result.timed_out,
                "truncated": result.truncated,
                "sandbox_s": round(result.duration_s, 4),
            },
            is_error=result.timed_out or result.exit_code != 0,
        )


def _report(r: SandboxResult, limits: SandboxLimits) -> str:
    if r.timed_out:
        status = f"killed: wall-clock limit of {limits.timeout_s:g} s reached"
    elif r.exit_code is not None and r.exit_code > 128:  # bwrap reports a signalled child as 128 + signal
        status = f"killed by {_signal_name(r.exit_code - 128)} (CPU-time or memory limit)"
    else:
        status = f"exit code {r.exit_code}"
    parts = [status]
    for label, text in (("stdout", r.stdout), ("stderr", r.stderr)):
        if text:
            parts.append(f"{label}:\n{text.rstrip()}")
    if r.truncated:
        parts.append(f"(output truncated to {limits.max_output_bytes} bytes per stream)")
    return "\n".join(parts)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
