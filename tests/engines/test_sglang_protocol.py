"""SGLang's native /generate protocol, as documented: request building and response parsing.

SGLang cannot run on these machines, so this is NOT an integration test: it checks that what we
send follows the documented request fields and that documented response shapes become the
right Completion (IDs from output_token_logprobs, aligned logprobs, top-k best first, finish
reasons, cache hits) and that malformed answers are typed errors, not silent garbage.
"""

from __future__ import annotations

import pytest

from agentroll.engines.sglang import context_length, generate_payload, parse_generate, parse_input_logprobs
from agentroll.errors import EngineError
from agentroll.types import SamplingParams


def test_request_sends_token_ids_and_asks_for_logprobs() -> None:
    sp = SamplingParams(temperature=0.7, max_tokens=32, top_k=20, stop=("</tool_call>",), seed=3, logprobs=4)
    payload = generate_payload([1, 2, 3], sp, "rid-1")
    assert payload["input_ids"] == [1, 2, 3] and "text" not in payload  # token-in, never text
    assert payload["rid"] == "rid-1" and payload["return_logprob"] is True and payload["top_logprobs_num"] == 4
    params = payload["sampling_params"]
    assert params["max_new_tokens"] == 32 and params["temperature"] == 0.7 and params["top_k"] == 20
    assert params["stop"] == ["</tool_call>"] and params["sampling_seed"] == 3
    assert params["no_stop_trim"] is True and params["skip_special_tokens"] is False
    assert "top_logprobs_num" not in generate_payload([1], SamplingParams(), "r")  # sampled logprob only


def documented_response(finish: dict) -> dict:
    # Shape from SGLang's native API docs: entries are [logprob, token_id, token_text or null].
    return {
        "text": " Paris.",
        "output_ids": [12095, 30],
        "meta_info": {
            "id": "rid-1",
            "finish_reason": finish,
            "prompt_tokens": 9,
            "completion_tokens": 2,
            "cached_tokens": 8,
            "output_token_logprobs": [[-0.25, 12095, None], [-1.5, 30, None]],
            "output_top_logprobs": [
                [[-2.0, 7, None], [-0.25, 12095, None]],
                [[-1.5, 30, None], [-0.5, 13, None]],
            ],
        },
    }


def test_documented_response_becomes_an_aligned_completion() -> None:
    c = parse_generate(documented_response({"type": "stop", "matched": 2}), k=2)
    assert c.token_ids == [12095, 30] and c.logprobs == [-0.25, -1.5]
    assert c.top_logprobs == [[(12095, -0.25), (7, -2.0)], [(13, -0.5), (30, -1.5)]]  # best first
    assert (c.finish_reason, c.prompt_tokens, c.cached_prompt_tokens) == ("stop", 9, 8)
    assert c.token_exact and c.meta["text"] == " Paris."


@pytest.mark.parametrize(("finish", "expected"), [({"type": "length", "length": 2}, "length"), (None, "abort")])
def test_finish_reasons_map_onto_ours(finish: dict | None, expected: str) -> None:
    assert parse_generate(documented_response(finish), k=0).finish_reason == expected


def test_abort_keeps_the_server_message() -> None:
    c = parse_generate(documented_response({"type": "abort", "message": "client disconnected"}), k=0)
    assert c.finish_reason == "abort" and c.meta["abort_message"] == "client disconnected"


def test_missing_or_inconsistent_token_data_is_an_error() -> None:
    body = documented_response({"type": "stop"})
    del body["meta_info"]["output_token_logprobs"]
    with pytest.raises(EngineError, match="return_logprob"):
        parse_generate(body, k=0)
    body = documented_response({"type": "stop"})
    body["output_ids"] = [1, 2]
    with pytest.raises(EngineError, match="disagree"):
        parse_generate(body, k=0)


def test_input_logprobs_are_checked_against_the_prompt() -> None:
    body = {"meta_info": {"input_token_logprobs": [[None, 1, None], [-3.0, 5, None]]}}
    assert parse_input_logprobs(body, [1, 5]) == [None, -3.0]
    with pytest.raises(EngineError, match="!= prompt token"):
        parse_input_logprobs(body, [1, 6])


def test_context_length_is_read_from_server_info() -> None:
    assert context_length({"context_length": 4096}) == 4096
    assert context_length({"internal_states": [{"context_length": 8192}]}) == 8192
    assert context_length({}) is None


def test_weight_update_requests_follow_sglangs_documented_types(tmp_path) -> None:
    """UpdateWeightFromDiskReqInput and PauseGenerationReqInput as SGLang documents them (not run against SGLang)."""
    from agentroll.engines.sglang import PAUSE_MODES, SGLangEngine, update_payload

    assert update_payload(tmp_path, 7) == {"model_path": str(tmp_path), "weight_version": "7", "flush_cache": True}
    # abort ends requests in flight; keep = retract (they recompute on the new weights); wait = the update drains
    assert PAUSE_MODES == {"abort": "abort", "keep": "retract", "wait": None}
    engine = SGLangEngine("http://127.0.0.1:1", logprobs_mode="processed")
    assert engine.policy_version == 0 and engine.logprobs_mode == "processed"
    with pytest.raises(ValueError, match="logprobs_mode"):
        SGLangEngine("http://127.0.0.1:1", logprobs_mode="sampled")
