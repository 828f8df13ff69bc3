"""Environments by name: `environment: NAME` (+ `environment_options`) in a run config.

Built in: `tools` (the default) and the environments under agentroll/environments/. Installed packages
add theirs under the `agentroll.environments` entry-point group; a user's own is a `module:Class` path.
`agentroll envs list` shows what is installed.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from agentroll.agent.lifecycle import EnvironmentFactory
from agentroll.errors import ConfigError, UnknownNameError

BUILTIN: dict[str, str] = {
    "tools": "agentroll.agent.lifecycle:ToolsEnvironment",
    "bfcl": "agentroll.environments.bfcl:BFCLSingleTurn",
    "bfcl_multi_turn": "agentroll.environments.bfcl:BFCLMultiTurn",
    "python_session": "agentroll.environments.python_session:PythonSessionEnvironment",
    "simulated_user": "agentroll.environments.simulated_user:SimulatedUser",
    "repo_task": "agentroll.environments.repo_task:RepoTask",
}
GROUP = "agentroll.environments"


def available() -> dict[str, str]:
    """name -> "module:Class" for every environment this installation knows."""
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    return {**found, **BUILTIN}


def make_environment(spec: str, **options: Any) -> EnvironmentFactory:
    """The factory `spec` names (a registered name or `module:Class`), built with `options`."""
    target = spec if ":" in spec else available().get(spec)
    if target is None:
        raise UnknownNameError("environment", spec, sorted(available()))
    cls = _load(target)
    try:
        factory = cls(**options)
    except TypeError as e:
        raise ConfigError(f"environment {spec}: bad environment_options: {e}") from e
    if not isinstance(factory, EnvironmentFactory):
        raise ConfigError(f"environment {spec}: {target} is not an environment factory (it needs name, "
                          "max_concurrent and async setup(task, episode_id))")  # fmt: skip
    return factory


def describe(target: str) -> str:
    """The first line of an environment class's docstring ("" when it cannot be imported)."""
    try:
        doc = _load(target).__doc__ or ""
    except ConfigError:
        return "(cannot be imported)"
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"environment {target}: {type(e).__name__}: {e}") from e
