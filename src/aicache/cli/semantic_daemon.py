"""The semantic service's process: ``python -m aicache.cli.semantic_daemon HOME``.

Started by :func:`aicache.local.semantic_client.start`; it forks at once so
that the starter need not wait for it, keeps the pid file locked for its whole
life (two services of one home cannot run: the second exits), binds the
owner-only socket, loads the model, and serves until
:func:`aicache.tasks.semantic_hit.service.serve_forever` returns. The store,
the served decision and the idle setting reach the service through
:class:`StoreBackend`.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from collections.abc import Hashable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from aicache.local.semantic_client import PID_NAME, SOCKET_NAME

if TYPE_CHECKING:
    from aicache.local.semantic_index import IndexRow
    from aicache.local.store import Store
    from aicache.tasks.semantic_hit.features import PairEmbedder
    from aicache.tasks.semantic_hit.serving import PairJudge


_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class StoreBackend:
    """The store's semantic index, the served decision and the idle setting of one home."""

    def __init__(self, home: Path, store: Store) -> None:
        self.home = home
        self.store = store

    def signature(self) -> tuple[int, int, str]:
        """The index's signature (see :func:`aicache.local.semantic_index.signature`)."""
        from aicache.local.semantic_index import signature

        found = signature(self.store)
        return found.count, found.last_rowid, found.last_key

    def frame_rows(self, frame: str) -> Sequence[IndexRow]:
        """Every row of ``frame``."""
        from aicache.local.semantic_index import frame_rows

        return frame_rows(self.store, frame)

    def rows_after(self, rowid: int) -> Sequence[IndexRow]:
        """The rows written after ``rowid``."""
        from aicache.local.semantic_index import rows_after

        return rows_after(self.store, rowid)

    def live_keys(self, frame: str, prompt: str, keys: Sequence[str], now: float) -> set[str]:
        """Those of ``keys`` a lookup of ``prompt`` may serve at ``now``."""
        from aicache.local.semantic_index import live_keys

        return live_keys(self.store, frame, prompt, keys, now)

    def decision_stamp(self) -> Hashable:
        """Sizes and times of the registry's files: a new version or pin changes them."""
        from aicache.local.paths import REGISTRY_DIRNAME

        try:
            entries = list(os.scandir(self.home / REGISTRY_DIRNAME))
        except OSError:
            return ()
        stamps = []
        for entry in entries:
            with suppress(OSError):
                info = entry.stat()
                stamps.append((entry.name, info.st_mtime_ns, info.st_size))
        return tuple(sorted(stamps))

    def load_decision(self) -> PairJudge:
        """The semantic-hit decision this home serves."""
        from aicache.cli.semantic import served_decision

        return served_decision()

    def idle_s(self) -> float:
        """The ``semantic-service-idle`` setting, in seconds."""
        from aicache.local.settings import Settings

        return Settings.from_stored(self.store.settings()).semantic_service_idle_s


def _lock(home: Path) -> int | None:
    """The pid file's descriptor, locked for this process; ``None`` when a service holds it."""
    while True:
        fd = os.open(home / PID_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == (home / PID_NAME).stat().st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file a departing service unlinked after this opened it
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _bind(home: Path) -> socket.socket:
    # Relative to the home (the process runs in it): a socket address is at most 108 bytes.
    with suppress(FileNotFoundError):
        Path(SOCKET_NAME).unlink()  # stale: the lock says no service owns it
    listener = socket.socket(socket.AF_UNIX)
    old = os.umask(0o177)
    try:
        listener.bind(SOCKET_NAME)
    finally:
        os.umask(old)
    Path(SOCKET_NAME).chmod(0o600)
    listener.listen(16)
    return listener


def serve(home: Path) -> int:
    """Run the service of ``home`` in this process until it stops; the exit status."""
    from aicache.errors import AicacheError
    from aicache.local.paths import ensure_private_dir

    ensure_private_dir(home)
    os.chdir(home)
    os.environ["AICACHE_HOME"] = str(home)
    os.environ.update({"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"})
    # One BLAS thread, set before numpy loads: a lookup's products are small, and spinning
    # BLAS threads on a busy machine made a 1 ms product over 10,000 vectors take 30 ms.
    os.environ.update({name: "1" for name in _THREADS})
    lock = _lock(home)
    if lock is None:
        return 0  # another service of this home runs
    listener = _bind(home)
    bound = home / SOCKET_NAME
    ours = bound.stat().st_ino
    try:
        from aicache.features.embedding import load_embedder
        from aicache.local.store import Store
        from aicache.tasks.semantic_hit.service import LookupService, serve_forever

        embedder: PairEmbedder | AicacheError
        try:
            embedder = load_embedder()
        except AicacheError as exc:  # said to every lookup, so the cache says it once
            embedder = exc
        with Store.open(home) as store:
            service = LookupService(StoreBackend(home, store), embedder, retry=load_embedder)
            reason = serve_forever(listener, bound, service)
        sys.stderr.write(f"aicache semantic service {os.getpid()}: exits ({reason})\n")
    finally:
        listener.close()
        _leave(home, ours, lock)
    return 0


def _leave(home: Path, ours: int, lock: int) -> None:
    # Removed while the lock is held, so a new service never loses its files to this one.
    with suppress(OSError):
        if (home / SOCKET_NAME).stat().st_ino == ours:
            (home / SOCKET_NAME).unlink()
    with suppress(OSError):
        (home / PID_NAME).unlink()
    os.close(lock)


def main(argv: list[str] | None = None) -> int:
    """Fork the service of the home named in ``argv`` and return at once."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m aicache.cli.semantic_daemon HOME\n")
        return 2
    home = Path(args[0])
    if os.fork() > 0:
        return 0
    try:
        code = serve(home)
    except Exception as exc:  # the log is the only place to tell
        sys.stderr.write(f"aicache semantic service: {type(exc).__name__}: {exc}\n")
        code = 1
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(main())
