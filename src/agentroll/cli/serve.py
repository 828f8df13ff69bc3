"""`agentroll serve`: the OpenAI-compatible server with token capture (uvicorn + FastAPI).

Point any OpenAI client's base_url at http://HOST:PORT/v1, or at
http://HOST:PORT/sessions/ID/v1 to have its calls stitched into one trajectory.
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

from agentroll.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="embedded", help="embedded | vllm://H:P | sglang://H:P | A,B (pool)")
    parser.add_argument("--renderer", default="smollm2", help="renderer (model family) of the engine's model")
    parser.add_argument("--model-name", help="the `model` clients pass (default: the renderer name)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port (see --port-file)")
    parser.add_argument("--port-file", help="write the bound port here once listening (for --port 0)")
    parser.add_argument(
        "--api-key", action="append", default=[], help="accepted key (repeatable; also AGENTROLL_API_KEYS=a,b)"
    )
    parser.add_argument("--max-tokens", type=int, default=256, help="default max_tokens when a request sets none")
    parser.add_argument("--max-concurrency", type=int, default=64, help="requests in the engine at once")
    parser.add_argument("--max-queue", type=int, default=256, help="requests waiting beyond that; more get 429")
    parser.add_argument(
        "--save-dir", help="at shutdown, write all sessions to DIR/trajectories.jsonl (`agentroll export DIR` reads it)"
    )
    parser.add_argument(
        "--tool-parse",
        choices=["lenient", "strict"],
        default="lenient",
        help="lenient (vLLM's behaviour): repaired calls are returned; strict: only well-formed ones",
    )
    parser.add_argument(
        "--tool-choice-enforcement",
        choices=["guided", "opener"],
        default="guided",
        help="tool_choice required/named: guided decoding guarantees a valid call (engines with guided decoding)",
    )
    parser.add_argument("--log-level", default="warning")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from agentroll.server.app import ServerConfig, create_app

    keys = [*args.api_key, *[k for k in os.environ.get("AGENTROLL_API_KEYS", "").split(",") if k]]
    config = ServerConfig(
        engine=args.engine,
        renderer=args.renderer,
        model_name=args.model_name,
        api_keys=tuple(keys),
        default_max_tokens=args.max_tokens,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        save_dir=args.save_dir,
        tool_parse=args.tool_parse,
        tool_choice_enforcement=args.tool_choice_enforcement,
    )
    # Bound before the engine starts (~30 s), so the port cannot be taken meanwhile; --port 0 picks one.
    sock = _listen(args.host, args.port)
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(sock.getsockname()[1]))
        tmp.replace(args.port_file)
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level=args.log_level))
    server.run(sockets=[sock])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port}: {e}") from e
    sock.listen(2048)
    return sock
