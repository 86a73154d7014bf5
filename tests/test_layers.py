"""The layers of the design are a rule of the code: imports point down only.

``LAYERS`` is the design's table of layers as data, with no exception (the
README's Layout table shows it, and a test keeps the two the same): a layer
imports itself, the shared modules, and the layers its row names. The privacy
boundary is checked beside it: the code that sends data (``federation/``) or
runs a node and a server (``deploy/``) never touches the private store
itself; only ``local/`` and a task's own store reader (``tasks/<name>/``) do.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import aicache
import aicache.local.schema

PACKAGE = Path(aicache.__file__).parent
README = Path(__file__).resolve().parents[1] / "README.md"

# Which layers each layer may import (besides itself and SHARED): the README's Layout table.
LAYERS: dict[str, frozenset[str]] = {
    "cli": frozenset(
        {
            "web",
            "deploy",
            "simulation",
            "federation",
            "privacy",
            "registry",
            "security",
            "tasks",
            "features",
            "local",
        }
    ),
    "web": frozenset({"deploy", "registry", "security", "tasks", "local"}),
    "deploy": frozenset({"federation", "tasks", "registry", "security", "local"}),
    "simulation": frozenset({"federation", "tasks"}),
    "federation": frozenset({"tasks", "privacy", "registry", "security"}),
    "privacy": frozenset(),
    "registry": frozenset({"security"}),
    "security": frozenset(),
    "tasks": frozenset({"features"}),
    "features": frozenset({"local"}),
    "local": frozenset(),
}
# Modules beside the layers that every layer may import: the error types (``extras``
# raises the one naming an install extra that is missing), the packages' lazy exports
# (``_lazy``) and the entry points.
SHARED = frozenset({"errors", "extras", "_lazy", "__init__", "__main__"})

# The privacy boundary: the layers that send data or run the federation's processes.
BOUNDARY_LAYERS = ("federation", "deploy")
# What those layers may never import: the private side's internals.
PRIVATE_MODULES = ("aicache.local.schema", "aicache.local.store._")
# The store's tables, from its own schema: SQL naming one is raw access to the store.
STORE_TABLES = frozenset(
    re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", "".join(aicache.local.schema.MIGRATIONS))
)
# SQL keywords in capitals, as every query of the code base writes them: prose that says
# "read from settings" is not a query.
_SQL_ON = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+(\w+)")
_RAW_CALLS = frozenset({"execute", "executemany", "executescript", "cursor"})


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "aicache" else None


def _home(package: Path, path: Path) -> str:
    return path.relative_to(package).parts[0].removesuffix(".py")


def _imports(package: Path, path: Path) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Every module ``path`` imports, with the names taken from it (``from X import a``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            if node.level == 0 and node.module:
                module = node.module
            else:  # relative: resolved against the importing module's package
                inside = ["aicache", *path.relative_to(package).parts[:-1]]
                base = inside[: len(inside) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            if module == "aicache":  # ``from aicache import deploy`` imports aicache.deploy
                yield from ((f"aicache.{name}", ()) for name in names)
            else:
                yield module, names


def layer_violations(package: Path) -> list[str]:
    """One line per import that breaks ``LAYERS``: file, import and the rule."""
    violations = []
    for path in sorted(package.rglob("*.py")):
        layer = _home(package, path)
        if layer in SHARED or layer not in LAYERS:
            continue  # a module outside the layers fails the test that looks for them
        for module in sorted({module for module, _ in _imports(package, path)}):
            target = _layer_of(module)
            if target not in LAYERS or target == layer:
                continue  # not aicache's, its own layer, or a shared module
            if target not in LAYERS[layer]:
                allowed = ", ".join(sorted(LAYERS[layer])) or "no other layer"
                violations.append(
                    f"{path.relative_to(package)} imports {module}: {layer}/ may import "
                    f"{allowed} (README, Layout)"
                )
    return violations


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def boundary_violations(package: Path) -> list[str]:
    """One line per place where federation/ or deploy/ reaches into the private store."""
    rule = "only local/ and a task's store reader (tasks/<name>/) touch the store"
    found = []
    for layer in BOUNDARY_LAYERS:
        for path in sorted((package / layer).rglob("*.py")):
            where = path.relative_to(package)
            tree = ast.parse(path.read_text(), filename=str(path))
            taken: dict[str, set[str]] = {}
            for module, names in _imports(package, path):
                taken.setdefault(module, set()).update(names)
            for module, imported in sorted(taken.items()):
                private = [f"{module}.{name}" for name in imported] + [module]
                if _layer_of(module) == "features" or (
                    layer == "federation" and _layer_of(module) == "local"
                ):
                    found.append(f"{where} imports {module}: {rule}")
                elif any(name.startswith(PRIVATE_MODULES) for name in private):
                    found.append(f"{where} imports {module}, the store's internals: {rule}")
            for line, text in _strings(tree):
                tables = {t for t in _SQL_ON.findall(text) if t in STORE_TABLES}
                found += [
                    f"{where}:{line} runs SQL on the store's table {table}: {rule}"
                    for table in sorted(tables)
                ]
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in _RAW_CALLS
                    and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "conn"
                ):
                    found.append(
                        f"{where}:{node.lineno} calls .conn.{node.attr} on the store's "
                        f"connection: {rule}"
                    )
    return found


def test_every_module_lives_in_a_known_layer() -> None:
    # Execute
    outside = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if _home(PACKAGE, path) not in LAYERS and _home(PACKAGE, path) not in SHARED
    ]
    # Assert
    assert outside == [], "modules outside the layers of the README's Layout table"


def test_imports_point_down_only() -> None:
    # Execute
    violations = layer_violations(PACKAGE)
    # Assert
    assert violations == [], "\n".join(violations)


def test_the_code_that_sends_data_never_touches_the_private_store() -> None:
    # Execute
    violations = boundary_violations(PACKAGE)
    # Assert
    assert violations == [], "\n".join(violations)


def test_the_readme_shows_the_same_layers() -> None:
    # Prepare
    rows = re.findall(
        r"^\| `src/aicache/(\w+)/`[^|]*\|[^|]*\| ([^|]*) \|$", README.read_text(), re.M
    )
    # Execute
    shown = {
        layer: frozenset(re.findall(r"[a-z]+", may) if may != "(none)" else ())
        for layer, may in rows
    }
    # Assert
    assert shown == LAYERS


def test_the_store_tables_are_read_from_its_schema() -> None:
    # The boundary check is only as good as its list of tables.
    assert {"commands", "cache_entries", "settings"} <= STORE_TABLES


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "aicache"
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return package


def test_the_layer_checker_names_file_import_and_rule(tmp_path: Path) -> None:
    # Prepare
    package = _package(
        tmp_path,
        {
            "deploy/processes.py": "from aicache.simulation.engine import QUIET\n",
            "deploy/fine.py": "from aicache.federation import plan\nfrom aicache import errors\n",
            "privacy/noise.py": "import aicache.registry.versions\n",
            "tasks/spec/__init__.py": "from ..base import Task\n",
            "registry/reader.py": "from . import records\n",
        },
    )
    # Execute
    violations = layer_violations(package)
    # Assert
    assert violations == [
        "deploy/processes.py imports aicache.simulation.engine: deploy/ may import "
        "federation, local, registry, security, tasks (README, Layout)",
        "privacy/noise.py imports aicache.registry.versions: privacy/ may import "
        "no other layer (README, Layout)",
    ]


def test_the_boundary_checker_sees_raw_store_access(tmp_path: Path) -> None:
    # Prepare
    package = _package(
        tmp_path,
        {
            "deploy/client_app.py": (
                "from aicache.local.store import Store\n"
                "def count(store: Store) -> int:\n"
                "    return store.conn.execute('SELECT count(*) FROM commands').fetchone()[0]\n"
            ),
            "deploy/nodes.py": (
                '"""Names kept apart from settings."""\n'
                "def f(c):\n    return c._conn.execute('SELECT * FROM nodes')\n"
            ),
            "deploy/store_peek.py": "from aicache.local.store import Store, _versions\n",
            "federation/client.py": "from aicache.local.schema import MIGRATIONS\n",
        },
    )
    # Execute
    violations = boundary_violations(package)
    # Assert
    rule = "only local/ and a task's store reader (tasks/<name>/) touch the store"
    assert violations == [
        f"federation/client.py imports aicache.local.schema: {rule}",
        f"deploy/client_app.py:3 runs SQL on the store's table commands: {rule}",
        f"deploy/client_app.py:3 calls .conn.execute on the store's connection: {rule}",
        f"deploy/store_peek.py imports aicache.local.store, the store's internals: {rule}",
    ]
