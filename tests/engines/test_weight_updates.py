"""Weight updates on real engines (the embedded AsyncLLM, a vLLM server, a pool of two): vLLM's own pause /
reload / resume, per-token policy versions, and logprobs that follow the new weights (per transformers).

Each test leaves the engine on the original weights again (a later version of the same checkpoint), so the
engines shared with the rest of the session sample from the model they started with.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentroll.engines.verify import TOLERANCE
from agentroll.types import SamplingParams
from tests.engines.test_conformance import _Unclosable, prompt

pytestmark = pytest.mark.slow
CASES = ["embedded", "vllm", "pool"]
VERSIONS = itertools.count(1000)  # every update in the session gets a higher version than the last


@pytest.fixture(scope="session")
def changed_checkpoint(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model with its final norm scaled by 1.5 (sharper next-token distributions), saved as a folder."""
    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("changed-weights")
    for name in ("config.json", "generation_config.json"):
        shutil.copy(model_dir / name, out / name)
    tensors = load_file(str(model_dir / "model.safetensors"))
    tensors["model.norm.weight"] = tensors["model.norm.weight"] * 1.5
    save_file(tensors, str(out / "model.safetensors"))
    return out


@pytest.fixture(scope="session")
def references(model_dir: Path, changed_checkpoint: Path) -> dict[str, Any]:
    from agentroll.engines.hf_reference import HFReference

    return {"original": HFReference(model_dir), "changed": HFReference(changed_checkpoint)}


_built: dict[str, Any] = {}


@pytest.fixture(scope="module")
def built(loop: Any) -> Any:
    yield _built
    for engine in _built.values():
        loop.run(engine.aclose())
    _built.clear()


@pytest.fixture(params=CASES)
def engine(request: pytest.FixtureRequest, loop: Any, built: dict[str, Any]) -> Any:
    from agentroll.engines.pool import PoolEngine
    from agentroll.engines.vllm_server import VLLMServerEngine

    name = request.param
    if name not in _built:
        if name == "embedded":
            _built[name] = _Unclosable(request.getfixturevalue("embedded"))
        else:
            servers = request.getfixturevalue("vllm_servers")
            _built[name] = (
                VLLMServerEngine(servers[0].url)
                if name == "vllm"
                else PoolEngine([VLLMServerEngine(s.url) for s in servers])
            )
        loop.run(_built[name].models())
    engine = _built[name]
    yield engine
    if engine.policy_version >= 1000:  # back to the weights every other test expects
        loop.run(engine.update_weights(request.getfixturevalue("model_dir"), version=next(VERSIONS)))


def _score(reference: Any, ids: list[int], c: Any, sp: SamplingParams) -> float:
    from agentroll.agent.records import logprobs_convention

    seq = [*ids, *c.token_ids]
    ref = reference.score(seq, list(range(len(ids), len(seq))), {**logprobs_convention(sp), "mode": "processed"})
    return max(abs(a - b) for a, b in zip(c.logprobs, ref.logprobs, strict=True))


def test_new_samples_follow_the_new_weights_and_the_checker_sees_them(
    engine: Any, loop: Any, tokenizer: Any, references: dict[str, Any], changed_checkpoint: Path, model_dir: Path
) -> None:
    sp = SamplingParams(temperature=0.7, max_tokens=24, seed=3)
    ids = prompt(tokenizer, "Tell me about the moon.")
    checksums = getattr(engine, "weight_checksums", None)
    before = loop.run(checksums()) if checksums else None
    version = next(VERSIONS)
    update = loop.run(engine.update_weights(changed_checkpoint, version=version))
    assert update.version == version == engine.policy_version and update.applied and not update.failed
    c = loop.run(engine.generate(ids, sp))
    assert c.policy_versions == [(0, version)]
    assert _score(references["changed"], ids, c, sp) <= TOLERANCE  # sampled by the new weights...
    assert _score(references["original"], ids, c, sp) > 0.05  # ...not the old ones
    if checksums:
        changed = loop.run(checksums())
        assert changed != before and changed.keys() == before.keys()
        loop.run(engine.update_weights(model_dir, version=next(VERSIONS)))
        assert loop.run(checksums()) == before  # the original checkpoint again, digest for digest


@pytest.mark.parametrize("mode", ["keep", "abort", "wait"])
def test_an_update_during_generation_is_handled_by_its_pause_mode(
    engine: Any, loop: Any, tokenizer: Any, changed_checkpoint: Path, references: dict[str, Any], mode: str
) -> None:
    sp = SamplingParams(temperature=0.7, max_tokens=160, ignore_eos=True, seed=1)
    ids = prompt(tokenizer, "Write a long story about a lighthouse.")
    new = next(VERSIONS)

    async def update_mid_generation() -> tuple[list[Any], Any]:
        calls = [asyncio.create_task(engine.generate(ids, sp, session_id=f"upd-{mode}-{i}")) for i in range(3)]
        await asyncio.sleep(1.5)  # well inside the 160 tokens
        update = await engine.update_weights(changed_checkpoint, version=new, mode=mode)
        return await asyncio.gather(*calls), update

    completions, update = loop.run(update_mid_generation())
    assert update.stall_s >= update.load_s > 0
    for c in completions:
        if mode == "keep":  # frozen, then continued on the new weights: the tokens say which sampled them
            assert c.finish_reason == "length" and len(c.token_ids) == 160
            (first, v0), (switch, v1) = c.policy_versions
            assert first == 0 and v0 < new == v1 and 0 < switch < 160
        elif mode == "abort":  # ended by the pause, and said why
            assert c.finish_reason == "abort" and c.meta["abort_cause"] == "weight_update"
            assert 0 < len(c.token_ids) < 160 and len(c.policy_versions) == 1 and c.policy_versions[0][1] < new
        else:  # drained first: every token is the old policy's
            assert c.finish_reason == "length" and len(c.policy_versions) == 1 and c.policy_versions[0][1] < new
    # The same prompt again: its prefix was cached by the old weights, and the cache was dropped with them.
    short = SamplingParams(temperature=0.7, max_tokens=24, seed=2)
    after = loop.run(engine.generate(ids, short, session_id=f"upd-{mode}-0"))
    assert after.policy_versions == [(0, new)] and _score(references["changed"], ids, after, short) <= TOLERANCE


@pytest.mark.parametrize("policy", ["rerun_turn", "restart_episode"])
def test_an_episode_whose_turn_an_update_aborted_is_sampled_again_on_the_new_weights(
    embedded: Any, loop: Any, changed_checkpoint: Path, model_dir: Path, policy: str
) -> None:
    """The episode loop, not the caller, deals with the abort: nothing is lost, every kept token is the new policy's."""
    from agentroll.agent import EpisodeConfig, Task
    from agentroll.renderers import get_renderer
    from agentroll.rollout.config import RunConfig
    from agentroll.rollout.executor import play_episode
    from agentroll.types import Message

    task = Task(id="story", messages=(Message(role="user", content="Write a long story about a lighthouse."),))
    sampling = SamplingParams(temperature=0.7, max_tokens=160, ignore_eos=True)
    episode = EpisodeConfig(sampling=sampling, max_turns=1, on_weight_update_abort=policy)
    config = RunConfig(dataset={"path": "unused.jsonl"}, episode=episode)
    new = next(VERSIONS)

    async def go() -> Any:
        play = asyncio.create_task(play_episode(task, 0, config, embedded, get_renderer("smollm2"), None))
        await asyncio.sleep(1.5)
        await embedded.update_weights(changed_checkpoint, version=new, mode="abort")
        return await play

    try:
        traj = loop.run(go())
    finally:
        loop.run(embedded.update_weights(model_dir, version=next(VERSIONS)))
    (turn,) = traj.turns
    assert traj.stop_reason == "length" and len(turn.sampled_ids) == 160
    assert turn.policy_version == new and turn.version_changes is None
    assert set(turn.token_versions()) == {new}
    if policy == "rerun_turn":
        assert turn.meta["preempted"] == 1 and traj.metadata["preempted_tokens"] > 0
    else:
        assert traj.metadata["restarts"] == 1 and "preempted" not in turn.meta
    seg = traj.segments[0]
    assert sum(seg.loss_mask) == 160  # the cut-off tokens are not in the trajectory
