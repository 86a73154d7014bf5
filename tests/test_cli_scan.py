"""``aicache scan`` end to end: the real command, the shipped model, real code in a git project."""

from __future__ import annotations

import bisect
import json
import subprocess
from pathlib import Path

from tests.conftest import Cli

# Real code: the standard library's pure-Python bisect module (read where it is installed).
REAL_CODE = Path(bisect.__file__).read_text(encoding="utf-8")
# A slip the module could have had: an index off by one in bisect_right's loop.
PLANTED_FROM, PLANTED_TO = "if x < a[mid]:", "if x < a[mid + 1]:"


def _git_project(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "notes.txt").write_text("not python\n")
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    subprocess.run(["git", "add", "."], cwd=folder, check=True)
    return folder


def test_scan_passes_clean_code_and_finds_a_planted_slip(cli: Cli, tmp_path: Path) -> None:
    # Prepare: the real module, clean; then the same project with one planted slip
    clean = _git_project(tmp_path / "clean", {"search.py": REAL_CODE})
    planted_code = REAL_CODE.replace(PLANTED_FROM, PLANTED_TO, 1)
    assert planted_code != REAL_CODE
    planted_line = REAL_CODE[: REAL_CODE.index(PLANTED_FROM)].count("\n") + 1
    slipped = _git_project(tmp_path / "slipped", {"search.py": planted_code})
    # Execute: the default path is the git project the command runs in
    passed = _run_in(cli, clean, "scan")
    found = _run_in(cli, slipped, "scan", "--json")
    # Assert
    assert passed.returncode == 0, passed.stdout.decode() + passed.stderr.decode()
    assert b"0 finding(s) above" in passed.stdout
    assert found.returncode == 1, found.stderr.decode()
    report = json.loads(found.stdout)
    assert report["files"] == 1 and report["model"] == "the shipped model"
    top = report["findings"][0]
    assert (top["path"], top["line"]) == ("search.py", planted_line), report["findings"][:3]
    assert top["suggestion"].replace(" ", "") in PLANTED_FROM.replace(" ", "")


def _run_in(cli: Cli, folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    saved = cli.cwd
    cli.cwd = folder
    try:
        return cli.run(*args, timeout=120)
    finally:
        cli.cwd = saved


def test_scan_refuses_bad_input_and_skips_unreadable_files(cli: Cli, tmp_path: Path) -> None:
    # Prepare: a folder with a file that does not parse and one that is not UTF-8
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "broken.py").write_text("def broken(:\n")
    (folder / "latin1.py").write_bytes(b"name = '\xe9'\n")
    # Execute
    missing = cli.run("scan", str(tmp_path / "nowhere"))
    outside = cli.run("scan")  # the fixture's directory is in no git project
    odd = cli.run("scan", str(folder))
    # Assert: usage errors are one line and exit 2; unreadable files are skipped with a note
    assert missing.returncode == 2 and b"no such file or folder" in missing.stderr
    assert outside.returncode == 2 and b"not in a git project" in outside.stderr
    assert b"Traceback" not in missing.stderr + outside.stderr + odd.stderr
    assert odd.returncode == 0, odd.stderr.decode()
    assert b"skipped broken.py: syntax error at line 1" in odd.stderr
    assert b"skipped latin1.py: cannot be read as UTF-8 text" in odd.stderr
    assert b"in 0 file(s)" in odd.stdout
