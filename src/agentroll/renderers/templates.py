"""Chat templates shipped with agentroll, by name (file stem or short alias)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from agentroll.errors import UnknownNameError

ALIASES = {
    "chatml-tools": "chatml-tools",
    "qwen2.5": "Qwen__Qwen2.5-7B-Instruct",
    "qwen3": "Qwen__Qwen3-0.6B",
    "qwen3.5": "Qwen__Qwen3.5-4B",
    "llama3.1": "meta-llama__Llama-3.1-8B-Instruct",
    "llama3.2": "meta-llama__Llama-3.2-11B-Vision-Instruct",
    "deepseek-r1": "deepseek-ai__DeepSeek-R1",
    "hermes-2-pro": "NousResearch__Hermes-2-Pro-Llama-3-8B_JSON_Schema",
    "mistral-7b-v0.3": "mistralai__Mistral-7B-Instruct-v0.3_JSON_Schema",
    "mistral-nemo": "mistralai__Mistral-Nemo-Instruct-2407",
    "kimi-k2": "moonshotai__Kimi-K2-Thinking",
    "glm-5.1": "zai-org__GLM-5.1",
    "smollm3": "HuggingFaceTB__SmolLM3-3B",
}


def _folder() -> Path:
    return Path(str(resources.files("agentroll.renderers") / "templates"))


def available() -> list[str]:
    return sorted({*ALIASES, *(p.stem for p in _folder().glob("*.jinja"))})


def load_template(name_or_path: str) -> str:
    """A template's Jinja source from a shipped name/alias or a file path."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".jinja" and path.is_file():
        return path.read_text()
    stem = ALIASES.get(name_or_path, name_or_path)
    shipped = _folder() / f"{stem}.jinja"
    if shipped.is_file():
        return shipped.read_text()
    raise UnknownNameError("chat template", name_or_path, [*available(), "<file.jinja>"])
