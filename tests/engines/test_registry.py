"""Engine specs resolve to the right engine, and a wrong one fails with a message that helps."""

from __future__ import annotations

import asyncio

import pytest

from agentroll.engines.base import check_context, normalize_finish_reason
from agentroll.engines.registry import ENGINES, make_engine, parse_spec
from agentroll.errors import ConfigError, ContextOverflow, UnknownNameError
from agentroll.types import SamplingParams


def test_spec_splits_into_scheme_url_and_options() -> None:
    assert parse_spec("vllm://127.0.0.1:8000") == ("vllm", "http://127.0.0.1:8000", {})
    assert parse_spec("openai://localhost:9000/api/v1/") == ("openai", "http://localhost:9000/api/v1", {})
    assert parse_spec("embedded?dtype=bfloat16&max_model_len=4096") == (
        "embedded",
        "",
        {"dtype": "bfloat16", "max_model_len": "4096"},
    )


def test_unknown_scheme_names_the_available_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        make_engine("tgi://127.0.0.1:80")
    assert "tgi" in str(err.value) and all(name in str(err.value) for name in ENGINES)


def test_server_spec_without_a_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        make_engine("vllm://localhost")


def test_each_scheme_builds_its_engine_without_touching_the_network() -> None:
    for spec, name in [("vllm://127.0.0.1:1", "vllm"), ("sglang://127.0.0.1:1", "sglang"), ("embedded", "embedded")]:
        engine = make_engine(spec)
        assert engine.name == name
        asyncio.run(engine.aclose())
    openai = make_engine("openai://127.0.0.1:1")
    assert openai.base_url == "http://127.0.0.1:1/v1"  # the /v1 default path
    asyncio.run(openai.aclose())


def test_comma_separated_specs_build_one_pool() -> None:
    pool = make_engine("vllm://127.0.0.1:1, vllm://127.0.0.1:2")
    assert pool.name == "pool"
    assert [m.name for m in pool.members] == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    asyncio.run(pool.aclose())


def test_a_request_that_cannot_fit_the_context_is_refused() -> None:
    check_context(1000, SamplingParams(max_tokens=1048), 2048)  # exactly full is fine
    with pytest.raises(ContextOverflow, match="max_model_len"):
        check_context(1001, SamplingParams(max_tokens=1048), 2048)
    check_context(10**6, SamplingParams(), None)  # unknown window: the server decides


def test_finish_reasons_collapse_to_stop_length_abort() -> None:
    assert [normalize_finish_reason(r) for r in ("stop", "eos", "length", "max_tokens", "abort", None, "error")] == [
        "stop",
        "stop",
        "length",
        "length",
        "abort",
        "abort",
        "abort",
    ]
