"""The stripping rule on real tool output: recorded outputs, and the tools run again here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aicache.features.error_events import error_key, key_of
from aicache.local.normalise import error_class, error_signature
from aicache.tasks.error_patterns import catalogue, recorded_errors

USER_NAMES = ("InvoiceMismatchError", "SyncConflictError", "billing", "ledgerkit", "4411", "ahead")


def _recorded(name: str) -> str:
    return next(r.stderr for r in recorded_errors() if r.name == name)


def test_the_recorded_outputs_are_real_failures_of_many_tools() -> None:
    # Prepare / Execute
    recorded = recorded_errors()
    tools = {r.tool for r in recorded}
    # Assert: every kind of tool the issue names, each output a real failure's
    assert {"python", "pip", "git", "npm", "node", "make", "gcc", "llm"} <= tools
    assert all(r.stderr or r.command for r in recorded)
    assert not any("/tmp/tmp" in r.stderr for r in recorded), "a temporary path was kept"
    assert len(catalogue()) >= 60


@pytest.mark.parametrize("name", ["user-exception", "user-exception-nested"])
def test_a_class_of_the_users_own_code_and_its_modules_never_leave(name: str) -> None:
    # Prepare: the traceback of a user-defined exception raised in the user's module
    stderr = _recorded(name)
    assert "Error" in stderr and ("billing" in stderr or "ledgerkit" in stderr)
    # Execute
    signature = error_signature(stderr)
    # Assert: the class is a placeholder, and no name of the user's code is left
    assert signature is not None and signature.startswith("<exc>: ")
    for word in USER_NAMES:
        assert word not in signature


@pytest.mark.parametrize(
    ("name", "signature"),
    [
        ("key-error", "KeyError: <str>"),
        ("stop-iteration", "StopIteration"),
        ("json-decode-error", "JSONDecodeError: <w> name <w>: line <n> column <n> (<w> <n>)"),
        ("sqlite-operational", "OperationalError: no such table: <w>"),
        ("module-not-found", "ModuleNotFoundError: No module named <str>"),
        ("user-module-not-found", "ModuleNotFoundError: No module named <str>"),
        ("node-type-error", "TypeError: Cannot read <w> of null (<w> <str>)"),
        ("npm-missing-script", "error: <w> error Missing <w>: <str>"),
        ("gcc-undefined-reference", "error: <w>:(.<w>+<hex>): undefined <w> to `<w>"),
        ("llm-unknown-model", "Error: <str>"),
    ],
)
def test_public_classes_stay_and_the_telling_line_is_chosen(name: str, signature: str) -> None:
    # Execute / Assert: a library's module path is dropped, the public class kept;
    # npm's log line and the linker's closing line are not what is kept
    assert error_signature(_recorded(name)) == signature


def test_an_unknown_class_is_never_the_class() -> None:
    # Prepare / Execute / Assert
    assert error_class("acme.PaymentGatewayError: declined") == "<exc>"
    assert error_class("ValueError: bad") == "ValueError"
    assert error_class("StopIteration") == "StopIteration"


def test_the_tool_loses_its_version_suffix() -> None:
    # Prepare / Execute / Assert
    assert key_of("python3.11", "KeyError: <str>") == "python: KeyError: <str>"
    assert key_of("gcc-12", "error: <w>") == "gcc: error: <w>"


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=60, check=False)
    assert done.returncode != 0
    return done.stderr.decode("utf-8", "replace")


def test_the_real_tools_run_now_leave_the_recorded_signatures(tmp_path: Path) -> None:
    # Prepare: the user-exception scenario's project, and a folder that is no git repository
    (tmp_path / "billing").mkdir()
    (tmp_path / "billing" / "__init__.py").write_text("")
    (tmp_path / "billing" / "errors.py").write_text(
        "class InvoiceMismatchError(Exception):\n    pass\n"
    )
    (tmp_path / "main.py").write_text(
        "from billing.errors import InvoiceMismatchError\n\n"
        "raise InvoiceMismatchError('invoice 4411 does not match order 9120')\n"
    )
    # Execute
    python = error_key("python", _run([sys.executable, "main.py"], tmp_path))
    git = shutil.which("git")
    git_key = error_key("git", _run([git, "status"], tmp_path)) if git else None
    # Assert: the same keys as the recorded outputs (the catalogue the population samples)
    assert python == error_key("python", _recorded("user-exception"))
    assert python in catalogue()
    if git is not None:
        assert git_key == error_key("git", _recorded("not-a-repo"))
        assert git_key in catalogue()
