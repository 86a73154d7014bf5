"""One run per key at a time: identical misses started together wait for the first.

Two ``aicache run`` calls with the same key that both miss would both start the
command (two paid AI calls for one answer). The first takes an exclusive lock
on a file named after the key; the second blocks on it and, once the first has
stored its answer, serves that answer instead of running the command again.
Only misses take the lock: a hit never touches it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aicache.local.paths import ensure_private_dir

LOCK_DIRECTORY = "locks"


@contextmanager
def key_lock(home: Path, digest: str) -> Iterator[bool]:
    """Hold the lock of key ``digest`` under ``home``; yield whether another holder was waited for.

    The lock file is removed by whoever releases it. A waiter that then finds
    its file gone (or replaced) locks the new one, so two processes never hold
    "the" lock of one key on two different files.
    """
    directory = ensure_private_dir(home / LOCK_DIRECTORY)
    path = directory / f"{digest}.lock"
    waited = False
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.fstat(fd).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed it on release: lock the current file
    try:
        yield waited
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
