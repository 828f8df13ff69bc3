"""`retrieve`: Okapi BM25 over a small local corpus; passages to the model, document IDs to the reward.

The corpus is a JSONL file of `{"id", "text", "title"?}` records; the package ships a
40-passage general-knowledge corpus (corpus.jsonl, written for this project) so the tool
works with no config. Metadata carries `doc_ids` and `scores` in rank order, which is
what a recall or citation reward needs.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentroll.errors import ConfigError
from agentroll.tools.base import ToolOutput
from agentroll.types import ToolSpec

DEFAULT_CORPUS = Path(__file__).with_name("corpus.jsonl")
_TOKEN = re.compile(r"[a-z0-9]+")
# The commonest function words only: BM25's idf already discounts frequent terms.
_STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "has", "have", "how", "in"}
    | {"is", "it", "its", "of", "on", "or", "that", "the", "to", "was", "were", "what", "when", "where", "which"}
    | {"who", "why", "with"}
)


def tokenize(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


@dataclass(frozen=True, slots=True)
class Passage:
    id: str
    text: str
    title: str = ""


class BM25Index:
    """Okapi BM25 (k1, b as in Robertson & Zaragoza) over passages; ties broken by corpus order."""

    def __init__(self, passages: list[Passage], *, k1: float = 1.5, b: float = 0.75):
        if not passages:
            raise ConfigError("retrieve: the corpus is empty")
        self.passages, self.k1, self.b = passages, k1, b
        self._tf = [Counter(tokenize(f"{p.title} {p.text}")) for p in passages]
        self._len = [sum(tf.values()) for tf in self._tf]
        self._avg_len = sum(self._len) / len(self._len)
        df = Counter(term for tf in self._tf for term in tf)
        n = len(passages)
        self._idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def search(self, query: str, k: int) -> list[tuple[Passage, float]]:
        terms = tokenize(query)
        scored = []
        for i, tf in enumerate(self._tf):
            score = sum(self._term_score(tf, self._len[i], t) for t in terms if t in tf)
            if score > 0:
                scored.append((-score, i))
        scored.sort()
        return [(self.passages[i], -neg) for neg, i in scored[:k]]

    def _term_score(self, tf: Counter[str], length: int, term: str) -> float:
        f = tf[term]
        norm = self.k1 * (1 - self.b + self.b * length / self._avg_len)
        return self._idf[term] * f * (self.k1 + 1) / (f + norm)


def load_corpus(path: str | Path) -> list[Passage]:
    passages = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                passages.append(Passage(id=str(rec["id"]), text=rec["text"], title=rec.get("title", "")))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ConfigError(f"retrieve corpus {path}:{line_no}: need a JSON object with id and text ({e})") from e
    return passages


class RetrieveTool:
    """The `retrieve` built-in (Tool protocol). Options: `corpus` (a JSONL path) and `k`."""

    timeout_s: float | None = None

    def __init__(self, corpus: str | Path | None = None, k: int = 3, *, name: str = "retrieve"):
        self.index = BM25Index(load_corpus(corpus or DEFAULT_CORPUS))
        self.k = k
        self.spec = ToolSpec(
            name=name,
            description="Search a local document collection and return the most relevant passages with their IDs.",
            input_schema={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to search for, in plain words."},
                    "k": {"type": "integer", "minimum": 1, "maximum": 10, "description": f"Passages (default {k})."},
                },
                "required": ["query"],
                "additionalProperties": False,
            },
        )

    async def run(self, arguments: dict[str, Any]) -> ToolOutput:
        hits = self.index.search(arguments["query"], int(arguments.get("k", self.k)))
        if not hits:
            content = "No passage matches the query."
        else:
            content = "\n\n".join(f"[{p.id}] {p.title}: {p.text}" if p.title else f"[{p.id}] {p.text}" for p, _ in hits)
        return ToolOutput(
            content=content,
            metadata={"doc_ids": [p.id for p, _ in hits], "scores": [round(s, 6) for _, s in hits]},
            structured=None,
        )
