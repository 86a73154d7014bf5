"""What semantic hits cost ``aicache run``: an exact hit, and a miss with and without lookup.

Every sample is a whole process, interpreter start included, timed from the
parent; the variants run interleaved so that machine noise falls on all of
them alike. The store holds ``--entries`` cached prompts of one frame
(``fake-ai ask ...``, made a prompt command with the ``semantic-commands``
setting), each with its vector: the lookup compares the question with all of
them. The misses pass ``--no-store`` so that every sample stays a miss.

Variants:

- exact hit of a prompt command, served by this checkout, and by the package
  under ``--baseline-src`` (the code before semantic hits) when given;
- a miss of a near question with the semantic lookup (embed, brute-force
  cosine over every stored vector, the decision on the shortlist) and the
  same miss with ``--exact`` (no lookup, no embedding).

Then, in fresh processes, where the lookup's time goes: numpy's import, the
embedder's import and load (tokenizer and weights), one forward pass, reading
and decoding the stored vectors and the cosines, loading the decision (registry
and served model), and judging the shortlist.

Usage::

    git archive main src | tar -x -C /tmp/before
    python benchmarks/bench_semantic.py [--runs 30] [--entries 10000] \\
        [--baseline-src /tmp/before/src] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE_AI = ROOT / "examples" / "fake-ai"
AICACHE = [sys.executable, "-m", "aicache"]
STORED = "how do I undo my last git commit"
NEAR = "how do I undo my last svn commit"

BREAKDOWN = """
import json, sys, time
from pathlib import Path
steps = {}
def step(name, started):
    steps[name] = (time.perf_counter() - started) * 1000
    return time.perf_counter()
t = time.perf_counter()
import numpy as np
t = step("import numpy", t)
from aicache.features.embedding import load_embedder
t = step("import the embedder", t)
embedder = load_embedder()
t = step("load tokenizer and weights", t)
vector = embedder.embed([sys.argv[2]])[0]
t = step("embed the question (one forward pass)", t)
from aicache.local.store import Store
from aicache.local import semantic_store
from aicache.tasks.semantic_hit.serving import decode, encode, shortlist
t = step("import the store and the serving glue", t)
store = Store.open(Path(sys.argv[1]))
frame = store.conn.execute("SELECT frame FROM semantic_entries LIMIT 1").fetchone()[0]
t = step("open the store", t)
found = semantic_store.candidates(store, frame, sys.argv[2], time.time())
t = step(f"read {len(found)} stored vectors", t)
query = np.frombuffer(encode(vector), dtype="<f2").astype(np.float32)
matrix = decode([c.vector for c in found], len(query))
rows = shortlist(query, matrix, size=5, floor=0.5)
t = step("decode them and rank by cosine", t)
from aicache.cli.semantic import served_decision
decision = served_decision()
t = step("load the decision (registry, served model)", t)
decision.judge(sys.argv[2], [found[i].prompt for i in rows], query_vector=query,
               candidate_vectors=matrix[rows])
t = step(f"judge the shortlist ({len(rows)} prompts)", t)
store.close()
print(json.dumps(steps))
"""


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True, cwd=env["CWD"]
    )
    return time.perf_counter() - started, done.stderr


def _prompts(count: int) -> list[str]:
    """``count`` distinct developer questions (the semantic-hit task's synthetic population)."""
    from aicache.tasks.semantic_hit.population import developer_pairs

    seen: dict[str, None] = {}
    developer = 0
    while len(seen) < count:
        for pair in developer_pairs(7, developer, 400):
            seen.setdefault(pair.cached, None)
        developer += 1
    prompts = [p for p in seen if p != STORED][: count - 1]
    return [STORED, *prompts]


def _fill(env: dict[str, str], count: int) -> None:
    """Store ``count`` answers of ``fake-ai ask PROMPT``, each with its prompt's vector."""
    from aicache.features.embedding import load_embedder
    from aicache.local import semantic_store
    from aicache.local.adapters import classify
    from aicache.local.cache import Event, NewEntry, make_key, record
    from aicache.local.context import key_context
    from aicache.local.home_key import home_key
    from aicache.local.semantic_run import prompt_places, semantic_query
    from aicache.local.settings import Settings
    from aicache.local.store import Store
    from aicache.tasks.semantic_hit.serving import encode

    prompts = _prompts(count)
    vectors = load_embedder().embed(prompts)
    settings = Settings(semantic_commands=("fake-ai ask",))
    context = key_context("project", Path(env["CWD"]), env)
    context["program"] = os.path.realpath(FAKE_AI)
    with Store.open(Path(env["AICACHE_HOME"])) as store:
        store.set_setting("semantic-commands", "fake-ai ask")
        secret = home_key(store.path.parent)
        for prompt, vector in zip(prompts, vectors, strict=True):
            argv = ["fake-ai", "ask", *prompt.split()]
            key = make_key(argv, None, context, secret=secret)
            places = prompt_places(key.argv, classify(argv), settings)
            query = semantic_query(key, places, None, "project", secret=secret)
            assert query is not None
            entry = NewEntry(key, f"Answer to: {prompt}\n".encode(), b"", 0, 2.0, None)
            record(
                store, Event("fake-ai", key.event_hash, "miss", 1.0, 20, 0, True, "x"), entry=entry
            )
            semantic_store.index_entry(
                store, key=key.digest, frame=query.frame, tool="fake-ai", scope="project",
                prompt=query.prompt, vector=encode(vector),
            )  # fmt: skip


def _register_decision(home: Path) -> str:
    """Make sure the home serves a semantic-hit decision; say which."""
    from aicache.deploy.serving import served_model
    from aicache.errors import AicacheError
    from aicache.registry import ModelRegistry
    from aicache.tasks.semantic_hit.task import SemanticHitTask

    try:
        return served_model("semantic-hit", home).label
    except AicacheError:
        pass
    # No model came with this install: an untrained one costs the same to load and run.
    with ModelRegistry(home / "registry") as registry:
        run = registry.start_run("semantic-hit", {"plan": {}, "federation": "benchmark"})
        registry.register(
            "semantic-hit", SemanticHitTask().init_params(0), run_id=run, round=1, parent=None,
            strategy="none", strategy_config={}, num_clients=1, metrics={}, privacy={},
        )  # fmt: skip
    return "an untrained model (none was shipped)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="samples per variant")
    parser.add_argument("--entries", type=int, default=10_000, help="cached prompts")
    parser.add_argument("--baseline-src", type=Path, help="the package before semantic hits")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    sys.path.insert(0, str(ROOT / "src"))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        env = {
            **os.environ,
            "AICACHE_HOME": str(Path(tmp) / "home"),
            "FAKE_AI_DELAY": "0",
            "PATH": f"{FAKE_AI.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "CWD": str(work),
        }
        started = time.perf_counter()
        _fill(env, args.entries)
        model = _register_decision(Path(env["AICACHE_HOME"]))
        print(f"filled {args.entries} entries in {time.perf_counter() - started:.0f} s; {model}")
        stored = ["fake-ai", "ask", *STORED.split()]
        near = ["fake-ai", "ask", *NEAR.split()]
        variants: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass (interpreter start)": ([sys.executable, "-c", "pass"], env),
            "fake AI CLI alone, 0 s think time": ([str(FAKE_AI), "ask", *NEAR.split()], env),
            "exact hit, after": ([*AICACHE, "run", "--", *stored], env),
            "miss, semantic lookup": ([*AICACHE, "run", "--no-store", "--", *near], env),
            "miss, --exact": ([*AICACHE, "run", "--no-store", "--exact", "--", *near], env),
        }
        if args.baseline_src:
            before = {**env, "PYTHONPATH": str(args.baseline_src.resolve())}
            before["AICACHE_HOME"] = str(Path(tmp) / "before")
            subprocess.run(
                [*AICACHE, "run", "--", *stored], env=before, capture_output=True, check=True,
                cwd=work,
            )  # fmt: skip
            variants["exact hit, before"] = ([*AICACHE, "run", "--", *stored], before)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        served = 0
        for _ in range(args.runs):
            for name, (argv, variant_env) in variants.items():
                elapsed, stderr = _time(argv, variant_env)
                samples[name].append(elapsed)
                served += name == "miss, semantic lookup" and b"semantic hit" in stderr
        breakdowns = [
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", BREAKDOWN, env["AICACHE_HOME"], NEAR],
                    env=env, capture_output=True, check=True, cwd=work,
                ).stdout
            )
            for _ in range(5)
        ]  # fmt: skip

    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    results: dict[str, object] = {
        "entries": args.entries,
        "runs": args.runs,
        "decision": model,
        "near_miss_served_semantically": served,
        "median_ms": medians,
        "p90_ms": {n: statistics.quantiles(v, n=10)[-1] * 1000 for n, v in samples.items()},
        "lookup_added_ms": medians["miss, semantic lookup"] - medians["miss, --exact"],
        "breakdown_median_ms": {
            step: statistics.median(b[step] for b in breakdowns) for step in breakdowns[0]
        },
    }
    if "exact hit, before" in medians:
        results["exact_hit_ratio_after_to_before"] = (
            medians["exact hit, after"] / medians["exact hit, before"]
        )
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
