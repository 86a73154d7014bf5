"""The Typer face of ``aicache recommend`` (its help; the work is in :mod:`.recommend`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aicache.cli.recommend import DEFAULT_COUNT, RecommendRequest, run_recommend


def recommend(
    path: Annotated[
        Path | None,
        typer.Argument(help="The project's folder (default: the git project you are in)."),
    ] = None,
    deps: Annotated[
        str | None,
        typer.Option("--deps", help="Recommend for these packages (a,b,c) instead of a folder."),
    ] = None,
    count: Annotated[
        int, typer.Option("-n", "--count", help="How many packages to recommend.")
    ] = DEFAULT_COUNT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    snippets: Annotated[
        bool,
        typer.Option(
            "--snippets", help="Rank your own cached answers by relevance to the project instead."
        ),
    ] = False,
) -> None:
    """Recommend libraries that projects like yours use, each with a reason and its docs."""
    run_recommend(RecommendRequest(path, deps, count, as_json, snippets))


def register(app: typer.Typer) -> None:
    """Add ``aicache recommend`` to ``app``."""
    app.command("recommend")(recommend)
