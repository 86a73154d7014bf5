"""``aicache simulate --task semantic-hit`` end to end (real Ray), on the embedded default
and on both real data sets, with the baseline measured in the same run.

Embedding every pair is the cost of these runs: the real data sets are run on a
sample of their own files (a few commands of each program, a few pairs of each
source), written in the test's folder in the format the source reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, shared_data

pytestmark = [pytest.mark.e2e, pytest.mark.needs_extra("semantic", "simulation")]

HEADLINE = ("f05", "precision", "recall")
NL2BASH_COMMANDS = 2  # commands kept per program: every group of programs keeps both labels
STSB_PAIRS = 45  # pairs kept per source: a source needs 40 to be a client


def _sample(name: str, folder: Path) -> Path:
    """A sample of real data set ``name``'s files in ``folder``, in its own format."""
    data = shared_data(name)
    folder.mkdir()
    if name == "nl2bash":
        texts = (data / "all.nl").read_text(encoding="utf-8", errors="replace").splitlines()
        commands = (data / "all.cm").read_text(encoding="utf-8", errors="replace").splitlines()
        kept: dict[str, list[str]] = {}
        lines: list[tuple[str, str]] = []
        for text, command in zip(texts, commands, strict=True):
            program = kept.setdefault(command.split()[0] if command.strip() else "", [])
            if command not in program and len(program) < NL2BASH_COMMANDS:
                program.append(command)
            if command in program:
                lines.append((text, command))
        (folder / "all.nl").write_text("".join(f"{t}\n" for t, _ in lines), encoding="utf-8")
        (folder / "all.cm").write_text("".join(f"{c}\n" for _, c in lines), encoding="utf-8")
    else:
        per_source: dict[str, int] = {}
        rows: list[str] = []
        for file in ("sts-train.csv", "sts-dev.csv"):
            for line in (data / file).read_text(encoding="utf-8", errors="replace").splitlines():
                source = line.split("\t")[1] if "\t" in line else ""
                if per_source.get(source, 0) < STSB_PAIRS:
                    per_source[source] = per_source.get(source, 0) + 1
                    rows.append(line)
        (folder / "sts-train.csv").write_text("".join(f"{r}\n" for r in rows), encoding="utf-8")
        (folder / "sts-dev.csv").write_text("", encoding="utf-8")
    return folder


def _check_report(metrics: dict[str, Any], report: Path, clients: int) -> None:
    assert metrics["task"] == "semantic-hit"
    assert [m["name"] for m in metrics["metrics"]] == list(HEADLINE)
    for arm in ("federated", "local_only", "centralized", "personalized"):
        assert len(metrics[arm]["per_client"]) == clients
        assert all(0.0 <= metrics[arm][name] <= 1.0 for name in HEADLINE)
    comparison = metrics["comparison"]
    assert "MiniLM cosine" in comparison["baseline_label"]
    assert set(HEADLINE) <= set(comparison["baseline"])
    learned, baseline = comparison["curves"]
    for curve in (learned, baseline):
        assert len(curve["xs"]) == len(curve["ys"]) >= 5
        assert all(0.0 <= v <= 1.0 for v in curve["xs"] + curve["ys"])
        assert curve["point"] is not None
    assert (report / "comparison.png").stat().st_size > 0
    page = (report / "index.html").read_text()
    assert "comparison.png" in page and "baseline: MiniLM cosine" in page


def test_simulate_semantic_hit_on_the_embedded_population(cli: Cli, tmp_path: Path) -> None:
    # Execute
    report = tmp_path / "report"
    metrics, _ = cli.simulate(
        "--task semantic-hit --clients 3 --rounds 2 --learning-rate 0.1 --local-epochs 5",
        out=report,
        timeout=900,
    )
    # Assert: it learns, and beats the untrained decision (which serves nothing)
    _check_report(metrics, report, 3)
    assert metrics["untrained"]["f05"] == 0.0
    assert metrics["federated"]["f05"] > 0.5
    assert [v["task"] for v in cli.versions()] == ["semantic-hit", "semantic-hit"]


@pytest.mark.parametrize("name", ["nl2bash", "stsb"])
def test_simulate_semantic_hit_on_real_data(cli: Cli, tmp_path: Path, name: str) -> None:
    # Prepare
    data = _sample(name, tmp_path / name)
    report = tmp_path / "report"
    # Execute
    metrics, _ = cli.simulate(
        f"--task semantic-hit --data {data} --format {name} --rounds 1", out=report, timeout=1500
    )
    # Assert
    _check_report(metrics, report, metrics["clients"])
    assert metrics["clients"] >= 5
    assert {"nl2bash": "NL2Bash", "stsb": "STS Benchmark"}[name] in metrics["data"]
