"""``aicache semantic judge``: the decision on pairs of one's own, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicache.registry import ModelRegistry
from aicache.tasks.semantic_hit import SemanticHitTask
from tests.conftest import Cli


def _pairs(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pairs.tsv"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.needs_extra("semantic")
def test_judge_writes_a_score_and_a_decision_per_pair(cli: Cli, tmp_path: Path) -> None:
    # Prepare
    pairs = _pairs(
        tmp_path,
        # a paraphrase the shipped model serves (docs/BENCHMARKS.md: it serves few)
        "how do I delete a local branch\thow do I remove a local branch\n"
        "how do I delete a local branch\thow do I delete a remote branch\n",
    )
    # Execute
    judged = cli.run("semantic", "judge", "--pairs", pairs, timeout=120)
    # Assert
    assert judged.returncode == 0, judged.stderr
    lines = [line.split("\t") for line in judged.stdout.decode().splitlines()]
    assert len(lines) == 2
    assert [int(decision) for _, decision in lines] == [1, 0]
    assert float(lines[0][0]) > float(lines[1][0])


@pytest.mark.needs_extra("semantic")
def test_judge_uses_the_registry_version_asked_for(cli: Cli, tmp_path: Path) -> None:
    # Prepare: version 1 is an untrained model (probability 0.5 everywhere, never served)
    task = SemanticHitTask()
    with ModelRegistry(cli.home / "registry") as registry:
        registry.register(
            task.name,
            [p * 0 for p in task.init_params(0)],
            run_id="test",
            round=1,
            parent=None,
            strategy="fedavg",
            strategy_config={},
            num_clients=1,
            metrics={},
            privacy={"dp": "off"},
        )
    pairs = _pairs(tmp_path, "how do I undo my last commit\thow can I revert the latest commit\n")
    # Execute
    chosen = cli.run("semantic", "judge", "--pairs", pairs, "--model", "1", timeout=120)
    missing = cli.run("semantic", "judge", "--pairs", pairs, "--model", "9", timeout=120)
    # Assert
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.decode() == "0.5000\t0\n"
    assert missing.returncode == 2
    assert "no version 9 of semantic-hit" in missing.stderr.decode()


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, (), "no such file"),
        ("only one text\n", (), "line 1 is not two texts separated by one tab"),
        ("a\tb\nc\t\n", (), "line 2 is not two texts separated by one tab"),
        ("", (), "the file has no pair"),
        ("a\tb\n", ("--model", "newest"), "--model 'newest': not 'latest' nor a version number"),
    ],
)
def test_judge_names_bad_input_in_one_line(
    cli: Cli, tmp_path: Path, content: str | None, args: tuple[str, ...], message: str
) -> None:
    # Prepare
    pairs = str(tmp_path / "absent.tsv") if content is None else _pairs(tmp_path, content)
    # Execute
    judged = cli.run("semantic", "judge", "--pairs", pairs, *args)
    # Assert
    err = judged.stderr.decode()
    assert judged.returncode == 2, err
    assert message in err
    assert "Traceback" not in err and judged.stdout == b""


def test_judge_without_the_embedding_model_says_what_to_install(cli: Cli, tmp_path: Path) -> None:
    # Prepare: the model folder the embedder is told to use holds no weights
    empty = tmp_path / "no-model"
    empty.mkdir()
    pairs = _pairs(tmp_path, "a question\tanother question\n")
    # Execute
    judged = cli.run(
        "semantic", "judge", "--pairs", pairs, AICACHE_EMBEDDING_MODEL=str(empty), timeout=120
    )
    # Assert
    err = judged.stderr.decode()
    assert judged.returncode == 2, err
    assert "semantic matching is unavailable" in err and "Traceback" not in err
