"""Scanning code with a trained bug detector: ranked findings, the threshold, files.

:data:`THRESHOLD` is the score (log-odds, :mod:`.model`) above which a
finding counts (``aicache scan`` exits 1). It is not chosen on any real bug:
``scripts/train_shipped_model.py`` sets it by a rule on developers that took
no part in training — the lowest score at which at most
:data:`TARGET_FALSE_ALARMS` of their sites as written score above it (about
one false finding per 500 sites, a few hundred lines) — and records it beside
the shipped model; this constant must equal the record's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from aicache.tasks.bug_detector.model import SiteSet, site_scores
from aicache.tasks.bug_detector.sites import find_sites
from aicache.tasks.bug_detector.sources import read_text

THRESHOLD = 4.5
TARGET_FALSE_ALARMS = 0.002


@dataclass(frozen=True, slots=True)
class Finding:
    """A site where the model prefers another token to the written one.

    Attributes
    ----------
    path
        The file (as given to the scan).
    line, column
        Where (1-based line, 0-based column).
    kind
        What kind of slip (``comparison``, ``off-by-one``, ...; :data:`.sites.KINDS`).
    written
        The code as written at the site.
    replacement
        What the model suggests instead.
    score
        Log-odds of the suggestion against the written code (higher: likelier a bug).
    """

    path: str
    line: int
    column: int
    kind: str
    written: str
    replacement: str
    score: float


@dataclass(slots=True)
class ScanReport:
    """What a scan of several files found, and what it could not read.

    Attributes
    ----------
    findings
        Every finding above the threshold asked for, best first.
    files
        How many files were scanned.
    lines
        How many lines they hold.
    skipped
        ``(path, why)`` of each file that could not be scanned.
    """

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def scan_source(
    weights: NDArray[np.float64], source: str, *, path: str = "<code>", threshold: float | None
) -> list[Finding]:
    """The findings of ``source`` scoring above ``threshold`` (``None``: all), best first.

    Raises
    ------
    SyntaxError
        If ``source`` is not valid Python (``ValueError`` for null bytes).
    """
    sites = find_sites(source)
    if not sites:
        return []
    scores, best = site_scores(weights, SiteSet.from_sites(sites))
    findings = [
        Finding(
            path=path,
            line=site.line,
            column=site.column,
            kind=site.kind,
            written=site.shown[0],
            replacement=site.shown[int(best[i])],
            score=float(scores[i]),
        )
        for i, site in enumerate(sites)
        if threshold is None or scores[i] > threshold
    ]
    findings.sort(key=lambda f: (-f.score, f.line, f.column))
    return findings


def scan_files(
    weights: NDArray[np.float64],
    paths: Sequence[Path],
    *,
    threshold: float | None = THRESHOLD,
    root: Path | None = None,
) -> ScanReport:
    """Scan every file of ``paths``; unreadable files and syntax errors are skipped and noted.

    Paths are shown relative to ``root`` when given.
    """
    report = ScanReport()
    for path in paths:
        shown = (
            str(path.relative_to(root))
            if root is not None and path.is_relative_to(root)
            else str(path)
        )
        text = read_text(path)
        if text is None:
            report.skipped.append((shown, "cannot be read as UTF-8 text"))
            continue
        try:
            found = scan_source(weights, text, path=shown, threshold=threshold)
        except SyntaxError as exc:
            report.skipped.append((shown, f"syntax error at line {exc.lineno}: {exc.msg}"))
            continue
        except (ValueError, RecursionError) as exc:
            report.skipped.append((shown, f"cannot be parsed: {exc}"))
            continue
        report.files += 1
        report.lines += text.count("\n") + 1
        report.findings.extend(found)
    report.findings.sort(key=lambda f: (-f.score, f.path, f.line, f.column))
    return report
