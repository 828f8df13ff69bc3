"""`agentroll eval`'s run folders: one per candidate, named after it, never shared by two engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentroll.cli.eval import _labelled, _resumable
from agentroll.errors import ConfigError


def test_a_candidate_is_named_after_its_checkpoint_folder_or_its_address():
    assert list(_labelled(["embedded?model=/ck/step-40", "vllm://127.0.0.1:8000"])) == [
        "step-40",
        "vllm_127.0.0.1_8000",
    ]
    assert list(_labelled(["embedded?model=/ck/step-40&dtype=bfloat16"])) == ["step-40"]
    assert list(_labelled(["embedded", "embedded"])) == ["embedded-0", "embedded-1"]


def test_an_eval_folder_of_another_engine_is_refused_not_mixed(tmp_path: Path):
    assert not _resumable(tmp_path, "embedded", overwrite=False)  # nothing there yet: a fresh run
    (tmp_path / "run.json").write_text(json.dumps({"config": {"engine": "embedded?model=/ck/a"}}))
    assert _resumable(tmp_path, "embedded?model=/ck/a", overwrite=False)  # the same engine: finish it
    with pytest.raises(ConfigError, match=r"holds an eval of 'embedded\?model=/ck/a'.*--overwrite"):
        _resumable(tmp_path, "embedded?model=/ck/b", overwrite=False)
    assert not _resumable(tmp_path, "embedded?model=/ck/b", overwrite=True)
