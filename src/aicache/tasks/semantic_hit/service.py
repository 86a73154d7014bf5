"""The warm semantic service: the whole lookup of a miss, in a process that stays loaded.

Loading the sentence embedder and numpy costs a new process several hundred
milliseconds, far more than one lookup; this process pays it once and answers
``aicache run``'s misses over a Unix socket in the aicache home (see
:mod:`aicache.local.semantic_client` for the client and the wire format). It
keeps every frame's vectors in memory, follows the index by its signature (new
rows are appended, any other change reloads), reloads the decision when the
served model changes, and exits when idle for the configured time, when asked,
or when its home or socket disappears.

What it reads of the store comes through :class:`ServiceBackend`, since this
layer does not import the store; the lookup itself is
:class:`~aicache.tasks.semantic_hit.serving.SemanticServing`'s.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from aicache.errors import AicacheError
from aicache.tasks.semantic_hit.decision import PairDecision
from aicache.tasks.semantic_hit.features import PairEmbedder
from aicache.tasks.semantic_hit.serving import (
    COSINE_FLOOR,
    SHORTLIST,
    PairJudge,
    SemanticServing,
    decode,
)

# Largest request accepted, in bytes: a prompt and a frame, with room to spare.
MAX_REQUEST = 1 << 20
# How often the loop wakes to check its home, socket and idle time.
TICK_S = 1.0
# Rows whose liveness is checked per round while walking down the nearest.
_ROUND = 4 * SHORTLIST
# How often a service without its embedding model tries to load it again, in seconds.
RETRY_S = 30.0
# Texts whose word-piece vectors are kept between lookups.
TOKEN_CACHE = 4096


class IndexedRow(Protocol):
    """One row of the semantic index (``aicache.local.semantic_index.IndexRow``)."""

    @property
    def rowid(self) -> int:
        """Its rowid: rows written later have larger ones."""
        ...

    @property
    def key(self) -> str:
        """The cache key of its answer."""
        ...

    @property
    def frame(self) -> str:
        """Its frame."""
        ...

    @property
    def prompt(self) -> str:
        """The cached prompt."""
        ...

    @property
    def vector(self) -> bytes:
        """Its stored vector."""
        ...


class ServiceBackend(Protocol):
    """What the service reads of this machine: the store's index, the served decision."""

    def signature(self) -> tuple[int, int, str]:
        """Rows, last rowid and its key: changes with every change of the index."""
        ...

    def frame_rows(self, frame: str) -> Sequence[IndexedRow]:
        """Every row of ``frame``."""
        ...

    def rows_after(self, rowid: int) -> Sequence[IndexedRow]:
        """The rows written after ``rowid``."""
        ...

    def live_keys(self, frame: str, prompt: str, keys: Sequence[str], now: float) -> set[str]:
        """Those of ``keys`` a lookup of ``prompt`` may serve at ``now``."""
        ...

    def decision_stamp(self) -> Hashable:
        """Changes whenever the served decision may have changed."""
        ...

    def load_decision(self) -> PairJudge:
        """The served decision."""
        ...

    def idle_s(self) -> float:
        """Seconds without a request after which the service exits."""
        ...


@runtime_checkable
class JointEmbedder(PairEmbedder, Protocol):
    """An embedder that gives sentence and word-piece vectors from one forward pass."""

    def embed_with_tokens(
        self, texts: Sequence[str]
    ) -> tuple[NDArray[np.float32], list[tuple[list[str], NDArray[np.float32]]]]:
        """Sentence vectors and each text's word pieces with their vectors."""
        ...


class TokenCache:
    """The embedder, keeping the word-piece vectors of the texts it saw last.

    The decision compares word pieces of the question with those of each
    shortlisted prompt; the same cached prompts come back lookup after lookup,
    so their forward pass is done once instead of on every miss.
    """

    def __init__(self, embedder: PairEmbedder, size: int = TOKEN_CACHE) -> None:
        self._embedder = embedder
        self._size = size
        self._kept: OrderedDict[str, tuple[list[str], NDArray[np.float32]]] = OrderedDict()

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit sentence vectors, one row per text; their word pieces' vectors are kept from
        the same forward pass, since the decision asks for the question's next."""
        if not isinstance(self._embedder, JointEmbedder):
            return self._embedder.embed(texts)
        vectors, tokens = self._embedder.embed_with_tokens(texts)
        for text, found in zip(texts, tokens, strict=True):
            self._kept[text] = found
        self._trim()
        return vectors

    def token_vectors(self, texts: Sequence[str]) -> list[tuple[list[str], NDArray[np.float32]]]:
        """Each text's word pieces and their unit contextual vectors."""
        missing = [text for text in dict.fromkeys(texts) if text not in self._kept]
        if missing:
            for text, pieces in zip(missing, self._embedder.token_vectors(missing), strict=True):
                self._kept[text] = pieces
        for text in texts:
            self._kept.move_to_end(text)
        found = [self._kept[text] for text in texts]
        self._trim()
        return found

    def _trim(self) -> None:
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)


@dataclass(slots=True)
class _Frame:
    keys: list[str]
    prompts: list[str]
    blobs: list[bytes]
    matrix: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class _Candidate:
    key: str
    prompt: str
    vector: bytes


@dataclass(slots=True)
class FrameVectors:
    """Every loaded frame's vectors, kept in step with the index's signature."""

    dimension: int
    frames: dict[str, _Frame] = field(default_factory=dict)
    seen: tuple[int, int, str] = (0, 0, "")

    def refresh(self, backend: ServiceBackend) -> None:
        """Follow the index: append new rows to loaded frames, or drop them all on any other
        change (a deleted or replaced row), so they reload on their next lookup."""
        now = backend.signature()
        if now == self.seen:
            return
        count, last_rowid, _ = self.seen
        added = backend.rows_after(last_rowid) if count else []
        if count and count + len(added) == now[0] and added and added[-1].rowid == now[1]:
            for row in added:
                frame = self.frames.get(row.frame)
                if frame is not None:
                    self._append(frame, [row])
        else:
            self.frames.clear()
        self.seen = now

    def frame(self, backend: ServiceBackend, name: str) -> _Frame:
        """The vectors of frame ``name``, read on first need."""
        found = self.frames.get(name)
        if found is None:
            empty = np.zeros((0, self.dimension), dtype=np.float32)
            found = self.frames[name] = _Frame([], [], [], empty)
            self._append(found, backend.frame_rows(name))
        return found

    def vectors(self) -> int:
        """How many vectors are in memory."""
        return sum(len(frame.keys) for frame in self.frames.values())

    def _append(self, frame: _Frame, rows: Sequence[IndexedRow]) -> None:
        rows = [r for r in rows if len(r.vector) == 2 * self.dimension]
        if not rows:
            return
        frame.keys.extend(r.key for r in rows)
        frame.prompts.extend(r.prompt for r in rows)
        frame.blobs.extend(r.vector for r in rows)
        added = decode([r.vector for r in rows], self.dimension)
        frame.matrix = np.vstack([frame.matrix, added]) if len(frame.matrix) else added


class LookupService:
    """Answers requests: ``ping``, ``vector``, ``lookup`` and ``stop``.

    Parameters
    ----------
    backend
        The store and the served decision.
    embedder
        The sentence embedder, or the error that kept it from loading (every
        lookup then answers ``unavailable`` with its message).
    """

    def __init__(
        self,
        backend: ServiceBackend,
        embedder: PairEmbedder | AicacheError,
        *,
        retry: Callable[[], PairEmbedder] | None = None,
    ) -> None:
        self.backend = backend
        self.started = time.time()
        self.served = 0
        self.stopping = False
        self._embedder = embedder if isinstance(embedder, AicacheError) else TokenCache(embedder)
        self._retry = retry
        self._tried = time.monotonic()
        self._stamp: Hashable = None
        self._serving: SemanticServing | None = None
        self._index = FrameVectors(_dimension(embedder))

    def handle(self, request: object) -> dict[str, object]:
        """The reply to one decoded request."""
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            return _error("bad-request", "a request is a JSON object with an 'op'")
        op = request["op"]
        if op == "ping":
            self._retry_load()
            return self._status()
        if op == "stop":
            self.stopping = True
            return {"ok": True}
        if op not in ("vector", "lookup", "choose"):
            return _error("bad-request", f"unknown op {op!r}")
        self._retry_load()
        if isinstance(self._embedder, AicacheError):
            return {"ok": False, "error": "unavailable", **self._unavailable()}
        prompt, frame, now = request.get("prompt"), request.get("frame", ""), request.get("now")
        if not isinstance(prompt, str) or not isinstance(frame, str):
            return _error("bad-request", "'prompt' and 'frame' must be strings")
        if op == "lookup" and not isinstance(now, int | float):
            return _error("bad-request", "'now' must be a number")
        self.served += 1
        serving = self._current()
        if op == "choose":
            return self._choose(serving, prompt, request)
        vector = serving.vector(prompt)
        reply: dict[str, object] = {"ok": True, "vector": base64.b64encode(vector).decode()}
        if op == "lookup":
            assert isinstance(now, int | float)
            reply["match"] = self._nearest(serving, frame, prompt, vector, float(now))
        return reply

    def _retry_load(self) -> None:
        # Installed meanwhile? Tried again now and then, not on every miss.
        if not isinstance(self._embedder, AicacheError) or self._retry is None:
            return
        if time.monotonic() - self._tried < RETRY_S:
            return
        self._tried = time.monotonic()
        try:
            loaded = self._retry()
        except AicacheError as exc:
            self._embedder = exc
            return
        self._embedder = TokenCache(loaded)
        self._index = FrameVectors(_dimension(loaded))

    def _unavailable(self) -> dict[str, object]:
        if not isinstance(self._embedder, AicacheError):
            return {}
        return {"message": self._embedder.message, "hint": self._embedder.hint or ""}

    def _current(self) -> SemanticServing:
        stale = self._stamp is not None and self.backend.decision_stamp() != self._stamp
        if self._serving is None or stale:
            assert not isinstance(self._embedder, AicacheError)
            # Loaded on the first shortlist, as in a process of its own: a miss with no
            # near prompt, or a vector to store, needs no decision.
            self._serving = SemanticServing(self._embedder, self._load_decision)
            self._stamp = None
        return self._serving

    def _load_decision(self) -> PairJudge:
        decision = self.backend.load_decision()
        if isinstance(decision, PairDecision):  # judged with the kept word-piece vectors
            embedder = self._embedder
            assert not isinstance(embedder, AicacheError)
            decision = PairDecision(
                decision.params, threshold=decision.threshold, embedder=embedder
            )
        # Taken after loading: reading the registry may touch its files.
        self._stamp = self.backend.decision_stamp()
        return decision

    def _nearest(
        self, serving: SemanticServing, name: str, prompt: str, vector: bytes, now: float
    ) -> dict[str, object] | None:
        self._index.refresh(self.backend)
        frame = self._index.frame(self.backend, name)
        if not frame.keys:
            return None
        query = decode([vector], self._index.dimension)[0]
        cosines = frame.matrix @ query
        near = _ranked(cosines, _ROUND)
        live: list[_Candidate] = []
        # Walk down the nearest until the shortlist is full of live rows: the rest are
        # farther, so the shortlist is the one the store's candidates would give.
        for start in range(0, len(cosines), _ROUND):
            if start == _ROUND:  # more than a round's rows were gone: rank them all
                near = _ranked(cosines, len(cosines))
            rows = [int(i) for i in near[start : start + _ROUND]]
            if not rows:
                break
            keys = [frame.keys[i] for i in rows]
            ok = self.backend.live_keys(name, prompt, keys, now)
            live.extend(
                _Candidate(frame.keys[i], frame.prompts[i], frame.blobs[i])
                for i in rows
                if frame.keys[i] in ok
            )
            if len(live) >= SHORTLIST:
                break
        chosen = serving.choose(prompt, vector, live[:SHORTLIST])
        if chosen is None:
            return None
        index, score = chosen
        found = live[index]
        return {"key": found.key, "prompt": found.prompt, "score": score}

    def _choose(
        self, serving: SemanticServing, prompt: str, request: dict[str, object]
    ) -> dict[str, object]:
        listed = request.get("candidates")
        try:
            vector = base64.b64decode(str(request["vector"]), validate=True)
            assert isinstance(listed, list)
            candidates = [
                _Candidate("", str(text), base64.b64decode(str(blob), validate=True))
                for text, blob in listed
            ]
        except (KeyError, ValueError, TypeError, AssertionError) as exc:
            return _error("bad-request", f"'vector' and 'candidates' are malformed ({exc})")
        chosen = serving.choose(prompt, vector, candidates)
        return {"ok": True, "chosen": None if chosen is None else list(chosen)}

    def _status(self) -> dict[str, object]:
        return {
            "ok": True,
            "pid": os.getpid(),
            "started": self.started,
            "served": self.served,
            "idle_s": self.backend.idle_s(),
            "frames": len(self._index.frames),
            "vectors": self._index.vectors(),
            "available": not isinstance(self._embedder, AicacheError),
            **self._unavailable(),
        }


def _ranked(cosines: NDArray[np.float32], top: int) -> NDArray[np.intp]:
    """The ``top`` rows of highest cosine, best first, less those under the floor."""
    if top < len(cosines):
        rows = np.argpartition(-cosines, top - 1)[:top]
    else:
        rows = np.arange(len(cosines))
    rows = rows[np.argsort(-cosines[rows], kind="stable")]
    return rows[cosines[rows] >= COSINE_FLOOR]


def _dimension(embedder: PairEmbedder | AicacheError) -> int:
    if isinstance(embedder, AicacheError):
        return 0
    return int(getattr(embedder, "dimension", len(embedder.embed(["warm up"])[0])))


def _error(code: str, message: str) -> dict[str, object]:
    return {"ok": False, "error": code, "message": message}


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux), or ``None`` where it cannot be told."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    raw = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


def answer(conn: socket.socket, service: LookupService) -> None:
    """Read one request line from ``conn`` and write its reply line."""
    uid = peer_uid(conn)
    if uid is not None and uid != os.getuid():
        # Only the owner's processes may ask: the prompts are theirs.
        _send(conn, _error("refused", "the semantic service answers its owner only"))
        return
    data = b""
    while not data.endswith(b"\n") and len(data) <= MAX_REQUEST:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    if len(data) > MAX_REQUEST:
        _send(conn, _error("bad-request", f"request larger than {MAX_REQUEST} bytes"))
        return
    try:
        request = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        _send(conn, _error("bad-request", f"not a JSON request: {exc}"))
        return
    try:
        reply = service.handle(request)
    except AicacheError as exc:  # no model to serve: the cache says so once
        reply = {"ok": False, "error": "unavailable", "message": exc.message, "hint": exc.hint}
    except Exception as exc:  # one bad lookup must not take the service down
        reply = _error("failed", f"{type(exc).__name__}: {exc}")
    _send(conn, reply)


def _send(conn: socket.socket, reply: dict[str, object]) -> None:
    conn.sendall(json.dumps(reply).encode("utf-8") + b"\n")


def serve_forever(
    listener: socket.socket,
    socket_path: Path,
    service: LookupService,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Answer connections on ``listener`` until a reason to stop; return the reason.

    Stops after ``backend.idle_s()`` without a request, on a ``stop``
    request, or when ``socket_path`` no longer is the socket bound here (its
    home deleted, or another service took its place).
    """
    bound = socket_path.stat().st_ino
    last = clock()
    listener.settimeout(TICK_S)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            conn = None
        if conn is not None:
            with conn:
                conn.settimeout(10.0)
                try:
                    answer(conn, service)
                except OSError as exc:  # the client went away mid-reply
                    sys.stderr.write(f"aicache semantic service: {exc}\n")
            last = clock()
            if service.stopping:
                return "asked to stop"
        try:
            if socket_path.stat().st_ino != bound:
                return "its socket was replaced"
        except FileNotFoundError:
            return "its socket or home was removed"
        if clock() - last >= service.backend.idle_s():
            return "idle"


__all__ = [
    "MAX_REQUEST",
    "FrameVectors",
    "IndexedRow",
    "LookupService",
    "ServiceBackend",
    "TokenCache",
    "answer",
    "peer_uid",
    "serve_forever",
]
