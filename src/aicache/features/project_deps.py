"""A project's dependencies, read from its own files: what ``aicache recommend`` starts from.

Read, in order: ``pyproject.toml`` (PEP 621 ``[project]`` dependencies and
optional dependencies, PEP 735 ``[dependency-groups]``, Poetry's tables),
``requirements*.txt`` at the root and in ``requirements/`` (following ``-r``),
``setup.cfg`` (``install_requires``, ``extras_require``) and the top-level
imports of the project's Python files (standard library and the project's own
modules left out; import names mapped to the distributions that provide them).
Names come back in PEP 503 normal form. Nothing here leaves the machine.
"""

from __future__ import annotations

import configparser
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SEPARATORS = re.compile(r"[-_.]+")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import\b|import[ \t]+([A-Za-z_][\w., \t]*))",
    re.MULTILINE,
)
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".venv", "venv", "env", ".tox", ".nox", "node_modules", "build", "dist",
     "site-packages", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
)  # fmt: skip
MAX_PYTHON_FILES = 2000  # enough for a large project; bounds the time of a huge tree

# Import names that differ from the name of the distribution that provides them.
IMPORT_TO_DISTRIBUTION: dict[str, str] = {
    "yaml": "pyyaml", "PIL": "pillow", "sklearn": "scikit-learn", "skimage": "scikit-image",
    "cv2": "opencv-python", "bs4": "beautifulsoup4", "dateutil": "python-dateutil",
    "attr": "attrs", "jwt": "pyjwt", "dotenv": "python-dotenv", "OpenSSL": "pyopenssl",
    "Crypto": "pycryptodome", "serial": "pyserial", "magic": "python-magic",
    "docx": "python-docx", "git": "gitpython", "zmq": "pyzmq", "Bio": "biopython",
    "jose": "python-jose", "multipart": "python-multipart", "slugify": "python-slugify",
    "websocket": "websocket-client", "MySQLdb": "mysqlclient", "pkg_resources": "setuptools",
    "grpc": "grpcio", "fitz": "pymupdf", "OpenGL": "pyopengl", "nacl": "pynacl",
    "mpl_toolkits": "matplotlib", "dns": "dnspython", "absl": "absl-py", "kafka": "kafka-python",
    "google.protobuf": "protobuf", "googleapiclient": "google-api-python-client",
    "tomli_w": "tomli-w", "typing_extensions": "typing-extensions", "win32api": "pywin32",
    "psycopg2": "psycopg2-binary", "Levenshtein": "levenshtein", "ruamel": "ruamel-yaml",
    "sentencepiece": "sentencepiece", "faiss": "faiss-cpu", "usb": "pyusb", "gi": "pygobject",
}  # fmt: skip


def normalise(name: str) -> str:
    """A project name in PEP 503 normal form (``Flask_SQLAlchemy`` -> ``flask-sqlalchemy``)."""
    return _SEPARATORS.sub("-", name).lower().strip()


@dataclass(frozen=True, slots=True)
class ProjectDependencies:
    """What a project depends on, and where each name was read.

    Attributes
    ----------
    root
        The project's folder.
    name
        The project's own name, when a file declares it (never recommended).
    found
        Each dependency (normal form) and the files or ``imports`` it came from, in
        the order first read.
    problems
        One line per file or entry that could not be read (what is wrong, and
        that its dependencies are not counted).
    """

    root: Path
    name: str | None = None
    found: dict[str, list[str]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The dependencies, in the order first read."""
        return tuple(self.found)


def project_root(start: Path) -> Path:
    """The git project ``start`` lies in (the folder holding ``.git``), else ``start`` itself."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def requirement_name(line: str) -> str | None:
    """The distribution a requirement line names (``Django>=4 ; ...`` -> ``django``)."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith(("-", "git+", "http:", "https:", "file:", ".", "/")):
        return None
    match = _REQUIREMENT.match(text)
    return normalise(match.group(1)) if match else None


def _requirements_file(path: Path, seen: set[Path]) -> Iterator[str]:
    if path in seen or not path.is_file():
        return
    seen.add(path)
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if line.startswith(("-r ", "--requirement ", "-c ", "--constraint ")):
            yield from _requirements_file(path.parent / line.split(None, 1)[1].strip(), seen)
            continue
        name = requirement_name(line)
        if name:
            yield name


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a table, else an empty one (a malformed file declares nothing there)."""
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    """The strings of ``value`` if it is a list, else none."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _pyproject(path: Path, problems: list[str]) -> tuple[str | None, list[str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as exc:
        # A broken file declares nothing readable; the other sources still count.
        problems.append(f"{path.name}: not valid TOML ({exc}): its dependencies are not counted")
        return None, []
    project = _mapping(data.get("project"))
    declared = project.get("dependencies")
    if declared is not None and not isinstance(declared, list):
        problems.append(
            f"{path.name}: [project] dependencies is a {type(declared).__name__}, "
            "not a list of strings: not counted"
        )
    lines = _strings(declared)
    for extra in _mapping(project.get("optional-dependencies")).values():
        lines += _strings(extra)
    for group in _mapping(data.get("dependency-groups")).values():
        lines += _strings(group)
    poetry = _mapping(_mapping(data.get("tool")).get("poetry"))
    tables = [poetry.get("dependencies"), poetry.get("dev-dependencies")]
    tables += [_mapping(g).get("dependencies") for g in _mapping(poetry.get("group")).values()]
    for table in tables:
        lines += [k for k in _mapping(table) if k.lower() != "python"]
    names = [n for n in (requirement_name(line) for line in lines) if n]
    own = project.get("name") or poetry.get("name")
    return (normalise(own) if isinstance(own, str) else None), names


def _setup_cfg(path: Path, problems: list[str]) -> tuple[str | None, list[str]]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
    except configparser.Error as exc:
        reason = str(exc).splitlines()[0]
        problems.append(f"{path.name}: not readable ({reason}): its dependencies are not counted")
        return None, []
    lines = parser.get("options", "install_requires", fallback="").splitlines()
    if parser.has_section("options.extras_require"):
        for _, value in parser.items("options.extras_require"):
            lines += value.splitlines()
    own = parser.get("metadata", "name", fallback=None)
    names = [n for n in (requirement_name(line) for line in lines) if n]
    return (normalise(own) if own else None), names


def _python_files(root: Path) -> Iterator[Path]:
    count = 0
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir():
                if entry.name not in SKIPPED_DIRS and not entry.name.startswith("."):
                    stack.append(entry)
            elif entry.suffix == ".py":
                yield entry
                count += 1
                if count >= MAX_PYTHON_FILES:
                    return


def _own_modules(root: Path) -> set[str]:
    """The project's own top-level modules (a package or module at the root or under src/)."""
    own = set()
    for base in (root, root / "src"):
        if base.is_dir():
            for entry in base.iterdir():
                if entry.suffix == ".py" or (entry / "__init__.py").is_file():
                    own.add(entry.stem if entry.suffix == ".py" else entry.name)
    return own


def _imported_modules(text: str) -> Iterator[str]:
    """The absolute module names a Python source imports at the start of a line.

    A regular expression, not a parse: it reads a large tree in milliseconds,
    and an import inside a string is rare enough not to matter for a suggestion.
    """
    for match in _IMPORT.finditer(text):
        if match.group(1):
            yield match.group(1)
        else:
            for part in match.group(2).split(","):
                name = part.strip().split(" ")[0]
                if name:
                    yield name


def imported_distributions(root: Path, files: Iterable[Path]) -> list[str]:
    """The distributions the Python ``files`` import, by first appearance."""
    own = _own_modules(root)
    found: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for module in _imported_modules(text):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in own or top == "__future__":
                continue
            two = ".".join(module.split(".")[:2])
            name = normalise(
                IMPORT_TO_DISTRIBUTION.get(two) or IMPORT_TO_DISTRIBUTION.get(top, top)
            )
            if name not in found:
                found.append(name)
    return found


def read_project(path: Path, *, imports: bool = True) -> ProjectDependencies:
    """The dependencies of the project at ``path`` (a file inside it or its folder).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    if not path.exists():
        raise FileNotFoundError(str(path))
    root = path if path.is_dir() else path.parent
    found: dict[str, list[str]] = {}
    own: str | None = None
    problems: list[str] = []

    def add(names: Iterable[str], where: str) -> None:
        for name in names:
            found.setdefault(name, [])
            if where not in found[name]:
                found[name].append(where)

    if (root / "pyproject.toml").is_file():
        own, names = _pyproject(root / "pyproject.toml", problems)
        add(names, "pyproject.toml")
    if (root / "setup.cfg").is_file():
        declared, names = _setup_cfg(root / "setup.cfg", problems)
        own = own or declared
        add(names, "setup.cfg")
    candidates = sorted(root.glob("requirements*.txt")) + sorted(root.glob("requirements/*.txt"))
    seen: set[Path] = set()
    for file in candidates:
        add(_requirements_file(file, seen), str(file.relative_to(root)))
    if imports:
        add(imported_distributions(root, _python_files(root)), "imports")
    if own is not None:
        found.pop(own, None)
    return ProjectDependencies(root=root, name=own, found=found, problems=tuple(problems))
