"""The optional parts: the core installs alone, and a missing extra is named, never a traceback.

The tests that need an extra to be *absent* run for real in `make core-test`
(a venv with `pip install .` only) and skip in the full development install.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from aicache.extras import EXTRAS, MissingExtra, missing, require
from tests.conftest import ROOT, Cli

# Everything an extra brings, and what those bring (scipy comes with dp-accounting).
EXTRA_MODULES = sorted({m for modules in EXTRAS.values() for m in modules} | {"scipy"})


def _loaded_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    """The modules of extras that a fresh interpreter has loaded after running ``code``."""
    loaded = f"{{m.split('.')[0] for m in sys.modules}} & {set(EXTRA_MODULES)!r}"
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({loaded})))"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return list(json.loads(result.stdout.splitlines()[-1]))


def _error_lines(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    return result.stderr.decode().strip().splitlines()


def test_importing_the_ckks_module_does_not_load_tenseal() -> None:
    # The server's and the simulation's modules import it; only --secure he uses it.
    assert _loaded_after("import aicache.privacy.ckks, aicache.privacy.key_authority") == []


def test_a_nodes_modules_load_no_extra() -> None:
    loaded = _loaded_after(
        "import aicache.cli.app, aicache.deploy.client_app, aicache.deploy.supernode,"
        " aicache.deploy.node, aicache.deploy.serving"
    )
    assert loaded == []


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["suggest"],
        ["models", "list"],
        ["stats"],
        ["privacy", "show"],
        ["privacy", "report"],
    ],
    ids=" ".join,
)
def test_everyday_commands_load_no_extra(cli: Cli, args: list[str]) -> None:
    code = f"from aicache.cli import main\nassert main({args!r}) == 0"
    assert _loaded_after(code, env=cli.env) == []


def test_a_missing_module_is_named_with_its_extra() -> None:
    with pytest.raises(MissingExtra) as caught:
        require("he", "aicache_test_no_such_module")
    assert caught.value.exit_code == 2
    assert "'he' extra" in caught.value.message
    assert "aicache_test_no_such_module is not installed" in caught.value.message
    assert caught.value.hint == "install it with: pip install 'aicache[he]'"


def test_a_library_missing_its_own_dependency_is_not_blamed_on_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "aicache_test_broken_library"
    package.mkdir()
    (package / "__init__.py").write_text("import aicache_test_its_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        require("he", "aicache_test_broken_library")
    assert caught.type is ModuleNotFoundError
    assert caught.value.name == "aicache_test_its_missing_dependency"


def test_a_bare_folder_named_like_the_module_is_not_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "aicache_test_bare_folder").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingExtra, match="aicache_test_bare_folder is not installed"):
        require("simulation", "aicache_test_bare_folder")


def test_an_unknown_extra_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown extra 'gpu'"):
        missing("gpu")


def test_the_extras_are_the_packages_optional_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    assert set(EXTRAS) <= set(optional)
    assert optional["all"] == [f"aicache[{','.join(EXTRAS)}]"]
    # Python 3.13 installs the core; Ray is left to flwr's own markers.
    assert project["requires-python"] == ">=3.11,<3.14"
    assert not any("simulation" in dependency for dependency in project["dependencies"])


@pytest.mark.skipif(missing("he") == [], reason="tenseal is installed")
def test_he_without_its_extra_names_it_not_a_traceback() -> None:
    from aicache.privacy import ckks

    with pytest.raises(MissingExtra) as caught:
        ckks.make_keys()
    assert caught.value.extra == "he"


@pytest.mark.skipif(missing("simulation") == [], reason="the simulation extra is installed")
def test_simulate_without_its_extra_names_it_not_a_traceback(cli: Cli) -> None:
    (cli.cwd / "ray").mkdir()  # what Ray leaves in /tmp: a folder, not Ray
    result = cli.run("simulate", "--clients", "4", "--rounds", "1", "--out", "report")
    assert result.returncode == 2
    assert _error_lines(result) == [
        f"error: this needs aicache's 'simulation' extra ({missing('simulation')[0]} "
        "is not installed)",
        "install it with: pip install 'aicache[simulation]'",
    ]
    assert not (cli.cwd / "report").exists()


@pytest.mark.skipif(missing("server") == [], reason="the server extra is installed")
def test_a_server_without_its_extra_names_it_before_starting(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "federation"
    assert cli.run("server", "init", str(root), "--port", "19381").returncode == 0
    for command in ("start", "run"):
        result = cli.run("server", command, str(root))
        assert result.returncode == 2, result.stderr
        assert _error_lines(result)[-1] == "install it with: pip install 'aicache[server]'"
        assert b"Traceback" not in result.stderr


def test_core_test_says_so_when_there_is_no_python_313() -> None:
    result = subprocess.run(
        ["make", "-s", "core-test", "CORE_PYTHON="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("core-test: skipped: no Python 3.13 found")
