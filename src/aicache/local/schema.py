"""The store's schema as an ordered list of migrations.

``PRAGMA user_version`` holds how many migrations a file has had; opening a
store applies the missing ones in one transaction. Append, never edit.
"""

from __future__ import annotations

# "AICA" in ASCII: marks a SQLite file as an aicache store.
APPLICATION_ID = 0x41494341

MIGRATIONS: tuple[str, ...] = (
    # 1: cache entries, interaction events, imported shell history, settings.
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE cache_entries (
        key TEXT PRIMARY KEY,
        tool TEXT NOT NULL,
        argv TEXT NOT NULL,
        stdin_sha256 TEXT,
        context TEXT NOT NULL,
        stdout BLOB NOT NULL,
        stderr BLOB NOT NULL,
        exit_code INTEGER NOT NULL,
        duration_s REAL NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL,
        last_hit_at REAL,
        hits INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX cache_entries_created ON cache_entries(created_at);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        tool TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('hit', 'miss', 'refresh', 'error')),
        latency_ms REAL NOT NULL,
        output_bytes INTEGER NOT NULL,
        exit_code INTEGER NOT NULL,
        stored INTEGER NOT NULL,
        oversize INTEGER NOT NULL DEFAULT 0,
        saved_s REAL NOT NULL DEFAULT 0,
        tokens TEXT NOT NULL,
        error_signature TEXT,
        language TEXT,
        raw_prompt TEXT
    );
    CREATE INDEX events_ts ON events(ts);
    CREATE TABLE commands (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts REAL,
        session INTEGER,
        program TEXT NOT NULL,
        subcommand TEXT,
        flags TEXT NOT NULL,
        n_args INTEGER NOT NULL,
        dir_hash TEXT,
        failed INTEGER,
        raw TEXT
    );
    CREATE INDEX commands_order ON commands(source, seq);
    CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        origin TEXT NOT NULL,
        user TEXT,
        imported_at REAL NOT NULL,
        added INTEGER NOT NULL,
        skipped INTEGER NOT NULL
    );
    """,
    # 2: imported commands recognised by content, not position: a command
    # without a time is known by the hashes of its neighbourhood.
    """
    ALTER TABLE commands ADD COLUMN before_hash TEXT;
    ALTER TABLE commands ADD COLUMN after_hash TEXT;
    CREATE INDEX commands_before ON commands(before_hash);
    CREATE INDEX commands_after ON commands(after_hash);
    """,
    # 3: semantic hits. The prompt of each cached answer with its sentence
    # embedding, grouped by its frame (the key of the command with the prompt
    # left out: same tool, options, model configuration and scope), and the
    # feedback on every semantic hit served. A deleted entry takes its vector along.
    """
    CREATE TABLE semantic_entries (
        key TEXT PRIMARY KEY,
        frame TEXT NOT NULL,
        tool TEXT NOT NULL,
        scope TEXT NOT NULL,
        prompt TEXT NOT NULL,
        vector BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX semantic_entries_frame ON semantic_entries(frame);
    CREATE TRIGGER semantic_entries_follow AFTER DELETE ON cache_entries
    BEGIN
        DELETE FROM semantic_entries WHERE key = old.key;
    END;
    CREATE TABLE semantic_feedback (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        tool TEXT NOT NULL,
        frame TEXT NOT NULL,
        query_prompt TEXT NOT NULL,
        cached_key TEXT NOT NULL,
        cached_prompt TEXT NOT NULL,
        score REAL NOT NULL,
        wrong INTEGER NOT NULL DEFAULT 0,
        reason TEXT
    );
    CREATE INDEX semantic_feedback_query ON semantic_feedback(frame, query_prompt);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

# Tables that hold the user's data, in the order an export lists them.
DATA_TABLES = (
    "settings",
    "cache_entries",
    "events",
    "commands",
    "imports",
    "semantic_entries",
    "semantic_feedback",
)
