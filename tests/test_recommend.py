"""The library-recs task's parts: the project reader, the model's gradients, the sources,
the count baselines and the recommendations with their reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aicache.features.project_deps import project_root, read_project, requirement_name
from aicache.tasks.base import FitConfig
from aicache.tasks.library_recs.baseline import CoUseCounts, baseline_ranks
from aicache.tasks.library_recs.model import (
    NEGATIVES,
    candidates,
    init_embeddings,
    loss_and_grad,
    sampled_loss_and_grad,
)
from aicache.tasks.library_recs.projects import HiddenOne, ProjectSet, hidden_one
from aicache.tasks.library_recs.serving import recommend
from aicache.tasks.library_recs.snippets import CachedQuestion, rank_cached
from aicache.tasks.library_recs.sources import DebianSource
from aicache.tasks.library_recs.task import LibraryQuery, LibraryRecsTask
from aicache.tasks.library_recs.vocabulary import ids_of, vocabulary


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_reader_reads_every_declared_source_and_the_imports(tmp_path: Path) -> None:
    # Prepare: a project that declares its dependencies in every supported place
    _write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "My_Tool"\ndependencies = ["FastAPI>=0.100", "SQLAlchemy[asyncio]"]\n'
        "[project.optional-dependencies]\ndev = [\"pytest ; python_version > '3.8'\"]\n"
        '[tool.poetry.dependencies]\npython = "^3.11"\nrich = "*"\n',
    )
    _write(tmp_path / "requirements.txt", "# pinned\n-r requirements/base.txt\nhttpx==0.27\n")
    _write(tmp_path / "requirements" / "base.txt", "Flask_Cors\ngit+https://example.org/x.git\n")
    _write(tmp_path / "setup.cfg", "[options]\ninstall_requires =\n    click>=8\n")
    _write(
        tmp_path / "src" / "my_tool" / "__init__.py",
        "import os, json\nimport yaml\nfrom PIL import Image\nfrom my_tool import core\n"
        "from . import sibling\n",
    )
    _write(tmp_path / ".venv" / "lib" / "hidden.py", "import should_not_be_read\n")
    # Execute
    project = read_project(tmp_path)
    # Assert: every source, normal form, own name and modules and the stdlib left out
    assert project.name == "my-tool"
    assert list(project.names) == [
        "fastapi", "sqlalchemy", "pytest", "rich", "click", "flask-cors", "httpx", "pyyaml",
        "pillow",
    ]  # fmt: skip
    assert project.found["flask-cors"] == ["requirements.txt"]  # through its -r
    assert project.found["pyyaml"] == ["imports"]


def test_reader_survives_broken_files_and_finds_the_git_root(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / ".git").mkdir()
    _write(tmp_path / "pyproject.toml", "[project\nthis is not toml")
    _write(tmp_path / "setup.cfg", "no section header\n")
    _write(tmp_path / "pkg" / "mod.py", "import numpy as np\n")
    # Execute
    project = read_project(project_root(tmp_path / "pkg"))
    # Assert
    assert project.root == tmp_path.resolve()
    assert project.names == ("numpy",)
    # each unreadable file is named, with why, not passed over in silence
    assert [p.split(":")[0] for p in project.problems] == ["pyproject.toml", "setup.cfg"]
    assert "not valid TOML" in project.problems[0]
    _write(tmp_path / "pyproject.toml", '[project]\nname = "x"\ndependencies = "requests"\n')
    wrong = read_project(tmp_path)
    assert "dependencies is a str, not a list of strings" in wrong.problems[0]
    assert requirement_name("Django>=4 ; python_version>'3'") == "django"
    assert requirement_name("-e .") is None


def test_private_names_never_enter_the_model() -> None:
    # Prepare
    task = LibraryRecsTask()
    # Execute
    examples = task.load_local([["fastapi", "acme-internal-billing", "sqlalchemy"]])
    predicted = task.predict(task.init_params(0), LibraryQuery(("acme-internal-billing",), k=50))
    # Assert: the private name is counted as unknown and never recommended
    assert examples.unknown.tolist() == [1]
    assert ids_of(["acme-internal-billing"]) == ([], 1)
    assert set(predicted) <= set(vocabulary()) and "acme-internal-billing" not in predicted


def test_gradients_match_finite_differences() -> None:
    # Prepare: a small vocabulary, three leave-one-out points
    params = init_embeddings(6, 3, seed=1)
    params[1] = np.array([0.2, -0.1, 0.0, 0.3, 0.1, -0.2])
    points = HiddenOne(
        [np.array([0, 2]), np.array([1]), np.array([], dtype=np.int64)], np.array([3, 4, 0])
    )
    # Execute
    _, grads = loss_and_grad(params, points)
    # Assert
    step = 1e-6
    for array, grad in zip(params, grads, strict=True):
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + step
            up = loss_and_grad(params, points, need_grad=False)[0]
            array[index] = saved - step
            down = loss_and_grad(params, points, need_grad=False)[0]
            array[index] = saved
            assert grad[index] == pytest.approx((up - down) / (2 * step), abs=1e-6)


def test_sampled_softmax_gradients_match_finite_differences() -> None:
    # Prepare: 12 packages, the points' own 0-4 and 3 sampled negatives with their log-Q
    params = init_embeddings(12, 3, seed=2)
    params[1] = np.linspace(-0.3, 0.3, 12)
    points = HiddenOne(
        [np.array([0, 2]), np.array([1]), np.array([], dtype=np.int64)], np.array([3, 4, 0])
    )
    among = candidates(points, 12, negatives=3, seed=5)
    # Execute
    _, grads = sampled_loss_and_grad(params, points, among)
    # Assert: the sampled loss's own derivative everywhere, zero off the candidates' rows
    step = 1e-6
    for array, grad in zip(params, grads, strict=True):
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + step
            up = sampled_loss_and_grad(params, points, among)[0]
            array[index] = saved - step
            down = sampled_loss_and_grad(params, points, among)[0]
            array[index] = saved
            assert grad[index] == pytest.approx((up - down) / (2 * step), abs=1e-6)
    off = np.setdiff1d(np.arange(12), among.ids)
    assert off.size == 12 - 8 and not grads[0][off].any() and not grads[1][off].any()
    assert among.correction[np.isin(among.ids, [0, 1, 2, 3, 4])].tolist() == [0.0] * 5
    assert (among.correction[~np.isin(among.ids, [0, 1, 2, 3, 4])] < 0).all()


def test_a_clients_update_moves_only_its_own_rows_and_its_negatives() -> None:
    # Prepare: one client's two projects in the 1,500-package vocabulary
    task = LibraryRecsTask()
    names = [["fastapi", "sqlalchemy", "alembic"], ["pandas", "numpy", "matplotlib"]]
    examples = task.load_local(names)
    params = task.init_params(0)
    config = FitConfig(learning_rate=0.01, local_epochs=2, seed=3)
    own = set(examples.ids.tolist())
    # Execute
    fitted = task.fit(params, examples, config).params
    # Assert: the changed rows are the client's six and at most NEGATIVES others, not all
    moved = set(np.flatnonzero((fitted[0] != params[0]).any(axis=1) | (fitted[1] != params[1])))
    drawn = set(candidates(hidden_one(examples), len(vocabulary()), NEGATIVES, 3).ids.tolist())
    assert own <= moved <= drawn
    assert len(moved - own) <= NEGATIVES < len(vocabulary()) - len(own)


def test_leave_one_out_skips_single_dependency_projects_and_slices_round_trip() -> None:
    # Prepare
    projects = ProjectSet.from_lists([([1, 2, 3], 0), ([4], 0), ([5], 1), ([], 2)])
    # Execute
    points = hidden_one(projects)
    tail = projects.slice(1, None)
    # Assert: 3 points from the first project, 1 from the one with an unknown partner
    assert points.targets.tolist() == [1, 2, 3, 5]
    assert [c.tolist() for c in points.contexts] == [[2, 3], [1, 3], [1, 2], []]
    assert len(tail) == 3 and tail.project(1).tolist() == [5]
    assert ProjectSet.concatenate([projects.slice(0, 1), tail]).ids.tolist() == [1, 2, 3, 4, 5]


def test_co_occurrence_baseline_recommends_the_partner_and_popularity_the_common() -> None:
    # Prepare: 1 always goes with 2; 3 and 9 go together, in more projects
    projects = ProjectSet.from_lists([([1, 2], 0)] * 3 + [([3, 9], 0)] * 5)
    counts = CoUseCounts(projects, size=12)
    # Execute
    ranks = baseline_ranks(counts, ProjectSet.from_lists([([1, 2], 0)]), leave_out=False)
    # Assert: hiding 2 from {1, 2}: co-occurrence ranks it first; popularity puts 9 and 3 ahead
    assert ranks["co-occurrence"].tolist() == [0, 0]
    assert ranks["popularity"].tolist() == [2, 2]


def test_a_trained_model_recommends_partners_with_reasons_from_its_weights() -> None:
    # Prepare: developers whose projects pair fastapi with uvicorn
    task = LibraryRecsTask()
    projects = [["fastapi", "uvicorn", "pydantic"], ["fastapi", "uvicorn"], ["numpy", "pandas"]]
    examples = task.load_local(projects * 20)
    params = task.fit(task.init_params(0), examples, FitConfig(learning_rate=0.05, local_epochs=20))
    # Execute
    answer = recommend(params.params, ["FastAPI", "acme-private"], n=3)
    # Assert
    assert answer.known == ("fastapi",) and answer.unknown == ("acme-private",)
    assert answer.items[0].name == "uvicorn"
    assert "fastapi" not in [item.name for item in answer.items]
    assert answer.items[0].related == ("fastapi",)
    assert answer.items[0].reason.startswith("goes with fastapi (global model: ")


def test_with_no_known_dependency_the_public_ranking_is_recommended_as_such() -> None:
    # Prepare: a model whose biases favour packages far down the ranking
    task = LibraryRecsTask()
    params = task.init_params(0)
    params[1][:] = np.linspace(-5.0, 5.0, params[1].size)
    # Execute
    answer = recommend(params, ["acme-private"], n=5)
    # Assert: the five most downloaded, in the ranking's order, said to be just that
    assert tuple(item.name for item in answer.items) == vocabulary()[:5]
    assert all("public download ranking" in item.reason for item in answer.items)


def test_debian_source_reads_maintainers_projects(tmp_path: Path) -> None:
    # Prepare: the real formats of a Debian index and dh-python's fallback table
    stanzas = []
    for k in range(8):
        stanzas.append(
            f"Package: python3-tool{k}\nMaintainer: Debian Python Team <team@example.org>\n"
            f"Uploaders: Jane Doe <jane@example.org>, Other <o@example.org>\n"
            "Depends: python3-numpy (>= 1:1.20), python3-yaml | python3-six,\n"
            " python3:any, libc6\n"
        )
    stanzas.append(
        "Package: python3-solo\nMaintainer: Solo <s@example.org>\nDepends: python3-six\n"
    )
    _write(tmp_path / "Packages", "\n".join(stanzas))
    _write(
        tmp_path / "cpython3_fallback",
        "numpy python3-numpy\nPyYAML python3-yaml\nsix python3-six\n",
    )
    # Execute
    source = DebianSource(str(tmp_path))
    source.check()
    # Assert: one client (Jane, 8 packages), the alternative's first choice, PyPI names
    assert source.names() == ["Jane Doe"]
    assert source.records(0)[0] == ["numpy", "pyyaml"]
    with pytest.raises(Exception, match="not a folder of Debian package metadata"):
        DebianSource(str(tmp_path / "missing")).check()


def test_cached_answers_about_the_projects_libraries_rank_first() -> None:
    # Prepare: a model that pairs fastapi with uvicorn; four cached questions
    task = LibraryRecsTask()
    examples = task.load_local([["fastapi", "uvicorn"], ["numpy", "pandas"]] * 30)
    params = task.fit(task.init_params(0), examples, FitConfig(learning_rate=0.05, local_epochs=20))
    now = 1_000_000.0
    questions = [
        CachedQuestion("a1", "claude -p how do I reshape a pandas frame", now - 60),
        CachedQuestion("b2", "claude -p run uvicorn with two workers", now - 3600),
        CachedQuestion("c3", "claude -p fastapi dependency injection", now - 86400 * 90),
        CachedQuestion("d4", "claude -p what is a monad", now),
    ]
    # Execute
    ranked = rank_cached(params.params, ["fastapi"], questions, now=now)
    # Assert: own library first, then the related one; unrelated ones left out
    assert [r.key for r in ranked] == ["c3", "b2"]
    assert ranked[0].reason == "about fastapi, which this project uses"
    assert "global model relates" in ranked[1].reason
