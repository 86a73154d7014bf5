"""Semantic hits in the store: the index follows the cache entries, feedback is kept and
marked, and a prompt's frame holds everything of the call but the prompt."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aicache.local import semantic_store as semantic
from aicache.local.adapters import classify
from aicache.local.cache import CacheKey, Event, NewEntry, clear, make_key, prune, record
from aicache.local.home_key import home_key
from aicache.local.privacy import export_data, kept_data
from aicache.local.runner import parse_run_args
from aicache.local.semantic_run import prompt_places, semantic_query
from aicache.local.settings import Settings, validate_setting
from aicache.local.store import Store
from tests.conftest import Cli


def _event(key: CacheKey) -> Event:
    return Event("llm", key.event_hash, "miss", 1.0, 10, 0, True, "llm")


def _stored(store: Store, prompt: str, *, expires_at: float | None = None) -> str:
    """Store an answer to ``llm PROMPT`` and index it; return its key."""
    key = make_key(["llm", prompt], None, {"scope": "global"}, secret=home_key(store.path.parent))
    entry = NewEntry(key, prompt.upper().encode(), b"", 0, 1.0, expires_at)
    record(store, _event(key), entry=entry)
    semantic.index_entry(
        store,
        key=key.digest,
        frame="frame-1",
        tool="llm",
        scope="global",
        prompt=prompt,
        vector=prompt.encode(),
    )
    return key.digest


def test_candidates_are_live_entries_of_the_frame(home: Path) -> None:
    # Prepare
    with Store.open(home) as store:
        live = _stored(store, "how do I undo my last commit")
        _stored(store, "delete a local branch", expires_at=time.time() - 1)
        # Execute
        found = semantic.candidates(store, "frame-1", "how can I revert it", time.time())
        other_frame = semantic.candidates(store, "frame-2", "how can I revert it", time.time())
    # Assert
    assert [(c.key, c.prompt, c.vector) for c in found] == [
        (live, "how do I undo my last commit", b"how do I undo my last commit")
    ]
    assert other_frame == []


def test_deleted_entries_lose_their_vectors(home: Path) -> None:
    # Prepare
    with Store.open(home) as store:
        _stored(store, "old question")
        store.conn.execute("UPDATE cache_entries SET created_at = 0")
        _stored(store, "new question")
        # Execute: prune drops the old entry, clear the rest
        prune(store, now=time.time(), max_age_s=3600)
        after_prune = [r[0] for r in store.conn.execute("SELECT prompt FROM semantic_entries")]
        clear(store)
        after_clear = store.conn.execute("SELECT count(*) FROM semantic_entries").fetchone()[0]
    # Assert
    assert after_prune == ["new question"]
    assert after_clear == 0


def test_a_vector_is_not_kept_for_an_entry_that_is_gone(home: Path) -> None:
    # Prepare
    with Store.open(home) as store:
        # Execute
        semantic.index_entry(
            store, key="ab" * 32, frame="f", tool="llm", scope="global", prompt="q", vector=b"v"
        )
        kept = store.conn.execute("SELECT count(*) FROM semantic_entries").fetchone()[0]
    # Assert
    assert kept == 0


def _hit(store: Store, query: str, cached_key: str, cached: str, score: float = 0.9) -> None:
    semantic.record_hit(
        store,
        tool="llm",
        frame="frame-1",
        query_prompt=query,
        cached=semantic.SemanticCandidate(cached_key, cached, b""),
        score=score,
    )


def test_feedback_is_right_until_asked_again_soon_refreshed_or_marked(home: Path) -> None:
    # Prepare
    with Store.open(home) as store:
        key = _stored(store, "how do I undo my last commit")
        _hit(store, "how can I revert it", key, "how do I undo my last commit")
        _hit(store, "undo the commit", key, "how do I undo my last commit", 0.8)
        now = time.time()
        # Execute
        late = semantic.mark_asked_again(
            store, frame="frame-1", query_prompt="how can I revert it", reason="re-ask",
            within_s=semantic.REASK_S, now=now + semantic.REASK_S + 5,
        )  # fmt: skip
        soon = semantic.mark_asked_again(
            store, frame="frame-1", query_prompt="how can I revert it", reason="re-ask",
            within_s=semantic.REASK_S, now=now + 5,
        )  # fmt: skip
        explicit = semantic.mark_last_wrong(store)
        again = semantic.mark_last_wrong(store)
        rows = semantic.read_feedback(store)
        stats = semantic.semantic_stats(store)
        # the wrong answer is no longer a candidate for that question, still for others
        for_it = semantic.candidates(store, "frame-1", "how can I revert it", now)
        for_other = semantic.candidates(store, "frame-1", "another question", now)
    # Assert
    assert late is None
    assert soon is not None and soon.wrong and soon.reason == "re-ask"
    assert explicit is not None and explicit[0].query == "undo the commit"
    assert explicit[1] is False and explicit[0].reason == "explicit"
    assert again is not None and again[1] is True
    assert [(r.query, r.cached_prompt, r.wrong, r.reason) for r in rows] == [
        ("how can I revert it", "how do I undo my last commit", True, "re-ask"),
        ("undo the commit", "how do I undo my last commit", True, "explicit"),
    ]
    assert rows[1].score == pytest.approx(0.8)
    assert (stats.hits, stats.wrong, stats.indexed) == (2, 2, 1)
    assert stats.wrong_rate == 1.0
    assert for_it == []
    assert [c.key for c in for_other] == [key]


def test_feedback_goes_with_the_retention_window(home: Path) -> None:
    # Prepare
    with Store.open(home) as store:
        _hit(store, "q1", "k1", "c1")
        store.conn.execute("UPDATE semantic_feedback SET ts = 0")
        _hit(store, "q2", "k2", "c2")
        # Execute
        removed = semantic.prune_feedback(store, now=time.time(), max_age_s=3600)
        left = [r.query for r in semantic.read_feedback(store)]
    # Assert
    assert removed == 1
    assert left == ["q2"]


def test_no_semantic_hit_to_mark_wrong(home: Path) -> None:
    with Store.open(home) as store:
        assert semantic.mark_last_wrong(store) is None


@pytest.mark.parametrize(
    ("argv", "prompt"),
    [
        (("llm", "-m", "gpt-4o", "how do I undo"), ("how do I undo",)),
        (("llm", "prompt", "-s", "be brief", "why", "now"), ("why", "now")),
        (("gemini", "-m", "pro", "-p", "hello there"), ("hello there",)),
        (("gemini", "--prompt=hi"), ("--prompt=hi",)),
        (("claude", "--model", "opus", "-p", "explain rebase"), ("explain rebase",)),
        (("ollama", "run", "llama3", "why", "is", "it", "blue"), ("why", "is", "it", "blue")),
        (("openai", "api", "chat.completions.create", "-m", "x", "-g", "user", "hi"), ("hi",)),
    ],
)  # fmt: skip
def test_the_adapter_table_says_where_the_prompt_is(
    argv: tuple[str, ...], prompt: tuple[str, ...]
) -> None:
    # Execute
    invocation = classify(argv)
    # Assert
    assert tuple(argv[i] for i in invocation.prompt_at) == prompt


def _query(argv: tuple[str, ...], settings: Settings, scope: str = "global") -> str | None:
    secret = b"k" * 32
    key = make_key(list(argv), None, {"scope": scope}, secret=secret)
    places = prompt_places(key.argv, classify(argv), settings)
    found = semantic_query(key, places, None, scope, secret=secret)
    return None if found is None else found.frame


def test_a_frame_is_the_call_without_its_prompt() -> None:
    # Prepare
    plain = Settings()
    # Execute
    first = _query(("llm", "-m", "gpt-4o", "how do I undo my last commit"), plain)
    reworded = _query(("llm", "-m", "gpt-4o", "how can I revert the latest commit"), plain)
    in_words = _query(("llm", "-m", "gpt-4o", "how", "can", "I", "revert", "it"), plain)
    other_model = _query(("llm", "-m", "claude", "how can I revert the latest commit"), plain)
    other_scope = _query(("llm", "-m", "gpt-4o", "how do I undo"), plain, scope="project")
    # Assert
    assert first is not None and first == reworded == in_words
    assert other_model not in (None, first)
    assert other_scope not in (None, first)


def test_commands_outside_the_table_are_exact_only_unless_configured() -> None:
    # Prepare
    configured = Settings(semantic_commands=("mytool ask",))
    # Execute
    unconfigured = _query(("mytool", "ask", "what is a monad"), Settings())
    first = _query(("mytool", "ask", "what is a monad"), configured)
    reworded = _query(("mytool", "ask", "explain", "monads", "to", "me"), configured)
    other_command = _query(("mytool", "tell", "explain monads"), configured)
    no_prompt = _query(("mytool", "ask"), configured)
    session = _query(("llm", "chat"), configured)
    # Assert
    assert unconfigured is None
    assert first is not None and first == reworded
    assert other_command is None and no_prompt is None and session is None


def test_a_stored_prompt_keeps_secrets_hashed() -> None:
    # Prepare
    secret = b"k" * 32
    argv = ("llm", "use key sk-abcdefghijklmnopqrstuvwxyz123456 to call it")
    key = make_key(list(argv), None, {}, secret=secret)
    # Execute
    query = semantic_query(key, (1,), None, "global", secret=secret)
    # Assert
    assert query is not None
    assert "sk-abcdef" not in query.prompt and "<secret:" in query.prompt


def test_exact_flag_and_settings() -> None:
    # Execute
    request = parse_run_args(["--exact", "--", "llm", "hi"])
    off = Settings.from_stored({"semantic": validate_setting("semantic", "off")})
    marks = validate_setting("semantic-commands", " mytool  ask ,other ")
    # Assert
    assert request.exact is True and parse_run_args(["llm", "hi"]).exact is False
    assert Settings().semantic is True and off.semantic is False
    assert marks == "mytool ask, other"
    with pytest.raises(ValueError, match="invalid switch"):
        validate_setting("semantic", "maybe")
    with pytest.raises(ValueError, match="invalid command"):
        validate_setting("semantic-commands", "/bin/tool ask")


def test_export_and_privacy_show_cover_the_semantic_tables(home: Path) -> None:
    # Prepare
    with Store.open(home) as store:
        key = _stored(store, "how do I undo my last commit")
        _hit(store, "how can I revert it", key, "how do I undo my last commit")
        # Execute
        document = json.loads(json.dumps(export_data(store, home)))
        kept = {k.kind: k.rows for k in kept_data(store)}
    # Assert
    [indexed] = document["semantic_entries"]
    assert indexed["prompt"] == "how do I undo my last commit"
    assert indexed["vector"] == {"text": "how do I undo my last commit"}
    assert [r["query_prompt"] for r in document["semantic_feedback"]] == ["how can I revert it"]
    assert kept["semantic index (cached prompts and their sentence vectors)"] == 1
    assert kept["semantic-hit feedback (question, cached prompt, score, right or wrong)"] == 1


def test_without_the_embedding_model_the_cache_is_exact_only_and_says_so_once(
    cli: Cli, tmp_path: Path
) -> None:
    # Prepare: a prompt command, and no model where the embedder looks for it
    empty = tmp_path / "no-model"
    empty.mkdir()
    cli.env["AICACHE_EMBEDDING_MODEL"] = str(empty)
    assert cli.run("config", "set", "semantic-commands", "fake-ai ask").returncode == 0
    # Execute
    first = cli.run("run", "--", "fake-ai", "ask", "how do I undo my last git commit")
    second = cli.run("run", "--", "fake-ai", "ask", "how can I revert the latest git commit")
    repeat = cli.run("run", "--", "fake-ai", "ask", "how do I undo my last git commit")
    # Assert: both questions ran the tool, the repeat was an exact hit, one notice in all
    assert first.returncode == second.returncode == repeat.returncode == 0
    assert b"Answer to: ask how can I revert the latest git commit" in second.stdout
    assert b"Answer to: ask how do I undo my last git commit" in repeat.stdout
    assert cli.invocations() == 2
    notices = [
        line
        for result in (first, second, repeat)
        for line in result.stderr.decode().splitlines()
        if "semantic hits are off" in line
    ]
    assert len(notices) == 1, notices
    assert "exact repeats only" in notices[0] and "aicache[semantic]" in notices[0]
    assert "Traceback" not in (first.stderr + second.stderr).decode()


def test_wrong_without_a_semantic_hit_says_so_and_stats_count_exact_hits(cli: Cli) -> None:
    # Prepare: one exact hit
    cli.run("run", "--", "fake-ai", "ask", "hello")
    cli.run("run", "--", "fake-ai", "ask", "hello")
    # Execute
    wrong = cli.run("wrong")
    stats = cli.run("stats", "--json")
    # Assert
    assert wrong.returncode == 1
    assert wrong.stderr.decode().startswith("error: no semantic hit to mark wrong")
    assert "Traceback" not in wrong.stderr.decode()
    semantic = json.loads(stats.stdout)["semantic"]
    assert semantic == {
        "hits": 0,
        "exact_hits": 1,
        "wrong": 0,
        "wrong_rate": 0.0,
        "indexed_prompts": 0,
    }


def test_a_semantic_commands_prompt_ends_at_the_first_option() -> None:
    # Prepare: a tool outside the table whose `ask` takes a prompt, then options
    configured = Settings(semantic_commands=("mytool ask",))
    # Execute
    gpt = _query(("mytool", "ask", "how", "do", "I", "undo", "-m", "gpt-4"), configured)
    reworded = _query(("mytool", "ask", "how", "can", "I", "revert", "-m", "gpt-4"), configured)
    other_model = _query(("mytool", "ask", "how", "do", "I", "undo", "-m", "claude"), configured)
    # Assert: the model after the prompt stays in the frame
    assert gpt is not None and gpt == reworded
    assert other_model not in (None, gpt)
