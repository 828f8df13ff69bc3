"""Engine specs -> engines. One registry line per scheme, imported lazily.

Spec grammar (the CLI's `--engine`):
    embedded[?model=DIR&dtype=float32&max_model_len=2048]
    vllm://HOST:PORT          sglang://HOST:PORT          openai://HOST:PORT[/path]
    A,B,...                   several servers behind one pool (sticky per session, least-loaded)
Query options after `?` are passed to the engine's constructor as keyword strings.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from agentroll.engines.base import Engine
from agentroll.errors import ConfigError, UnknownNameError

ENGINES: dict[str, str] = {
    "embedded": "agentroll.engines.embedded:EmbeddedEngine",
    "vllm": "agentroll.engines.vllm_server:VLLMServerEngine",
    "sglang": "agentroll.engines.sglang:SGLangEngine",
    "openai": "agentroll.engines.openai_compat:OpenAIEngine",
}


def make_engine(spec: str, **kwargs: Any) -> Engine:
    """Build the engine a spec names. Comma-separated specs build a pool of them."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ConfigError("engine spec is empty")
    if len(parts) > 1:
        from agentroll.engines.pool import PoolEngine

        return PoolEngine([make_engine(p, **kwargs) for p in parts])
    scheme, target, options = parse_spec(parts[0])
    cls = _load(scheme)
    return cls(target, **options, **kwargs) if target else cls(**options, **kwargs)


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split a single spec into (scheme, base URL or "", options)."""
    head, _, query = spec.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    if "://" not in head:
        return head, "", options
    scheme, _, rest = head.partition("://")
    url = urlsplit("http://" + rest)
    if not url.hostname or not url.port:
        raise ConfigError(f"engine spec {spec!r}: expected {scheme}://HOST:PORT[/path]")
    return scheme, f"http://{url.netloc}{url.path.rstrip('/')}", options


def _load(scheme: str) -> type:
    if scheme not in ENGINES:
        raise UnknownNameError("engine", scheme, list(ENGINES))
    module_name, _, attr = ENGINES[scheme].partition(":")
    return getattr(importlib.import_module(module_name), attr)
