"""Built-in tools by exact name, each built lazily by a factory that takes the config's options."""

from __future__ import annotations

import importlib
from typing import Any

from agentroll.errors import ConfigError, UnknownNameError

BUILTINS: dict[str, str] = {
    "calculator": "agentroll.tools.builtins.calculator:make_calculator",
    "python": "agentroll.tools.builtins:_make_python",
    "retrieve": "agentroll.tools.builtins.retrieve:RetrieveTool",
}


def make_builtin(name: str, **options: Any) -> Any:
    """The built-in tool `name`, built with `options` (e.g. python's sandbox limits, retrieve's corpus)."""
    if name not in BUILTINS:
        raise UnknownNameError("built-in tool", name, list(BUILTINS))
    module, attr = BUILTINS[name].split(":")
    factory = getattr(importlib.import_module(module), attr)
    try:
        return factory(**options)
    except TypeError as e:  # an option the tool does not take
        raise ConfigError(f"built-in tool {name}: bad options {sorted(options)}: {e}") from e


def _make_python(**limits: Any) -> Any:
    from agentroll.tools.builtins.python import PythonTool
    from agentroll.tools.sandbox import SandboxLimits

    return PythonTool(SandboxLimits(**limits))
