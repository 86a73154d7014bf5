"""``aicache scan``: single-token slips in Python code, ranked by the bug detector.

Scans a file, a folder, or by default the current git project (its tracked
``.py`` files), with the served ``bug-detector`` model: a version from the
home's registry (pinned, else newest) when there is one, else the model
shipped with aicache. Exits 1 when a finding scores above the threshold (for
CI and pre-commit hooks), 0 otherwise, 2 on a usage error. Unreadable files
and files with a syntax error are skipped with a note.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer

from aicache.cli.common import JsonOption, checked, emit_json
from aicache.cli.console import err, out
from aicache.errors import AicacheError
from aicache.local.paths import REGISTRY_DIRNAME, aicache_home

TASK = "bug-detector"
SHOWN = 20  # findings printed without --all: a screenful, best first


def _git_root(directory: Path) -> Path | None:
    """The top of the git work tree holding ``directory``, or ``None`` outside one."""
    try:
        found = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(found) if found else None


def _target(path: Path | None) -> Path:
    """What to scan: ``path``, or the git project the current directory is in."""
    if path is None:
        root = _git_root(Path.cwd())
        if root is None:
            raise AicacheError(
                "the current directory is not in a git project",
                hint="Give the file or folder to scan: `aicache scan PATH`.",
            )
        return root
    if not path.exists():
        raise AicacheError(
            f"{path}: no such file or folder", hint="Give a Python file or a project folder."
        )
    return path.resolve()


def _weights() -> tuple[Any, str]:
    """The served model's weights and how a person names it (the shipped one by default)."""
    from aicache.registry import ModelRegistry
    from aicache.registry.shipped import shipped_model
    from aicache.tasks.base import ensure_compatible

    registry_root = aicache_home() / REGISTRY_DIRNAME
    if registry_root.is_dir():
        with ModelRegistry(registry_root) as registry:
            has_version = registry.latest(TASK) is not None
        if has_version:
            from aicache.deploy.serving import serving_model

            model = serving_model(registry_root, TASK)
            return model.params[0], model.label
    shipped = shipped_model(TASK)
    if shipped is None:
        raise AicacheError(
            f"no {TASK} model came with this install",
            hint="Reinstall aicache, or pull one from a federation (`aicache models pull`).",
        )
    ensure_compatible(TASK, shipped.arrays)
    return shipped.arrays[0], "the shipped model"


def scan(
    path: Annotated[
        Path | None,
        typer.Argument(help="A Python file or a folder [default: the current git project]."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Score above which a finding counts [the model's default]."),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Show every finding above the threshold.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Find likely single-token bugs (wrong operator, off-by-one, wrong variable...) in Python."""
    from aicache.tasks.bug_detector import THRESHOLD, project_files, scan_files

    chosen = THRESHOLD if threshold is None else checked("--threshold", threshold, -50.0, 50.0)
    target = _target(path)
    files = project_files(target)
    weights, label = _weights()
    root = target if target.is_dir() else target.parent
    report = scan_files(weights, files, threshold=chosen, root=root)
    if as_json:
        emit_json(
            {
                "path": str(target),
                "model": label,
                "threshold": chosen,
                "files": report.files,
                "lines": report.lines,
                "skipped": [{"path": p, "reason": why} for p, why in report.skipped],
                "findings": [
                    {
                        "path": f.path,
                        "line": f.line,
                        "column": f.column + 1,
                        "kind": f.kind,
                        "code": f.written,
                        "suggestion": f.replacement,
                        "score": round(f.score, 3),
                    }
                    for f in report.findings
                ],
            }
        )
    else:
        for where, why in report.skipped:
            err.print(f"skipped {where}: {why}", style="yellow", markup=False, soft_wrap=True)
        shown = report.findings if show_all else report.findings[:SHOWN]
        for f in shown:
            out.print(
                f"{f.path}:{f.line}:{f.column + 1}: {f.kind}: `{f.written}` -> "
                f"`{f.replacement}` (score {f.score:.2f})",
                markup=False,
                soft_wrap=True,
            )
        more = len(report.findings) - len(shown)
        tail = f" ({more} more: --all shows them)" if more else ""
        out.print(
            f"{len(report.findings)} finding(s) above {chosen:g} in {report.files} file(s), "
            f"{report.lines} lines ({label}){tail}",
            markup=False,
            soft_wrap=True,
        )
    if report.findings:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the scan command to ``app``."""
    app.command("scan")(scan)
