"""Weight updates on real engines (the embedded AsyncLLM, a vLLM server, a pool of two): vLLM's own pause /
reload / resume, per-token policy versions, and logprobs that follow the new weights (per transformers).

A trainer's step moves every weight, the embedding too, and SmolLM2 ties its LM head to the embedding: the
checkpoints here change every tensor. The engines' weight digests are compared with digests computed from the
checkpoint's own tensors (`checkpoint_digests`), an account of the weights independent of the engine.

Each test leaves the engine on the original weights again (a later version of the same checkpoint), so the
engines shared with the rest of the session sample from the model they started with.
"""

from __future__ import annotations

import asyncio
import itertools
import json
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


def write_checkpoint(model_dir: Path, out: Path, *, scale: float, tie: bool = True, seed: int = 0) -> Path:
    """`model_dir` with every tensor moved by `scale` x its own spread (noise, not a rescaling a norm could
    undo); `tie=False` gives the LM head its own copy of the embedding (an untied model)."""
    import torch
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():  # tokenizer, template, generation config: a model folder vLLM can start on
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copy(f, out / f.name)
    config = json.loads((model_dir / "config.json").read_text())
    config["tie_word_embeddings"] = tie
    (out / "config.json").write_text(json.dumps(config))
    tensors = load_file(str(model_dir / "model.safetensors"))
    if not tie:
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    g = torch.Generator().manual_seed(seed)
    for name, t in sorted(tensors.items()):
        spread = t.std() if t.numel() > 1 and float(t.std()) > 0 else t.abs().mean() + 1e-3
        tensors[name] = t + scale * spread * torch.randn(t.shape, generator=g)
    save_file(tensors, str(out / "model.safetensors"))
    return out


def checkpoint_digests(path: Path) -> dict[str, str]:
    """The digests vLLM's workers should report for a Llama checkpoint, computed from its tensors: q/k/v and
    gate/up are fused as vLLM fuses them, and a tied LM head is the embedding."""
    import torch
    from safetensors.torch import load_file

    from agentroll.engines.weights import tensor_digest

    tensors = load_file(str(path / "model.safetensors"))
    fused = {
        "q_proj": ("qkv_proj", ("q_proj", "k_proj", "v_proj")),
        "gate_proj": ("gate_up_proj", ("gate_proj", "up_proj")),
    }
    out = {}
    for name, t in tensors.items():
        module = name.split(".")[-2]
        if module in fused:
            into, parts = fused[module]
            out[name.replace(module, into)] = torch.cat([tensors[name.replace(module, p)] for p in parts])
        elif module not in ("k_proj", "v_proj", "up_proj"):
            out[name] = t
    out.setdefault("lm_head.weight", tensors["model.embed_tokens.weight"])  # tied: stored once, as the embedding
    return {name: tensor_digest(t) for name, t in out.items()}


@pytest.fixture(scope="session")
def changed_checkpoint(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model with every tensor moved (the tied embedding / LM head included), saved as a folder."""
    return write_checkpoint(model_dir, tmp_path_factory.mktemp("changed-weights"), scale=0.02)


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


@pytest.mark.parametrize("given_as", ["folder", "state_dict"])
def test_every_weight_moved_tied_head_included_is_what_the_engine_samples_from(
    engine: Any,
    loop: Any,
    tokenizer: Any,
    references: dict[str, Any],
    changed_checkpoint: Path,
    model_dir: Path,
    given_as: str,
) -> None:
    from safetensors.torch import load_file

    sp = SamplingParams(temperature=0.7, max_tokens=24, seed=3)
    ids = prompt(tokenizer, "Tell me about the moon.")
    checksums = getattr(engine, "weight_checksums", None)
    if checksums:
        assert loop.run(checksums()) == checkpoint_digests(model_dir)
    version = next(VERSIONS)
    # a state dict as the checkpoint holds it: the tied head stored once, under the embedding's name
    source = changed_checkpoint if given_as == "folder" else load_file(str(changed_checkpoint / "model.safetensors"))
    update = loop.run(engine.update_weights(source, version=version))
    assert update.version == version == engine.policy_version and update.applied and not update.failed
    c = loop.run(engine.generate(ids, sp))
    assert c.policy_versions == [(0, version)]
    assert _score(references["changed"], ids, c, sp) <= TOLERANCE  # sampled by the new weights...
    assert _score(references["original"], ids, c, sp) > 0.05  # ...not the old ones
    if checksums:  # digest for digest what the checkpoint holds, the LM head as the workers multiply with it
        assert loop.run(checksums()) == checkpoint_digests(changed_checkpoint)
        loop.run(engine.update_weights(model_dir, version=next(VERSIONS)))
        assert loop.run(checksums()) == checkpoint_digests(model_dir)


def test_vllms_plain_reload_leaves_a_tied_head_stale_and_the_digests_show_it(
    embedded: Any, loop: Any, changed_checkpoint: Path, model_dir: Path
) -> None:
    """Why the engines reload through agentroll's worker extension: vLLM's own reload_weights (on CPU) moves the
    embedding but leaves the tied LM head multiplying with its old prepacked copy."""
    llm = loop.run(embedded._llm())
    try:
        loop.run(llm.collective_rpc("reload_weights", kwargs={"weights_path": str(changed_checkpoint)}))
        got, want = loop.run(embedded.weight_checksums()), checkpoint_digests(changed_checkpoint)
        assert {name for name in want if got[name] != want[name]} == {"lm_head.weight"}
    finally:
        loop.run(embedded.update_weights(model_dir, version=next(VERSIONS)))
    assert loop.run(embedded.weight_checksums()) == checkpoint_digests(model_dir)


def test_an_untied_model_takes_every_weight_too(loop: Any, tokenizer: Any, model_dir: Path, tmp_path: Path) -> None:
    """The other layout: an LM head of its own (tie_word_embeddings false) is loaded like any other layer."""
    from agentroll.engines.embedded import EmbeddedEngine
    from agentroll.engines.hf_reference import HFReference

    base = write_checkpoint(model_dir, tmp_path / "untied", scale=0.0, tie=False)
    moved = write_checkpoint(model_dir, tmp_path / "untied-moved", scale=0.02, tie=False, seed=1)
    engine = EmbeddedEngine(model=str(base), kv_cache_gib=1, max_model_len=1024)
    sp = SamplingParams(temperature=0.7, max_tokens=24, seed=5)
    ids = prompt(tokenizer, "Tell me about the moon.")
    try:
        assert loop.run(engine.weight_checksums()) == checkpoint_digests(base)
        loop.run(engine.update_weights(moved, version=1))
        c = loop.run(engine.generate(ids, sp))
        assert _score(HFReference(moved), ids, c, sp) <= TOLERANCE
        assert _score(HFReference(base), ids, c, sp) > 0.05
        assert loop.run(engine.weight_checksums()) == checkpoint_digests(moved)
    finally:
        loop.run(engine.aclose())


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
