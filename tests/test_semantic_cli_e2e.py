"""Semantic hits through the real ``aicache`` command, with the real embedding model.

A fake AI CLI made a prompt command with the ``semantic-commands`` setting; a
semantic-hit decision trained here on the task's synthetic developers (not on
the phrases below) and registered as the home's newest model, which is what
``aicache run`` serves.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import Cli

pytestmark = [pytest.mark.e2e, pytest.mark.needs_extra("semantic")]

STORED = "how do I undo my last git commit"
PARAPHRASE = "how can I revert the latest git commit"
PARAPHRASE_2 = "undo my most recent commit in git"
LOCAL = "how do I delete a local git branch"
REMOTE = "how do I delete a remote git branch"


@pytest.fixture(scope="module")
def decision() -> list[np.ndarray]:
    """A semantic-hit model trained on the task's synthetic population."""
    from aicache.tasks.base import FitConfig
    from aicache.tasks.semantic_hit.population import developer_pairs
    from aicache.tasks.semantic_hit.task import SemanticHitTask

    task = SemanticHitTask()
    pairs = [pair for index in range(3) for pair in developer_pairs(0, index, 80)]
    examples = task.load_local(pairs)
    config = FitConfig(local_epochs=30, learning_rate=0.02, seed=0)
    return task.fit(task.init_params(0), examples, config).params


@pytest.fixture
def semantic_cli(cli: Cli, decision: list[np.ndarray]) -> Cli:
    """The CLI with the decision as its home's newest model and ``fake-ai ask`` a prompt."""
    from aicache.registry import ModelRegistry

    cli.home.mkdir(mode=0o700)
    with ModelRegistry(cli.home / "registry") as registry:
        run = registry.start_run("semantic-hit", {"plan": {}, "federation": "test"})
        registry.register(
            "semantic-hit", decision, run_id=run, round=1, parent=None, strategy="fedavg",
            strategy_config={}, num_clients=1, metrics={}, privacy={},
        )  # fmt: skip
    assert cli.run("config", "set", "semantic-commands", "fake-ai ask").returncode == 0
    return cli


def _ask(cli: Cli, question: str, *flags: str) -> tuple[str, str]:
    result = cli.run("run", *flags, "--", "fake-ai", "ask", *question.split())
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode(), result.stderr.decode()


def _semantic(cli: Cli) -> dict[str, float]:
    result = cli.run("stats", "--json")
    assert result.returncode == 0, result.stderr.decode()
    return dict(json.loads(result.stdout)["semantic"])


def _feedback(cli: Cli) -> list[tuple[str, str, bool, str | None]]:
    from aicache.local.semantic_store import read_feedback
    from aicache.local.store import Store

    with Store.open(cli.home) as store:
        return [(r.query, r.cached_prompt, r.wrong, r.reason) for r in read_feedback(store)]


def test_a_paraphrase_is_served_a_near_miss_is_not_and_wrong_is_recorded(
    semantic_cli: Cli,
) -> None:
    cli = semantic_cli
    # Prepare: two answers in the cache
    _ask(cli, STORED)
    _ask(cli, LOCAL)
    assert cli.invocations() == 2
    # Execute: a paraphrase, a near miss, a paraphrase with --exact
    out_paraphrase, err_paraphrase = _ask(cli, PARAPHRASE)
    out_remote, err_remote = _ask(cli, REMOTE)
    out_exact, err_exact = _ask(cli, PARAPHRASE_2, "--exact")
    # Assert: the paraphrase got the stored answer, with one line saying so
    assert out_paraphrase.startswith(f"Answer to: ask {STORED}\n")
    notes = [line for line in err_paraphrase.splitlines() if line.startswith("aicache:")]
    assert len(notes) == 1 and "semantic hit (score" in notes[0] and STORED in notes[0]
    # the near miss and --exact ran the tool
    assert out_remote.startswith(f"Answer to: ask {REMOTE}\n") and "semantic hit" not in err_remote
    assert out_exact.startswith(f"Answer to: ask {PARAPHRASE_2}\n")
    assert "semantic hit" not in err_exact
    assert cli.invocations() == 4

    # Execute: the user says the hit was wrong
    wrong = cli.run("wrong")
    stats = _semantic(cli)
    again_out, again_err = _ask(cli, PARAPHRASE)
    # Assert: it names the hit, counts it, and the answer is not served for it again
    assert wrong.returncode == 0, wrong.stderr.decode()
    said = " ".join(wrong.stdout.decode().split())
    assert "marked wrong" in said and PARAPHRASE in said and STORED in said
    assert stats["hits"] == 1 and stats["wrong"] == 1 and stats["wrong_rate"] == 1.0
    assert stats["exact_hits"] == 0
    assert again_out.startswith(f"Answer to: ask {PARAPHRASE}\n")
    assert "semantic hit" not in again_err
    assert cli.invocations() == 5
    assert _feedback(cli) == [(PARAPHRASE, STORED, True, "explicit")]


def test_a_refresh_or_the_same_question_soon_after_a_semantic_hit_is_a_wrong_hit(
    semantic_cli: Cli,
) -> None:
    cli = semantic_cli
    # Prepare
    _ask(cli, STORED)
    _, served = _ask(cli, PARAPHRASE)
    _, served_2 = _ask(cli, PARAPHRASE_2)
    assert "semantic hit" in served and "semantic hit" in served_2
    # Execute: refresh the first, ask the second again
    refreshed, _ = _ask(cli, PARAPHRASE, "--refresh")
    asked_again, asked_again_err = _ask(cli, PARAPHRASE_2)
    # Assert: both ran the tool and both hits count as wrong
    assert refreshed.startswith(f"Answer to: ask {PARAPHRASE}\n")
    assert asked_again.startswith(f"Answer to: ask {PARAPHRASE_2}\n")
    assert "semantic hit" not in asked_again_err
    assert cli.invocations() == 3
    assert _feedback(cli) == [
        (PARAPHRASE, STORED, True, "refresh"),
        (PARAPHRASE_2, STORED, True, "re-ask"),
    ]
    assert _semantic(cli)["wrong"] == 2


def test_semantic_off_and_a_hit_of_a_prompt_command_stay_exact(semantic_cli: Cli) -> None:
    cli = semantic_cli
    # Prepare
    _ask(cli, STORED)
    assert cli.run("config", "set", "semantic", "off").returncode == 0
    # Execute
    out, err = _ask(cli, PARAPHRASE)
    exact_out, _ = _ask(cli, STORED)
    # Assert
    assert out.startswith(f"Answer to: ask {PARAPHRASE}\n") and "semantic hit" not in err
    assert exact_out.startswith(f"Answer to: ask {STORED}\n")
    assert cli.invocations() == 2


def test_the_index_follows_the_cache(semantic_cli: Cli) -> None:
    from aicache.local.store import Store

    cli = semantic_cli
    # Prepare
    _ask(cli, STORED)
    with Store.open(cli.home) as store:
        indexed = store.conn.execute("SELECT prompt FROM semantic_entries").fetchall()
    # Execute
    cleared = cli.run("clear", "--yes")
    with Store.open(cli.home) as store:
        left = store.conn.execute("SELECT count(*) FROM semantic_entries").fetchone()[0]
    # Assert
    assert indexed == [(STORED,)]
    assert cleared.returncode == 0 and left == 0
