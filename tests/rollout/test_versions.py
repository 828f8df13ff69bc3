"""Which weights a policy version was: fingerprints that name the same weights however they are held, and the
kept folders `agentroll verify --reference hf` loads (rollout/versions.py), on the real SmolLM2 checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentroll.engines.weights import fingerprint
from agentroll.rollout.versions import VersionReferences, WeightKeeper, read_versions, write_versions


@pytest.fixture(scope="module")
def state_dict(model_dir: Path) -> dict[str, Any]:
    """What a trainer holds: transformers' model of the checkpoint (its LM head tied to the embedding)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    weights = model.state_dict()
    assert weights["lm_head.weight"].data_ptr() == weights["model.embed_tokens.weight"].data_ptr()
    return weights


def test_a_state_dict_and_the_folder_it_was_saved_to_have_one_fingerprint(
    model_dir: Path, state_dict: dict[str, Any]
) -> None:
    # the folder stores the tied matrix once (no lm_head.weight), the state dict under both names
    assert fingerprint(state_dict) == fingerprint(model_dir)
    moved = dict(state_dict)
    moved["model.norm.weight"] = moved["model.norm.weight"] + 1e-6
    assert fingerprint(moved) != fingerprint(model_dir)


def test_the_last_versions_are_kept_as_folders_a_reference_loads_and_older_ones_say_they_are_gone(
    model_dir: Path, state_dict: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    keeper = WeightKeeper(out / "weights", keep=1, model_dir=model_dir)
    assert keeper.start().weights == model_dir.resolve()  # version 0: the engine's own folder, not copied
    moved = {name: t.clone() for name, t in state_dict.items()}
    moved["model.norm.weight"] += 0.5
    first = keeper.add(1, moved)
    assert first.fingerprint == fingerprint(moved) and (first.weights / "config.json").exists()
    second = keeper.add(2, model_dir)  # a checkpoint folder works the same
    assert not first.available() and second.available() and second.fingerprint == fingerprint(model_dir)

    run = out / "train-step-00002"
    write_versions(run, keeper.versions)
    assert (run / "versions.jsonl").read_text().count("../weights/version-00002") == 1  # moves with OUT
    recorded = read_versions(run)
    assert recorded[2].weights == second.weights and recorded[1].weights == first.weights
    references = VersionReferences(run, models=[], default=None)
    assert references.get(2) is not None and references.get(1) is None
    assert "version 1" in references.why_missing(1) and "is gone" in references.why_missing(1)
    assert references.get(7) is None and "did not record" in references.why_missing(7)


def test_without_a_model_folder_only_fingerprints_are_kept_and_it_says_so(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="keep_versions 2: kept weights need the engine's model folder"):
        keeper = WeightKeeper(tmp_path / "weights", keep=2, model_dir=None)  # e.g. a server started on a hub name
    assert keeper.keep == 0 and keeper.start() is None


def test_folders_an_earlier_process_kept_count_against_keep_versions(model_dir: Path, tmp_path: Path) -> None:
    first = WeightKeeper(tmp_path / "weights", keep=1, model_dir=model_dir)
    first.add(1, model_dir)
    again = WeightKeeper(tmp_path / "weights", keep=1, model_dir=model_dir)  # a resumed stream, a new TRLRollout
    again.add(2, model_dir)
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["version-00002"]


def test_an_engine_already_past_version_0_has_weights_nobody_recorded(model_dir: Path, tmp_path: Path) -> None:
    keeper = WeightKeeper(tmp_path / "weights", keep=0, model_dir=model_dir)
    assert keeper.start(current=4) is None and keeper.versions == {}  # not the start-up folder's weights


def test_a_folder_given_for_one_version_is_not_taken_for_the_start_up_weights(model_dir: Path, tmp_path: Path) -> None:
    """A run on an engine whose start-up folder is not known (a server on a hub name) recorded only its updates:
    the weights given for version 3 must not check the version-0 tokens."""
    from agentroll.rollout.versions import PolicyVersion

    write_versions(tmp_path, {3: PolicyVersion(3, fingerprint(model_dir), None)})
    references = VersionReferences(tmp_path, models=[model_dir], default=None)
    assert references.folders == {3: model_dir} and references.get(0) is None
    assert "did not record" in references.why_missing(0)


def test_a_run_that_recorded_no_versions_is_checked_against_the_model_it_names(model_dir: Path, tmp_path: Path) -> None:
    """No update during the run: its tokens are all of one version (not 0 when a trainer updated the engine
    before), and the run's model checks them, as the caller says (`assumed`). Several versions cannot be split."""
    one = VersionReferences(tmp_path, models=[], default=model_dir, seen={1040})
    assert one.folders == {1040: model_dir} and one.assumed == {1040: str(model_dir)} and one.get(None) is not None
    several = VersionReferences(tmp_path, models=[], default=model_dir, seen={3, 4})
    assert several.folders == {} and "holds tokens of several" in several.why_missing(3)
