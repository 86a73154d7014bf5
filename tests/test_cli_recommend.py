"""``aicache recommend`` end to end: a real project folder, ``--deps``, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aicache.tasks.library_recs.vocabulary import vocabulary
from tests.conftest import Cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small web API project, as a developer would have it: git, pyproject, code."""
    root = tmp_path / "shop-api"
    (root / ".git").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "shop-api"\n'
        'dependencies = ["fastapi>=0.110", "sqlalchemy>=2", "acme-internal-auth"]\n'
    )
    (root / "shop_api").mkdir()
    (root / "shop_api" / "__init__.py").write_text("")
    (root / "shop_api" / "db.py").write_text(
        "import os\nfrom sqlalchemy import create_engine\nfrom shop_api import models\n"
    )
    return root


@pytest.mark.e2e
def test_recommend_reads_a_real_project_folder_and_answers(cli: Cli, project: Path) -> None:
    # Prepare: run from a subfolder, as a developer inside the project would
    cli.cwd = project / "shop_api"
    # Execute
    answered = cli.run("recommend", "--json")
    text = cli.run("recommend", "-n", "3")
    # Assert: the project's own dependencies read, the private one never in the model
    assert answered.returncode == 0, answered.stderr.decode()
    document = json.loads(answered.stdout)
    assert document["project"] == str(project.resolve())
    assert document["dependencies"] == ["fastapi", "sqlalchemy"]
    assert document["unknown_to_model"] == ["acme-internal-auth"]
    names = [r["name"] for r in document["recommendations"]]
    assert len(names) == 10 and not {"fastapi", "sqlalchemy"} & set(names)
    assert set(names) <= set(vocabulary())
    for item in document["recommendations"]:
        assert item["reason"] and item["docs"].startswith("https://")
    assert document["model"]["privacy"]["dp"] == "central"
    assert text.returncode == 0 and text.stdout.decode().count("global model") == 3


@pytest.mark.e2e
def test_recommend_for_given_dependencies_and_bad_input(cli: Cli, tmp_path: Path) -> None:
    # Execute
    given = cli.run("recommend", "--deps", "numpy,pandas", "--json")
    zero = cli.run("recommend", "--deps", "numpy", "-n", "0")
    empty = cli.run("recommend", "--deps", " , ")
    missing = cli.run("recommend", str(tmp_path / "nowhere"))
    unknown = cli.run("recommend", "--colour")
    helped = cli.run("recommend", "--help")
    # Assert
    assert given.returncode == 0, given.stderr.decode()
    names = [r["name"] for r in json.loads(given.stdout)["recommendations"]]
    assert names and not {"numpy", "pandas"} & set(names)
    for result, words in (
        (zero, "-n 0"),
        (empty, "--deps: no package named"),
        (missing, "no such file or folder"),
        (unknown, "unrecognized arguments: --colour"),
    ):
        assert result.returncode == 2
        assert words in result.stderr.decode().splitlines()[0]
        assert b"Traceback" not in result.stderr
    assert helped.returncode == 0 and b"--deps" in helped.stdout


@pytest.mark.e2e
def test_snippets_rank_the_users_own_cached_answers(cli: Cli, project: Path) -> None:
    # Prepare: three answers cached through aicache, one about this project's library
    for prompt in ("explain sqlalchemy sessions", "what is a monad", "numpy broadcasting"):
        assert cli.run("run", "--", "fake-ai", prompt).returncode == 0
    # Execute
    ranked = cli.run("recommend", str(project), "--snippets", "--json")
    # Assert
    assert ranked.returncode == 0, ranked.stderr.decode()
    snippets = json.loads(ranked.stdout)["snippets"]
    assert snippets[0]["command"] == "fake-ai explain sqlalchemy sessions"
    assert snippets[0]["reason"] == "about sqlalchemy, which this project uses"
    assert "fake-ai what is a monad" not in [s["command"] for s in snippets]
