"""What ``suggest`` gets right on real shell usage: the shipped model alone,
the user's own transitions alone, and the blend ``suggest`` serves.

For each of Greenberg's users, every one of the last ``--points`` commands
is predicted from everything the user typed before it; a hit is the exact
``program subcommand`` among the top 1 or top 3 suggestions. Macro-averaged
over users. Usage::

    python benchmarks/suggest_blend.py --data ../shared/data/greenberg
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aicache.features.history_items import HistoryItem, items_from_shell
from aicache.local.history import parse_greenberg, read_text
from aicache.registry.shipped import shipped_model
from aicache.tasks.history_baseline import TransitionCounts
from aicache.tasks.next_command import NextCommandContext, NextCommandTask
from aicache.tasks.next_command import task as next_command


def _own_only(history: list[HistoryItem], k: int) -> list[str]:
    counts = TransitionCounts(item.command for item in history)
    return counts.ranked(counts.previous)[:k]


def evaluate(users: dict[str, list[HistoryItem]], points: int) -> dict[str, dict[str, float]]:
    """Top-1 and top-3 of the three predictors, macro-averaged over ``users``."""
    shipped = shipped_model(NextCommandTask.name)
    if shipped is None:
        raise SystemExit("no shipped model in this install")
    task = NextCommandTask()
    arms = ("model only", "own transitions only", "blend (suggest)")
    totals = {arm: {"top1": 0.0, "top3": 0.0} for arm in arms}
    blend_prior = next_command.PERSONAL_PRIOR
    for items in users.values():
        hits = {arm: [0, 0] for arm in arms}
        cuts = range(max(1, len(items) - points), len(items))
        for cut in cuts:
            history, truth = items[:cut], items[cut].command
            context = NextCommandContext(history=history, k=3)
            next_command.PERSONAL_PRIOR = float("inf")  # trust 0: the model alone
            alone = task.predict(shipped.arrays, context)
            next_command.PERSONAL_PRIOR = blend_prior
            ranked = {
                "model only": alone,
                "own transitions only": _own_only(history, 3),
                "blend (suggest)": task.predict(shipped.arrays, context),
            }
            for arm, guesses in ranked.items():
                hits[arm][0] += guesses[:1] == [truth]
                hits[arm][1] += truth in guesses
        for arm in arms:
            totals[arm]["top1"] += hits[arm][0] / len(cuts) / len(users)
            totals[arm]["top3"] += hits[arm][1] / len(cuts) / len(users)
    return totals


def main() -> int:
    """Run on a folder of Greenberg traces and print (or write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--points", type=int, default=150)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    users = {
        path.name: items_from_shell(parse_greenberg(read_text(path)))
        for path in sorted(args.data.iterdir())
        if path.is_file() and not path.name.startswith(("README", "."))
    }
    result = evaluate(users, args.points)
    for arm, metrics in result.items():
        print(f"{arm:24} top-1 {metrics['top1']:.3f}  top-3 {metrics['top3']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
