"""Which weights sampled a run's tokens: RUN_DIR/versions.jsonl, and the weights themselves when kept.

Every sampled token carries the integer policy version of the weights that sampled it (engines.weights).
An integer says which update, not which weights; to check a token against the policy that sampled it
(`agentroll verify --reference hf`) the run records what each version was, one line per version:

    {"version": 3, "fingerprint": "9f2c...", "weights": "../weights/version-00003"}

`fingerprint` names the weights (engines.weights.fingerprint: the same for a state dict and for the folder
it is saved to), so any checkpoint a user has can be matched to a version. `weights` is a folder that holds
them (the model's config and tokenizer beside model.safetensors: transformers loads it as it is), relative to
the run directory or absolute; it is kept for the last `keep` versions only, and an older folder is removed
(its line stays, the check then says which version it lacks). Version 0 is the engine's start-up model
folder, recorded where it is, never copied.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentroll.engines.weights import WeightSource, fingerprint
from agentroll.errors import ConfigError

VERSIONS = "versions.jsonl"
WEIGHTS = "weights"  # RUN_DIR/weights/version-NNNNN: the kept folders


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version: int
    fingerprint: str | None
    weights: Path | None  # absolute; None: not kept

    def available(self) -> bool:
        return self.weights is not None and self.weights.is_dir()


class WeightKeeper:
    """Fingerprints each new version's weights and keeps the last `keep` of them as loadable folders under
    `root` (`model_dir` gives them their config and tokenizer, and is version 0's folder)."""

    def __init__(self, root: Path, *, keep: int, model_dir: Path | None):
        if keep < 0:
            raise ConfigError(f"keep_versions {keep}: must be >= 0")
        if keep and (model_dir is None or not (model_dir / "config.json").exists()):
            warnings.warn(
                f"keep_versions {keep}: kept weights need the engine's model folder (its config and tokenizer), and "
                f"the engine names none on this machine ({model_dir}): only fingerprints are recorded (verify then "
                "needs each version's weights given with --model)",
                stacklevel=2,
            )
            keep = 0
        self.root, self.keep, self.model_dir = Path(root), keep, model_dir
        self.versions: dict[int, PolicyVersion] = {}
        # folders an earlier process of this run kept count too (a resumed stream, a new TRLRollout)
        on_disk = sorted(int(p.name.removeprefix("version-")) for p in self.root.glob("version-[0-9]*") if p.is_dir())
        self._kept: deque[int] = deque(on_disk)

    def start(self, current: int = 0) -> PolicyVersion | None:
        """Record the engine's weights now: at version 0 they are its own model folder (recorded where it is).
        An engine already past version 0 holds weights nobody recorded here: they stay unknown."""
        folder = self.model_dir
        if current == 0 and 0 not in self.versions and folder is not None and any(folder.glob("*.safetensors")):
            self.versions[0] = PolicyVersion(0, fingerprint(self.model_dir), self.model_dir.resolve())
        return self.versions.get(current)

    def add(self, version: int, source: WeightSource) -> PolicyVersion:
        """Call while `source` still holds the weights the engine was given (a trainer steps right after)."""
        folder = self._store(version, source) if self.keep else None
        entry = PolicyVersion(version, fingerprint(folder if folder is not None else source), folder)
        self.versions[version] = entry
        while len(self._kept) > self.keep:
            old = self._kept.popleft()
            shutil.rmtree(self.root / _folder_name(old), ignore_errors=True)
        return entry

    def _store(self, version: int, source: WeightSource) -> Path:
        out = self.root / _folder_name(version)
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in self.model_dir.iterdir():  # config, generation config, tokenizer, template
            if f.is_file() and f.suffix != ".safetensors" and f.name != "model.safetensors.index.json":
                shutil.copy2(f, tmp / f.name)
        if isinstance(source, Mapping):
            from safetensors.torch import save_file

            # own copies: safetensors refuses tensors that share storage (a tied LM head and the embedding)
            tensors = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in source.items()}
            save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        else:
            for f in Path(source).iterdir():
                if f.suffix == ".safetensors" or f.name == "model.safetensors.index.json":
                    shutil.copy2(f, tmp / f.name)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
        self._kept.append(version)
        return out.resolve()


def write_versions(run_dir: Path, versions: Mapping[int, PolicyVersion]) -> None:
    """RUN_DIR/versions.jsonl for the versions whose tokens the run holds (paths relative to it where they can be)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for v in sorted(versions.values(), key=lambda v: v.version):
        lines.append(
            json.dumps({"version": v.version, "fingerprint": v.fingerprint, "weights": _relative(v.weights, run_dir)})
        )
    tmp = run_dir / (VERSIONS + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, run_dir / VERSIONS)


def clear_versions(run_dir: Path) -> None:
    """A run started over: what an earlier run's versions were says nothing about this one's."""
    (run_dir / VERSIONS).unlink(missing_ok=True)
    shutil.rmtree(run_dir / WEIGHTS, ignore_errors=True)


def read_versions(run_dir: Path) -> dict[int, PolicyVersion]:
    """What RUN_DIR/versions.jsonl says (empty for a run that recorded none: its tokens are version 0)."""
    path = run_dir / VERSIONS
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d: dict[str, Any] = json.loads(line)
            weights = None if d.get("weights") is None else (run_dir / d["weights"]).resolve()
            out[int(d["version"])] = PolicyVersion(int(d["version"]), d.get("fingerprint"), weights)
    return out


def engine_model_dir(engine: Any) -> Path | None:
    """The folder an engine serves its start-up weights from, where it says (the embedded engine; a local vLLM
    server started on a folder)."""
    folder = getattr(engine, "model_dir", None)
    return Path(folder) if folder is not None and Path(folder).is_dir() else None


def _folder_name(version: int) -> str:
    return f"version-{version:05d}"


def _relative(path: Path | None, run_dir: Path) -> str | None:
    if path is None:
        return None
    try:
        return os.path.relpath(path, run_dir.resolve()) if _shares_root(path, run_dir) else str(path)
    except ValueError:
        return str(path)


def _shares_root(path: Path, run_dir: Path) -> bool:
    """Relative only where both sit in one tree the user moves together (the run's output folder)."""
    parent = run_dir.resolve().parent
    return path.resolve().is_relative_to(parent)


class VersionReferences:
    """The transformers reference of each policy version a run recorded (rollout.verify.VersionScorers): its kept
    folder, or a folder the user gives whose fingerprint matches it; loaded when first needed, one at a time.

    A run that recorded no versions took no weight updates: its tokens, all of one version (`seen`, which need
    not be 0: an engine a trainer updated before the run), are checked against `default` or the first folder
    given, which the caller vouches for (`assumed` says so). Tokens of several versions with none recorded
    cannot be told apart: each is a version mismatch."""

    def __init__(
        self,
        run_dir: Path,
        *,
        models: list[Path],
        default: Path | None,
        dtype: str = "float32",
        seen: set[int | None] | None = None,
    ):
        self.recorded = read_versions(run_dir)
        self.assumed: dict[int, str] = {}
        self.dtype = dtype
        self.given = {fingerprint(m): m for m in models} if self.recorded else {}
        self.folders: dict[int, Path] = {}
        self.missing: dict[int | None, str] = {}
        for v, entry in self.recorded.items():
            if entry.fingerprint in self.given:
                self.folders[v] = self.given[entry.fingerprint]
            elif entry.available() and fingerprint(entry.weights) == entry.fingerprint:
                self.folders[v] = entry.weights
            else:
                self.missing[v] = self._why(entry)
        if 0 not in self.recorded:  # the start-up weights: the run's model, else a given folder of no other version
            recorded_fps = {e.fingerprint for e in self.recorded.values()}
            unmatched = [m for fp, m in self.given.items() if fp not in recorded_fps]
            start = default or (models[0] if not self.recorded and models else None) or next(iter(unmatched), None)
            numbered = {v for v in seen or () if v is not None} or {0}
            if start is not None and (self.recorded or len(numbered) == 1):
                version = 0 if self.recorded else next(iter(numbered))
                self.folders[version] = start
                if not self.recorded:
                    self.assumed[version] = str(start)
        self._loaded: tuple[Path, Any] | None = None

    def matches(self) -> dict[str, int | None]:
        """Each folder given -> the version whose weights it holds (None: none of this run's)."""
        by_fp = {e.fingerprint: v for v, e in self.recorded.items()}
        return {str(path): by_fp.get(fp) for fp, path in self.given.items()}

    def get(self, version: int | None) -> Any:
        if version is None:  # the engine did not say: the start-up weights, unless the run took updates
            version = next(iter(self.assumed), 0) if set(self.recorded) <= {0} else None
        folder = self.folders.get(version) if version is not None else None
        if folder is None:
            return None
        if self._loaded is None or self._loaded[0] != folder:
            from agentroll.engines.hf_reference import HFReference

            self._loaded = None  # free the last one before loading the next
            self._loaded = (folder, HFReference(folder, dtype=self.dtype))
        return self._loaded[1]

    def why_missing(self, version: int | None) -> str:
        if version is None:
            return (
                "version mismatch: the engine did not say which policy version sampled them, and the run took updates"
            )
        if version in self.missing:
            return self.missing[version]
        if not self.recorded:
            return (
                f"version mismatch: sampled by policy version {version}; the run recorded no versions ({VERSIONS}) "
                "and holds tokens of several, so which weights sampled which cannot be told"
            )
        return (
            f"version mismatch: sampled by policy version {version}, which the run did not record (no "
            f"{VERSIONS} line): only the start-up weights are known"
        )

    def _why(self, entry: PolicyVersion) -> str:
        fp = (entry.fingerprint or "?")[:12]
        if entry.weights is None:
            kept = "its weights were not kept (keep_versions)"
        elif not entry.weights.is_dir():
            kept = f"its folder {entry.weights} is gone (keep_versions keeps only the last few)"
        else:
            kept = f"the folder {entry.weights} holds other weights than that fingerprint"
        given = ", ".join(f"{p} (fingerprint {f[:12]})" for f, p in self.given.items()) or "no --model"
        return (
            f"version mismatch: sampled by policy version {entry.version} (fingerprint {fp}); {kept}, and the weights "
            f"given match it not ({given}); pass --model DIR with that version's weights"
        )
