"""``aicache recommend``: libraries that projects like this one use, from the global model.

The command answers without Typer or Rich (``main`` in :mod:`aicache.cli`
sends ``recommend`` here directly): it is asked from editors and scripts,
and starting the whole application would cost more than the answer. The
Typer command (:mod:`aicache.cli.recommend_command`) exists for the help
and runs the same code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicache.errors import AicacheError

if TYPE_CHECKING:
    from aicache.tasks.library_recs.serving import Recommendations

DEFAULT_COUNT = 10
MAX_COUNT = 100
PYPI_PAGE = "https://pypi.org/project/{name}/"
_DOC_LABELS = ("documentation", "docs", "homepage", "home", "source")


@dataclass(frozen=True, slots=True)
class RecommendRequest:
    """What ``aicache recommend`` was asked."""

    path: Path | None = None
    deps: str | None = None
    count: int = DEFAULT_COUNT
    as_json: bool = False
    snippets: bool = False


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as every usage error
        raise AicacheError(f"aicache recommend: {message}", hint="See `aicache recommend --help`.")


def parse_request(argv: Sequence[str]) -> RecommendRequest:
    """The request in ``argv`` (the words after ``recommend``).

    Raises
    ------
    AicacheError
        Naming the bad option (exit 2).
    """
    parser = _Parser(prog="aicache recommend", add_help=False)
    parser.add_argument("path", nargs="?", type=Path, default=None)
    parser.add_argument("--deps", default=None)
    parser.add_argument("-n", "--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--json", dest="as_json", action="store_true")
    parser.add_argument("--snippets", action="store_true")
    args = parser.parse_args(list(argv))
    return RecommendRequest(args.path, args.deps, args.count, args.as_json, args.snippets)


def documentation_link(name: str) -> str:
    """The package's documentation from its installed metadata, else its PyPI page."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        meta = metadata(name)
    except PackageNotFoundError:
        return PYPI_PAGE.format(name=name)
    urls: dict[str, str] = {}
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        urls.setdefault(label.strip().lower(), url.strip())
    for label in _DOC_LABELS:
        if urls.get(label, "").startswith("http"):
            return urls[label]
    home = next(iter(meta.get_all("Home-page") or []), "")
    return home if home.startswith("http") else PYPI_PAGE.format(name=name)


def _dependencies(request: RecommendRequest) -> tuple[str, list[str], list[str]]:
    """What the request is about (a folder or ``--deps``) and its dependencies."""
    if request.deps is not None:
        names = [d.strip() for d in request.deps.split(",") if d.strip()]
        if not names:
            raise AicacheError(
                "--deps: no package named", hint="Give names separated by commas: --deps a,b,c."
            )
        if request.path is not None:
            raise AicacheError(
                "give a project folder or --deps, not both",
                hint="`aicache recommend PATH` reads the project; --deps a,b,c takes the names.",
            )
        return "--deps", names, []
    from aicache.features.project_deps import project_root, read_project

    start = request.path if request.path is not None else Path.cwd()
    if not start.exists():
        raise AicacheError(
            f"{start}: no such file or folder", hint="Give the folder of a project (or --deps)."
        )
    root = project_root(start) if request.path is None else start
    project = read_project(root)
    return str(project.root), list(project.names), list(project.problems)


def _model() -> tuple[list[Any], dict[str, Any]]:
    from aicache.registry.shipped import shipped_model

    model = shipped_model("library-recs")
    if model is None:
        raise AicacheError(
            "no library-recs model is installed",
            hint="Reinstall aicache, or train one: python scripts/train_shipped_model.py "
            "--task library-recs.",
            exit_code=1,
        )
    return model.arrays, model.privacy


def recommend_document(request: RecommendRequest) -> dict[str, Any]:
    """The answer to ``request`` as ``--json`` prints it.

    Raises
    ------
    AicacheError
        On a bad request or a missing model.
    """
    target, dependencies, problems = _dependencies(request)
    arrays, privacy = _model()
    from aicache.tasks.library_recs.serving import recommend

    answer: Recommendations = recommend(arrays, dependencies, request.count)
    return {
        "project": target,
        "dependencies": list(answer.known),
        "unknown_to_model": list(answer.unknown),
        "problems": problems,
        "recommendations": [
            {
                "name": item.name,
                "probability": round(item.probability, 4),
                "reason": item.reason,
                "related": list(item.related),
                "docs": documentation_link(item.name),
            }
            for item in answer.items
        ],
        "model": {"source": "shipped", "privacy": privacy},
    }


def _text(document: dict[str, Any]) -> str:
    lines = [
        f"{document['project']}: {len(document['dependencies'])} dependencies known to the "
        f"model, {len(document['unknown_to_model'])} not in its public vocabulary"
    ]
    if not document["dependencies"]:
        lines.append("(none known: these are the most used packages)")
    width = max((len(r["name"]) for r in document["recommendations"]), default=0)
    for rank, item in enumerate(document["recommendations"], 1):
        lines.append(f"{rank:2d}. {item['name']:<{width}}  {item['reason']}")
        lines.append(f"    {' ' * width}  {item['docs']}")
    return "\n".join(lines) + "\n"


def snippets_document(request: RecommendRequest) -> dict[str, Any]:
    """The user's cached answers ranked by relevance to the project, as ``--json`` prints them."""
    import time

    from aicache.local.cache import list_entries
    from aicache.local.paths import aicache_home
    from aicache.local.store import Store
    from aicache.tasks.library_recs.snippets import CachedQuestion, rank_cached

    target, dependencies, problems = _dependencies(request)
    arrays, _ = _model()
    with Store.open(aicache_home()) as store:
        entries = list_entries(store)
    questions = [CachedQuestion(e.key, " ".join(e.argv), e.created_at, e.hits) for e in entries]
    ranked = rank_cached(arrays, dependencies, questions, now=time.time(), n=request.count)
    return {
        "project": target,
        "problems": problems,
        "snippets": [
            {
                "key": r.key,
                "command": r.text,
                "score": round(r.score, 4),
                "libraries": list(r.libraries),
                "reason": r.reason,
            }
            for r in ranked
        ],
    }


def _snippets_text(document: dict[str, Any]) -> str:
    if not document["snippets"]:
        return f"{document['project']}: no cached answer is about its libraries yet\n"
    lines = [f"{document['project']}: you asked these before (see them with aicache inspect KEY)"]
    for rank, item in enumerate(document["snippets"], 1):
        command = item["command"] if len(item["command"]) <= 70 else item["command"][:67] + "..."
        lines.append(f"{rank:2d}. {item['key'][:12]}  {command}")
        lines.append(f"    {item['reason']}")
    return "\n".join(lines) + "\n"


def run_recommend(request: RecommendRequest) -> None:
    """Print the recommendations for ``request`` (text, or JSON with ``as_json``).

    Raises
    ------
    AicacheError
        On a bad request or a missing model.
    """
    if not 1 <= request.count <= MAX_COUNT:
        raise AicacheError(
            f"-n {request.count}: give a count from 1 to {MAX_COUNT}", hint="For example -n 10."
        )
    if request.snippets:
        document = snippets_document(request)
        text = _snippets_text(document)
    else:
        document = recommend_document(request)
        text = _text(document)
    for problem in document.get("problems", []):
        sys.stderr.write(f"warning: {problem}\n")
    if request.as_json:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(text)


def main(argv: Sequence[str]) -> int:
    """``aicache recommend`` without the Typer application: errors in one line, exit 2."""
    try:
        run_recommend(parse_request(argv))
    except AicacheError as exc:
        sys.stderr.write(f"error: {exc.message}\n" + (f"{exc.hint}\n" if exc.hint else ""))
        return exc.exit_code
    except BrokenPipeError:  # `aicache recommend | head`: the reader left, nothing is lost
        return 0
    return 0
