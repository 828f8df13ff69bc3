"""Write train.jsonl and test.jsonl: one- and two-step arithmetic word problems a calculator solves.

Numbers have two or three digits, so a 135M model rarely gets them right in its head but can read the answer
off a calculator result. Seeded: running it again writes the same files. `kind` names the template (a category
for `agentroll eval --by kind`). Usage: python examples/data/arithmetic/make.py
"""

import json
import random
from pathlib import Path

NAMES = ["Ada", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jo"]
ITEMS = [("box", "pencils"), ("crate", "apples"), ("bag", "marbles"), ("shelf", "books"), ("tray", "cookies")]


def problem(rng: random.Random) -> dict:
    name = rng.choice(NAMES)
    holder, item = rng.choice(ITEMS)
    holders = holder + ("es" if holder.endswith("x") else "s")
    kind = rng.choice(["multiply", "subtract", "divide", "two_step"])
    if kind == "multiply":
        a, b = rng.randint(12, 99), rng.randint(12, 99)
        return {
            "kind": kind,
            "answer": a * b,
            "question": f"A {holder} holds {a} {item}. How many {item} are in {b} {holders}?",
        }
    if kind == "subtract":
        a = rng.randint(300, 999)
        b = rng.randint(101, a - 50)
        question = f"{name} had {a} {item} and gave away {b}. How many {item} does {name} have left?"
        return {"kind": kind, "answer": a - b, "question": question}
    if kind == "divide":
        b, k = rng.randint(12, 48), rng.randint(12, 48)
        question = f"{b * k} {item} are shared equally among {b} friends. How many {item} does each friend get?"
        return {"kind": kind, "answer": k, "question": question}
    a, b, c = rng.randint(12, 60), rng.randint(12, 60), rng.randint(10, 99)
    question = f"{name} buys {a} packs of {b} {item} and gives away {c} {item}. How many {item} does {name} have now?"
    return {"kind": kind, "answer": a * b - c, "question": question}


def write(path: Path, n: int, seed: int, exclude: frozenset[str] = frozenset()) -> frozenset[str]:
    """n problems, none whose question is in `exclude` (the test split shares no question with train)."""
    rng, rows, seen = random.Random(seed), [], set(exclude)
    while len(rows) < n:
        p = problem(rng)
        if p["question"] not in seen:
            seen.add(p["question"])
            rows.append({"id": f"{path.stem}-{len(rows):04d}", **p})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return frozenset(r["question"] for r in rows)


if __name__ == "__main__":
    here = Path(__file__).parent
    train = write(here / "train.jsonl", 2000, seed=1)
    write(here / "test.jsonl", 500, seed=2, exclude=train)
