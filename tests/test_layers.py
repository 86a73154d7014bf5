"""The layers of the design are a rule of the code: imports point down only."""

from __future__ import annotations

import ast
from pathlib import Path

import aicache

PACKAGE = Path(aicache.__file__).parent
# Which layers each layer may import (besides itself and the shared modules).
ALLOWED = {
    "cli": {
        "deploy",
        "simulation",
        "federation",
        "privacy",
        "registry",
        "security",
        "tasks",
        "features",
        "local",
    },
    # Beyond the design's table, the SuperLink/SuperNode launchers live in their own
    # layer above federation: a deployed ClientApp reads the developer's store (local)
    # and the operator's commands supervise processes and the registry. It shares the
    # simulation's quiet Flower environment and model-compatibility check.
    "deploy": {
        "simulation",
        "federation",
        "privacy",
        "registry",
        "security",
        "tasks",
        "features",
        "local",
    },
    # Beyond the design's table, the simulation reads real data formats through
    # the same loaders the local side uses (features, local) and reads the registry.
    "simulation": {"federation", "tasks", "features", "local", "registry", "privacy"},
    "federation": {"tasks", "privacy", "registry", "security"},
    "privacy": set(),
    "registry": {"security"},
    "security": set(),
    "tasks": {"features"},
    "features": {"local"},
    "local": set(),
}
SHARED = {"errors", "extras", "__init__", "__main__"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "aicache" else None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_every_module_lives_in_a_known_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        layer = relative.parts[0].removesuffix(".py")
        assert layer in ALLOWED or layer in SHARED, f"{relative} is outside the layers"


def test_imports_point_down_only() -> None:
    # Prepare
    violations = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if layer in SHARED:
            continue
        # Execute
        for module in _imports(path):
            target = _layer(module)
            if target is None or target == layer or target in SHARED:
                continue
            if target not in ALLOWED[layer]:
                violations.append(f"{path.relative_to(PACKAGE)} imports {module}")
    # Assert
    assert violations == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from aicache.cli.app import app\nimport aicache.tasks\n")
    assert {_layer(m) for m in _imports(bad)} == {"cli", "tasks"}


def test_the_code_that_sends_data_never_imports_the_private_side() -> None:
    # The privacy boundary: federation/ reaches private examples only through a
    # task's load_local, never by importing local/ or features/ itself.
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in (PACKAGE / "federation").rglob("*.py")
        for module in _imports(path)
        if _layer(module) in {"local", "features"}
    ]
    assert offenders == []
