"""How long ``aicache scan`` takes on a 10,000-line project.

The project is real code: Python files of installed packages (the first in
name order whose files add up to the line count), copied into a temporary
folder. The scan is timed twice: in-process (parsing, features, scoring) and
as the real command (``python -m aicache scan DIR --json``, start-up and model
loading included)::

    python benchmarks/bug_detector_speed.py            # 10,000 lines
    python benchmarks/bug_detector_speed.py --lines 50000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_project(folder: Path, lines: int) -> int:
    """Copy installed packages' Python files into ``folder`` until ``lines``; the line count."""
    from aicache.tasks.bug_detector.sources import installed_code_bases, read_text

    total = 0
    for name, files in installed_code_bases():
        for index, path in enumerate(files):
            text = read_text(path)
            if text is None:
                continue
            target = folder / name / f"{index:04d}_{path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            total += text.count("\n") + 1
            if total >= lines:
                return total
    return total


def main() -> int:
    """Build the project, time both scans, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    from aicache.registry.shipped import shipped_model
    from aicache.tasks.bug_detector import project_files, scan_files
    from aicache.tasks.bug_detector.model import DIMENSION

    shipped = shipped_model("bug-detector")
    weights = shipped.arrays[0] if shipped is not None else np.zeros(DIMENSION)
    with tempfile.TemporaryDirectory(prefix="aicache-scan-speed-") as scratch:
        folder = Path(scratch) / "project"
        folder.mkdir()
        lines = build_project(folder, args.lines)
        started = time.perf_counter()
        report = scan_files(weights, project_files(folder), root=folder)
        in_process = time.perf_counter() - started
        env = {**os.environ, "AICACHE_HOME": str(Path(scratch) / "home")}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "aicache", "scan", str(folder), "--json"],
            capture_output=True,
            env=env,
            check=False,
            timeout=600,
        )
        command = time.perf_counter() - started
    print(
        json.dumps(
            {
                "lines": lines,
                "files": report.files,
                "findings": len(report.findings),
                "in_process_s": round(in_process, 2),
                "command_s": round(command, 2),
                "command_exit": done.returncode,
                "model": "shipped" if shipped is not None else "untrained",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
