"""A public vocabulary of common shell and developer programs, shipped in code.

It is the only source of command names that is not the user's own history:
candidates for a user with little or no history, and a prior bucket feature.
It is written by hand from general knowledge of shell use, roughly most
common first, and is never derived from any user's data.
"""

from __future__ import annotations

PUBLIC_VOCABULARY: tuple[str, ...] = tuple(
    """
    ls cd git vim cat rm cp mv grep less make python mkdir echo ssh man more exit
    clear pwd find ps kill history top vi emacs nano fg jobs chmod tar curl
    python3 pip docker npm head tail touch which sudo source diff wc sort code
    ln du df scp wget export alias bg logout nohup env date who whoami file
    gcc cc go cargo node java ruby perl awk sed xargs tmux screen watch lpr lpq
    mail rlogin telnet ftp finger passwd chown rmdir zip unzip gzip gunzip
    kubectl npx yarn pytest htop ping ifconfig ip systemctl journalctl brew apt
    """.split()
)

# Bucket edges on a program's rank in PUBLIC_VOCABULARY: [0, 10), [10, 40), [40, end).
VOCABULARY_BUCKETS: tuple[int, ...] = (10, 40)

_RANK = {name: rank for rank, name in enumerate(PUBLIC_VOCABULARY)}


def vocabulary_rank(program: str) -> int | None:
    """The rank of ``program`` in :data:`PUBLIC_VOCABULARY` (0 first), or ``None``."""
    return _RANK.get(program)


def vocabulary_bucket(program: str) -> int | None:
    """Which prior bucket ``program`` falls in (0 most common), or ``None`` if not listed."""
    rank = vocabulary_rank(program)
    if rank is None:
        return None
    return sum(rank >= edge for edge in VOCABULARY_BUCKETS)
