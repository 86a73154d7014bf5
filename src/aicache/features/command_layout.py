"""The layout of next-command candidate features: names, columns and candidate-set sizes.

Shared by the streaming statistics that compute the features
(:mod:`aicache.features.history_state`) and by anything that reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

FREQ_DECAYS: tuple[float, ...] = (0.7, 0.9, 0.97, 0.995)
BIGRAM_DECAYS: tuple[float, ...] = (0.5, 0.8)
RECENCY_RANKS = 8

FEATURE_NAMES: tuple[str, ...] = (
    "log_count",
    "share",
    *(f"decay_{d}" for d in FREQ_DECAYS),
    "log_decay_0.97",
    *(f"rank_{r + 1}" for r in range(RECENCY_RANKS)),
    f"rank_{RECENCY_RANKS + 1}_{2 * RECENCY_RANKS}",
    "log_gap",
    "bigram",
    "log_bigram",
    "bigram_conf",
    *(f"bigram_decay_{d}" for d in BIGRAM_DECAYS),
    "trigram",
    "log_trigram",
    "trigram_conf",
    "skipgram",
    "successor_1",
    "successor_2",
    "successor_3",
    "successor_4",
    "dir_share",
    "log_dir_share",
    "dir_conf",
    "dir_rank_1",
    "dir_rank_2",
    "dir_rank_3_8",
    "dir_bigram",
    "session_start_share",
    "session_share",
    "retry_after_fail",
    "fail_bigram",
    "unseen",
    "vocab_0",
    "vocab_1",
    "vocab_2",
    "vocab_prior",
    "ctx_log_n",
    "ctx_session_start",
    "ctx_dir_changed",
    "ctx_dir_new",
    "ctx_prev_failed",
    "ctx_session_len",
)
NUM_FEATURES = len(FEATURE_NAMES)
COLUMN: dict[str, int] = {name: index for index, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True, slots=True)
class CandidateConfig:
    """How many candidates each source proposes at a prediction point.

    Attributes
    ----------
    recent
        The most recently used distinct programs.
    frequent
        The most used programs, by count and by decayed count (each).
    successors
        The most common programs after the previous one.
    directory
        The most used programs in the current directory.
    vocabulary
        The first entries of the public vocabulary (always proposed).
    """

    recent: int = 15
    frequent: int = 15
    successors: int = 10
    directory: int = 8
    vocabulary: int = 10
