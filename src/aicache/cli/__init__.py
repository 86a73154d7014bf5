"""The ``aicache`` command.

``main`` serves ``aicache run`` without importing Typer or Rich, so that a
cache hit costs little more than starting Python; every other command goes
through the Typer application in :mod:`aicache.cli.app`.
"""

from __future__ import annotations

import sys

_HELP = frozenset({"-h", "--help"})


def _wants_help(run_args: list[str]) -> bool:
    for word in run_args:
        if word in _HELP:
            return True
        if word == "--" or not word.startswith("-"):
            return False
    return not run_args


def main(argv: list[str] | None = None) -> int:
    """Run the ``aicache`` command line with ``argv`` (default: ``sys.argv[1:]``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["run"] and not _wants_help(args[1:]):
        from aicache.cli.keep_scorer import learned_scorer
        from aicache.cli.semantic import semantic_provider
        from aicache.local.eviction import use_scorer_provider
        from aicache.local.runner import parse_run_args, run

        use_scorer_provider(learned_scorer)  # loads a model only past the cache's budget

        try:
            request = parse_run_args(args[1:])
        except ValueError as exc:
            sys.stderr.write(f"aicache run: {exc}\n")
            return 2
        return run(request, semantic=semantic_provider)
    if args[:1] == ["recommend"] and not _wants_help(args[1:] or ["-"]):
        # Asked from editors and scripts: answered without starting the Typer application.
        from aicache.cli.recommend import main as recommend_main

        return recommend_main(args[1:])
    from aicache.cli.app import run_app

    return run_app(args)


__all__ = ["main"]
