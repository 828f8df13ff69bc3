"""The run config (pydantic at the edge): dataset x samples per task x tools x engine x rewards.

    dataset: {path: data/gsm8k/test.jsonl, question_field: question, answer_field: answer,
              answer_pattern: "####\\s*(.+)$", limit: 8}
    system_prompt: "You are ..."
    samples_per_task: 2
    engine: embedded
    renderer: smollm2
    tools: [calculator]              # built-in names, or a tools YAML path (agentroll.tools.load_toolset)
    episode: {max_turns: 4, sampling: {max_tokens: 256, temperature: 0.7, seed: 0}}
    rewards: {exact_match: 1.0}
    concurrency: 16
    output_dir: runs/gsm8k_calculator

Relative paths (dataset, tools YAML) are relative to the config file. Unknown keys are errors naming the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentroll.agent.rewards import get_reward
from agentroll.agent.task import EpisodeConfig
from agentroll.errors import ConfigError
from agentroll.types import Message

_STRICT = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(BaseModel):
    """Where the rows are and how a row becomes a Task."""

    model_config = _STRICT

    path: str
    # None: from the suffix, else hf. bfcl: `path` is a BFCL v4 category, read from the installed bfcl-eval
    # (environments/bfcl.py: the rows carry messages, turns, function, ground_truth).
    format: Literal["jsonl", "parquet", "hf", "hf-datasets", "bfcl"] | None = None
    split: str = "train"  # hf only
    question_field: str = "question"  # -> the user message
    question_template: str = "{question}"  # how the question is worded to the model ({question}: the field)
    messages_field: str | None = None  # a row that already holds OpenAI-style messages (wins over question)
    answer_field: str | None = "answer"
    answer_pattern: str | None = None  # regex; group 1 of its last match is the answer (e.g. GSM8K's `#### N`)
    id_field: str | None = None  # None: the row's position in the dataset
    offset: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=1)  # rows to use from offset; None: all


class RunConfig(BaseModel):
    model_config = _STRICT

    dataset: DatasetConfig
    system_prompt: str | None = None
    examples: tuple[Message, ...] = ()  # few-shot messages between the system prompt and the question
    samples_per_task: int = Field(1, ge=1)
    engine: str = "embedded"
    renderer: str = "smollm2"
    tools: str | tuple[str, ...] = ()  # a tools YAML path, or built-in tool names
    # Set up and torn down per episode (agent/lifecycle.py): a registered name (`agentroll envs list`) or a
    # `module:Class` path, built with `environment_options`. Its reward components are rewards `env:NAME`.
    environment: str = "tools"
    environment_options: dict[str, Any] = Field(default_factory=dict)
    episode: EpisodeConfig = EpisodeConfig()
    # name -> weight; names are checked here (a misspelt one is an error, not a 0 per episode) and `env:NAME`
    # against the environment's declared components when the run starts (agent.rewards.check_environment_rewards)
    rewards: dict[str, float] = Field(default_factory=lambda: {"exact_match": 1.0})
    concurrency: int = Field(16, ge=1)  # episodes in flight
    # Off-policy limit (rollout/staleness.py): an episode whose oldest token is more than this many policy
    # versions behind when it finishes is played again (on_stale: rerun) or kept and marked (keep).
    max_staleness: int | None = Field(None, ge=0)
    on_stale: Literal["rerun", "keep"] = "rerun"
    # Weight updates (the stream's update_weights): every version is recorded in RUN_DIR/versions.jsonl by its
    # fingerprint; the weights of the last `keep_versions` are also kept in RUN_DIR/weights/ (a folder each, what
    # `agentroll verify --reference hf` checks those versions' tokens against). 0: fingerprints only.
    keep_versions: int = Field(0, ge=0)
    output_dir: str | None = None  # None: runs/<config file stem>
    base_dir: str = "."  # set by load_config: the config file's folder (relative paths resolve from it)

    @field_validator("rewards")
    @classmethod
    def _known_rewards(cls, rewards: dict[str, float]) -> dict[str, float]:
        for name, weight in rewards.items():
            get_reward(name)  # UnknownNameError names the available ones
            if not math.isfinite(weight):
                raise ValueError(f"{name}: weight {weight} is not a finite number")
        return rewards

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


def load_config(path: str | Path, **overrides: Any) -> RunConfig:
    """Read and validate a run config YAML; `overrides` replace top-level keys (None values are ignored)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"run config {path}: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"run config {path}: expected a mapping at the top level")
    raw.setdefault("base_dir", str(path.resolve().parent))
    raw.setdefault("output_dir", str(Path("runs") / path.stem))
    return config_from_dict(raw, **overrides)


def config_from_dict(raw: dict[str, Any], **overrides: Any) -> RunConfig:
    data = dict(raw)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "limit":
            data["dataset"] = {**data.get("dataset", {}), "limit": value}
        else:
            data[key] = value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"run config: {_describe(e)}") from e


def _describe(e: ValidationError) -> str:
    """One line per problem, naming the key (`dataset.pathh: Extra inputs are not permitted`)."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
