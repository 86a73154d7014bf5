"""Each public package exports exactly what docs/API.md describes (httpx's test, per package).

A package's public names are its ``__all__``: every public name bound in the
package is in it, every name in it can be imported from the package, and
docs/API.md lists exactly those names under the package's heading. Adding a
name to a package means adding it to ``__all__`` and one line to the docs.
"""

from __future__ import annotations
import __future__

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "API.md"
PUBLIC_PACKAGES = (
    "aicache.tasks",
    "aicache.privacy",
    "aicache.registry",
    "aicache.federation",
    "aicache.local",
    "aicache.security",
    "aicache.deploy",
    "aicache.simulation",
)
_HEADING = re.compile(r"^## `(aicache(?:\.\w+)*)`\s*$")
_ENTRY = re.compile(r"^- `(\w+)`: \S")


def documented(text: str) -> dict[str, list[str]]:
    """The names docs/API.md lists under each package's heading, in order."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if heading := _HEADING.match(line):
            current = found.setdefault(heading.group(1), [])
        elif line.startswith("## "):
            current = None
        elif current is not None and line.startswith("- `"):
            entry = _ENTRY.match(line)
            assert entry is not None, f"docs/API.md: {line!r} is not '- `name`: what it is'"
            current.append(entry.group(1))
    return found


def _exported(package: ModuleType) -> list[str]:
    return list(getattr(package, "__all__", []))


def _bound_publicly(package: ModuleType) -> set[str]:
    """Public names bound in the package itself (not its submodules, not ``__future__``)."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and not isinstance(value, __future__._Feature)
    }


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_every_public_name_of_a_package_is_in_its_all(name: str) -> None:
    # Prepare
    package = importlib.import_module(name)
    exported = _exported(package)
    # Execute
    missing = sorted(_bound_publicly(package) - set(exported))
    unresolved, not_installed = [], set()
    for member in exported:
        try:
            getattr(package, member)
        except AttributeError:
            unresolved.append(member)
        except ModuleNotFoundError as exc:  # a library of an extra that is not installed
            if exc.name is None or exc.name.split(".")[0] == "aicache":
                raise
            not_installed.add(exc.name)
    # Assert
    assert missing == [], f"{name} binds {missing} without listing them in __all__"
    assert unresolved == [], f"{name}.__all__ lists {unresolved}, which cannot be imported"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    if not_installed:
        pytest.skip(f"some names of {name} need {sorted(not_installed)}, not installed here")


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_the_docs_list_exactly_what_a_package_exports(name: str) -> None:
    # Prepare
    package = importlib.import_module(name)
    # Execute
    listed = documented(API_DOC.read_text()).get(name)
    # Assert
    assert listed is not None, f"docs/API.md has no '## `{name}`' section"
    assert sorted(listed) == sorted(_exported(package)), (
        f"docs/API.md lists {sorted(set(listed) - set(_exported(package)))} that {name} does "
        f"not export, and misses {sorted(set(_exported(package)) - set(listed))}"
    )


def test_the_docs_describe_only_the_public_packages() -> None:
    assert sorted(documented(API_DOC.read_text())) == sorted(PUBLIC_PACKAGES)


def test_the_docs_reader_sees_each_package_and_refuses_a_bare_entry() -> None:
    # Prepare
    text = "## `aicache.x`\n\n- `A`: one.\n- `b`: two.\n\n## Other\n- `C`: not a package.\n"
    # Execute
    found = documented(text)
    # Assert
    assert found == {"aicache.x": ["A", "b"]}
    with pytest.raises(AssertionError, match="is not"):
        documented("## `aicache.x`\n- `A`\n")


def test_a_name_bound_but_not_exported_is_seen() -> None:
    # Prepare: a package that binds a public name it does not export
    package = ModuleType("aicache.fake")
    package.__all__ = ["Kept"]  # type: ignore[attr-defined]
    package.Kept = object()  # type: ignore[attr-defined]
    package.Leaked = object()  # type: ignore[attr-defined]
    package._private = object()  # type: ignore[attr-defined]
    package.submodule = ModuleType("aicache.fake.submodule")  # type: ignore[attr-defined]
    # Execute
    missing = _bound_publicly(package) - set(_exported(package))
    # Assert
    assert missing == {"Leaked"}


LAZY_PACKAGES = ("aicache.deploy", "aicache.local", "aicache.security", "aicache.simulation")


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_a_lazy_packages_names_load_their_module_on_first_use(name: str) -> None:
    # Prepare: a fresh interpreter, where nothing of the package is loaded yet.
    probe = f"""
import json, sys
import {name} as package
before = sorted(m for m in sys.modules if m.startswith("{name}."))
first = package.__all__[0]
value = getattr(package, first)
try:
    getattr(package, "no_such_name")
    unknown = ""
except AttributeError as exc:
    unknown = str(exc)
print(json.dumps({{
    "before": before,
    "home": getattr(value, "__module__", ""),
    "loaded": getattr(value, "__module__", "") in sys.modules,
    "bound": "first" in vars() and first in vars(package),
    "unknown": unknown,
}}))
"""
    # Execute
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    # Assert: importing the package loads none of its modules; reading a name loads its home.
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["before"] == []
    assert found["home"].startswith(f"{name}.") and found["loaded"] and found["bound"]
    assert found["unknown"] == f"module {name!r} has no attribute 'no_such_name'"
