"""Cache entries and interaction events: keys, lookups, writes and pruning.

A cache key is the HMAC-SHA256, under the home's random key (see
:mod:`aicache.local.home_key`), of the command's argv (program reduced to its
basename), a keyed digest of its standard input when read, and its context (see
:mod:`aicache.local.context`; the runner adds what identifies the program).
Events never hold the key material itself, only a hash of the key, the tool
and normalised tokens.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from aicache.errors import AicacheError
from aicache.local.home_key import home_key, keyed_hex
from aicache.local.secrets import MARK, redact_argv, redact_word
from aicache.local.store import Store
from aicache.local.units import bounded_timestamp

# 2: keys and stored hashes are keyed by the home's secret; entries of format 1 simply miss.
KEY_FORMAT = 2


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What identifies a cached answer.

    Attributes
    ----------
    digest
        Hex HMAC-SHA256 of the key material: the primary key of the entry.
    tool
        The program's basename (``claude``).
    argv
        The argv with the program reduced to ``tool``.
    stdin_sha256
        Hex HMAC-SHA256 of standard input when it was read, else ``None`` (the
        command got ``/dev/null`` or inherited its input unread).
    context
        The context values that went into the key.
    """

    digest: str
    tool: str
    argv: tuple[str, ...]
    stdin_sha256: str | None
    context: dict[str, str]

    @property
    def event_hash(self) -> str:
        """A hash of the key that events keep: it links events without revealing the key."""
        return event_hash(self.digest)


def event_hash(digest: str) -> str:
    """The hash events keep of the cache key ``digest`` (see :attr:`CacheKey.event_hash`)."""
    return hashlib.sha256(("event:" + digest).encode()).hexdigest()[:32]


def make_key(
    argv: list[str], stdin: bytes | None, context: dict[str, str], *, secret: bytes
) -> CacheKey:
    """Build the cache key of running ``argv`` with ``stdin`` in ``context``.

    ``secret`` is the home's key (:func:`aicache.local.home_key.home_key`): the
    same command gives the same key within one home, and a stored key cannot be
    used to test guesses of a password on the command line without it.
    """
    tool = argv[0].rstrip("/").rsplit("/", 1)[-1]
    normalised = (tool, *argv[1:])
    stdin_sha = None if stdin is None else keyed_hex(secret, stdin)
    material = json.dumps(
        {"v": KEY_FORMAT, "argv": normalised, "stdin": stdin_sha, "context": context},
        sort_keys=True,
        ensure_ascii=False,
    )
    digest = keyed_hex(secret, material.encode("utf-8", "surrogateescape"))
    return CacheKey(digest, tool, normalised, stdin_sha, context)


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored result that can be replayed."""

    stdout: bytes
    stderr: bytes
    exit_code: int
    duration_s: float
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Event:
    """One call through the cache, as the store keeps it (no raw text unless allowed)."""

    tool: str
    key_hash: str
    outcome: str
    latency_ms: float
    output_bytes: int
    exit_code: int
    stored: bool
    tokens: str
    oversize: bool = False
    saved_s: float = 0.0
    error_signature: str | None = None
    language: str | None = None
    raw_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A result to store under ``key``."""

    key: CacheKey
    stdout: bytes
    stderr: bytes
    exit_code: int
    duration_s: float
    expires_at: float | None


def lookup(store: Store, key: CacheKey, now: float) -> CachedAnswer | None:
    """Return the live entry for ``key``, or ``None`` when absent or expired."""
    row = store.conn.execute(
        "SELECT stdout, stderr, exit_code, duration_s, expires_at, created_at "
        "FROM cache_entries WHERE key = ?",
        (key.digest,),
    ).fetchone()
    if row is None or (row[4] is not None and row[4] <= now):
        return None
    return CachedAnswer(bytes(row[0]), bytes(row[1]), int(row[2]), float(row[3]), float(row[5]))


def record(store: Store, event: Event, *, entry: NewEntry | None = None, hit: str = "") -> None:
    """Write an event, and the new entry or the hit on entry ``hit``, in one transaction."""
    now = time.time()
    secret = home_key(store.path.parent)
    with store.write() as conn:
        if entry is not None:
            conn.execute(
                "INSERT OR REPLACE INTO cache_entries (key, tool, argv, stdin_sha256, context, "
                "stdout, stderr, exit_code, duration_s, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.key.digest,
                    redact_word(entry.key.tool, secret),
                    # Secret values only hashed: the key above was made from the real argv,
                    # so a hit still matches (see aicache.local.secrets).
                    json.dumps(redact_argv(entry.key.argv, secret), ensure_ascii=False),
                    entry.key.stdin_sha256,
                    json.dumps(entry.key.context, sort_keys=True),
                    entry.stdout,
                    entry.stderr,
                    entry.exit_code,
                    entry.duration_s,
                    now,
                    entry.expires_at,
                ),
            )
        if hit:
            conn.execute(
                "UPDATE cache_entries SET hits = hits + 1, last_hit_at = ? WHERE key = ?",
                (now, hit),
            )
        conn.execute(
            "INSERT INTO events (ts, tool, key_hash, outcome, latency_ms, output_bytes, "
            "exit_code, stored, oversize, saved_s, tokens, error_signature, language, raw_prompt) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now,
                redact_word(event.tool, secret),
                event.key_hash,
                event.outcome,
                event.latency_ms,
                event.output_bytes,
                event.exit_code,
                int(event.stored),
                int(event.oversize),
                event.saved_s,
                event.tokens,
                event.error_signature,
                event.language,
                event.raw_prompt,
            ),
        )


@dataclass(frozen=True, slots=True)
class EntrySummary:
    """What ``aicache list`` shows of an entry."""

    key: str
    tool: str
    argv: tuple[str, ...]
    size: int
    created_at: float
    expires_at: float | None
    hits: int


@dataclass(frozen=True, slots=True)
class EntryDetail:
    """Everything kept about one entry (``aicache inspect``)."""

    summary: EntrySummary
    stdin_sha256: str | None
    context: dict[str, str]
    stdout: bytes
    stderr: bytes
    exit_code: int
    duration_s: float
    last_hit_at: float | None


_SUMMARY_COLUMNS = "key, tool, argv, length(stdout) + length(stderr), created_at, expires_at, hits"


def _summary(row: tuple[object, ...]) -> EntrySummary:
    key, tool, argv, size, created, expires, hits = row
    return EntrySummary(
        key=str(key),
        tool=str(tool),
        argv=tuple(json.loads(str(argv))),
        size=int(str(size)),
        created_at=float(str(created)),
        expires_at=bounded_timestamp(None if expires is None else float(str(expires))),
        hits=int(str(hits)),
    )


def list_entries(store: Store, *, tool: str | None = None) -> list[EntrySummary]:
    """All entries, newest first, optionally for one tool."""
    query = f"SELECT {_SUMMARY_COLUMNS} FROM cache_entries"
    params: tuple[str, ...] = ()
    if tool:
        query, params = query + " WHERE tool = ?", (tool,)
    rows = store.conn.execute(query + " ORDER BY created_at DESC", params).fetchall()
    return [_summary(row) for row in rows]


def get_entry(store: Store, key_prefix: str) -> EntryDetail:
    """The entry whose key starts with ``key_prefix``.

    Raises
    ------
    AicacheError
        If no entry or more than one entry matches.
    """
    prefix = key_prefix.strip().lower()
    if not prefix or any(c not in "0123456789abcdef" for c in prefix):
        raise AicacheError(
            f"invalid key {key_prefix!r}: a key is hexadecimal",
            hint="Copy a key (or its first characters) from `aicache list`.",
        )
    rows = store.conn.execute(
        f"SELECT {_SUMMARY_COLUMNS}, stdin_sha256, context, stdout, stderr, exit_code, "
        "duration_s, last_hit_at FROM cache_entries WHERE substr(key, 1, ?) = ? LIMIT 2",
        (len(prefix), prefix),
    ).fetchall()
    if not rows:
        raise AicacheError(
            f"no cache entry has a key starting with {prefix!r}",
            hint="`aicache list` shows the keys.",
        )
    if len(rows) > 1:
        raise AicacheError(
            f"more than one cache entry has a key starting with {prefix!r}",
            hint="Give more characters of the key.",
        )
    row = rows[0]
    return EntryDetail(
        summary=_summary(row[:7]),
        stdin_sha256=row[7],
        context=json.loads(row[8]),
        stdout=bytes(row[9]),
        stderr=bytes(row[10]),
        exit_code=int(row[11]),
        duration_s=float(row[12]),
        last_hit_at=row[13],
    )


@dataclass(frozen=True, slots=True)
class Refreshable:
    """An entry that can be re-run without the user: its command, where, and for how long."""

    key: str
    argv: tuple[str, ...]
    context: dict[str, str]
    ttl_s: float | None
    empty_input: bool = False
    """The command read an empty input: the re-run must read one too to get the same key."""


# What prefetch can re-run unattended: an entry of an allowed tool whose
# command read no input (the same key comes back) and holds no hashed secret
# (the real value is not kept, so the command cannot be rebuilt). Prune keeps
# exactly these.
_REFRESHABLE = (
    "tool IN ({marks}) AND (stdin_sha256 IS NULL OR stdin_sha256 = ?) AND instr(argv, ?) = 0"
)


def _empty_stdin(store: Store) -> str:
    """The stored hash of an empty standard input in ``store``'s home."""
    return keyed_hex(home_key(store.path.parent), b"")


def refreshable(
    store: Store, tools: frozenset[str], *, now: float, within_s: float
) -> list[Refreshable]:
    """Entries of ``tools`` that are expired or expire within ``within_s``.

    Only entries whose command read no input can be re-run unattended (their
    input was empty or not read, so the same key comes back), and whose argv
    holds no hashed secret (the real value is not kept, so the command cannot
    be rebuilt).
    """
    kept = sorted(tools)
    empty = _empty_stdin(store)
    condition = _REFRESHABLE.format(marks=", ".join("?" for _ in kept))
    rows = store.conn.execute(
        "SELECT key, argv, context, created_at, expires_at, stdin_sha256 FROM cache_entries "
        f"WHERE {condition} AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at",
        (*kept, empty, MARK, now + within_s),
    ).fetchall()
    return [
        Refreshable(
            key=str(key),
            argv=tuple(json.loads(argv)),
            context=json.loads(context),
            ttl_s=float(expires) - float(created),
            empty_input=stdin == empty,
        )
        for key, argv, context, created, expires, stdin in rows
    ]


def clear(store: Store) -> int:
    """Delete every cache entry (events stay, for statistics). Returns how many went."""
    with store.write() as conn:
        return conn.execute("DELETE FROM cache_entries").rowcount


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune removed, and the expired entries it kept for prefetch."""

    expired: int
    aged: int
    raw_cleared: int
    kept_expired: int = 0


def prune(
    store: Store,
    *,
    now: float,
    max_age_s: float,
    keep_tools: frozenset[str] = frozenset(),
    drop_expired: bool = True,
) -> PruneResult:
    """Remove expired entries and raw text older than the retention window.

    Expired entries that ``aicache prefetch`` would refresh (of ``keep_tools``:
    the tools the user allows it to re-run and that are predicted to be needed
    soon; see :func:`refreshable`) stay, and are counted in
    :attr:`PruneResult.kept_expired`. With ``drop_expired`` false only the
    retention window applies: nothing ever outlives it.
    """
    cutoff = now - max_age_s
    kept = sorted(keep_tools)
    condition = _REFRESHABLE.format(marks=", ".join("?" for _ in kept))
    expired_now = "expires_at IS NOT NULL AND expires_at <= ?"
    with store.write() as conn:
        expired = kept_expired = 0
        if drop_expired:
            expired = conn.execute(
                f"DELETE FROM cache_entries WHERE {expired_now} AND NOT ({condition})",
                (now, *kept, _empty_stdin(store), MARK),
            ).rowcount
            kept_expired = conn.execute(
                f"SELECT count(*) FROM cache_entries WHERE {expired_now} AND created_at >= ?",
                (now, cutoff),
            ).fetchone()[0]
        aged = conn.execute("DELETE FROM cache_entries WHERE created_at < ?", (cutoff,)).rowcount
        raw = conn.execute(
            "UPDATE events SET raw_prompt = NULL WHERE raw_prompt IS NOT NULL AND ts < ?",
            (cutoff,),
        ).rowcount
        raw += conn.execute(
            "UPDATE commands SET raw = NULL WHERE raw IS NOT NULL AND ts IS NOT NULL AND ts < ?",
            (cutoff,),
        ).rowcount
        conn.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('last-prune', ?)", (repr(now),)
        )
    return PruneResult(expired, aged, raw, kept_expired)
