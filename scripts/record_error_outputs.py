"""Record the real error output of broken commands and snippets, for the error-patterns task.

Every scenario below really runs a tool installed on this machine (python,
pip, git, npm/node, make, gcc, rustc, javac, the ``llm`` CLI, the shell) in
a fresh temporary project and keeps what it wrote: its exit code, stderr and
stdout. Nothing is written by hand but the broken inputs. The embedded
population of the error-patterns task samples its developers' errors from
these outputs, and the tests check the stripping rule on them.

The temporary project's location is replaced by ``~/project``, the home
folder by ``~`` and the interpreter by ``python3``, so that the outputs name
no machine; everything else is as
the tool printed it. A tool that is not installed is skipped (and said so).

Usage::

    python scripts/record_error_outputs.py [OUTPUT.json]

The default output is the task's package data
(``src/aicache/tasks/error_patterns/recorded/outputs.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent
    / "src/aicache/tasks/error_patterns/recorded/outputs.json"
)
MAX_CHARS = 4000  # the tail of a long output is where the error is


@dataclass(frozen=True)
class Scenario:
    """One broken command: the files of the project it runs in, and the command."""

    name: str
    tool: str
    argv: list[str]
    files: dict[str, str] = field(default_factory=dict)
    setup: list[list[str]] = field(default_factory=list)


def _py(name: str, code: str, **files: str) -> Scenario:
    return Scenario(name, "python", ["python3", "main.py"], {"main.py": code, **files})


PYTHON = [
    _py("name-error", "def total(items):\n    return sum(itemz)\n\ntotal([1, 2])\n"),
    _py("type-error-concat", "count = 3\nprint('items: ' + count)\n"),
    _py("type-error-args", "def area(w, h):\n    return w * h\n\narea(3)\n"),
    _py("type-error-none-sub", "row = None\nprint(row[0])\n"),
    _py("key-error", "config = {'host': 'x'}\nprint(config['port'])\n"),
    _py("index-error", "values = [1, 2, 3]\nprint(values[3])\n"),
    _py("attribute-error-none", "user = None\nprint(user.email)\n"),
    _py("attribute-error-str", "name = 'abc'\nname.push('d')\n"),
    _py("zero-division", "def mean(xs):\n    return sum(xs) / len(xs)\n\nmean([])\n"),
    _py("module-not-found", "import requestz\n"),
    _py("import-error-name", "from json import loadz\n"),
    _py("file-not-found", "open('settings.toml').read()\n"),
    _py("value-error-int", "port = int('80a')\n"),
    _py("value-error-unpack", "a, b = [1, 2, 3]\n"),
    _py("recursion-error", "def walk(n):\n    return walk(n + 1)\n\nwalk(0)\n"),
    _py("assertion-error", "def check(x):\n    assert x > 0, 'x must be positive'\n\ncheck(-1)\n"),
    _py("json-decode-error", "import json\njson.loads('{bad json}')\n"),
    _py("unicode-decode-error", "b'\\xff\\xfe\\xfa'.decode('utf-8')\n"),
    _py("syntax-error", "def broken(:\n    pass\n"),
    _py("indentation-error", "def f():\nreturn 1\n"),
    _py("unbound-local", "total = 0\ndef add():\n    total += 1\nadd()\n"),
    _py(
        "permission-error",
        "import os\nos.chmod('locked.txt', 0)\nopen('locked.txt').read()\n",
        **{"locked.txt": "x"},
    ),
    _py("is-a-directory", "import os\nos.makedirs('data', exist_ok=True)\nopen('data').read()\n"),
    _py("called-process-error", "import subprocess\nsubprocess.run(['false'], check=True)\n"),
    _py(
        "sqlite-operational",
        "import sqlite3\nsqlite3.connect(':memory:').execute('SELECT * FROM users')\n",
    ),
    _py("overflow-error", "import math\nmath.exp(1000)\n"),
    _py("stop-iteration", "it = iter([])\nnext(it)\n"),
    _py(
        "not-implemented",
        "class Shape:\n    def area(self):\n        raise NotImplementedError\n\nShape().area()\n",
    ),
    _py("runtime-error-dict", "d = {1: 2}\nfor k in d:\n    d[k + 1] = 0\n"),
    # The user's own code: a user-defined exception in a module of the project.
    _py(
        "user-exception",
        "from billing.errors import InvoiceMismatchError\n\n"
        "raise InvoiceMismatchError('invoice 4411 does not match order 9120')\n",
        **{
            "billing/__init__.py": "",
            "billing/errors.py": "class InvoiceMismatchError(Exception):\n    pass\n",
        },
    ),
    _py(
        "user-exception-nested",
        "import ledgerkit.sync\nledgerkit.sync.run()\n",
        **{
            "ledgerkit/__init__.py": "",
            "ledgerkit/sync.py": "class SyncConflictError(RuntimeError):\n    pass\n\n"
            "def run():\n    raise SyncConflictError('remote ledger ahead by 3 entries')\n",
        },
    ),
    _py(
        "user-module-not-found",
        "from ledgerkit.reports import monthly\n",
        **{"ledgerkit/__init__.py": ""},
    ),
]

SHELL = [
    Scenario("command-not-found", "bash", ["bash", "-c", "deploy-staging --now"]),
    Scenario("cd-missing", "bash", ["bash", "-c", "cd build/output"]),
    Scenario("permission-denied", "bash", ["bash", "-c", "./run.sh"], {"run.sh": "echo hi\n"}),
    Scenario("cat-missing", "cat", ["cat", "notes.txt"]),
    Scenario("ls-missing", "ls", ["ls", "dist"]),
]

GIT_INIT = [
    ["git", "init", "-q"],
    ["git", "config", "user.email", "dev@example.org"],
    ["git", "config", "user.name", "dev"],
]
GIT_COMMIT = [*GIT_INIT, ["git", "add", "-A"], ["git", "commit", "-qm", "start"]]
GIT = [
    Scenario("not-a-repo", "git", ["git", "status"]),
    Scenario(
        "checkout-missing", "git", ["git", "checkout", "feature/login"], {"a.txt": "a"}, GIT_COMMIT
    ),
    Scenario(
        "nothing-to-commit", "git", ["git", "commit", "-m", "wip"], {"a.txt": "a"}, GIT_COMMIT
    ),
    Scenario("push-no-remote", "git", ["git", "push"], {"a.txt": "a"}, GIT_COMMIT),
    Scenario("merge-missing", "git", ["git", "merge", "release-2"], {"a.txt": "a"}, GIT_COMMIT),
    Scenario("clone-missing", "git", ["git", "clone", "../no-such-repo"]),
    Scenario("pull-no-tracking", "git", ["git", "pull"], {"a.txt": "a"}, GIT_COMMIT),
    Scenario("rebase-continue", "git", ["git", "rebase", "--continue"], {"a.txt": "a"}, GIT_COMMIT),
    Scenario("stash-pop-empty", "git", ["git", "stash", "pop"], {"a.txt": "a"}, GIT_COMMIT),
    Scenario("add-missing", "git", ["git", "add", "report.md"], {}, GIT_INIT),
    Scenario("log-no-commits", "git", ["git", "log"], {}, GIT_INIT),
    Scenario("unknown-revision", "git", ["git", "show", "v9.9.9"], {"a.txt": "a"}, GIT_COMMIT),
    Scenario(
        "branch-exists",
        "git",
        ["git", "checkout", "-b", "main2"],
        {"a.txt": "a"},
        [*GIT_COMMIT, ["git", "branch", "main2"]],
    ),
    Scenario("git-unknown-command", "git", ["git", "comit", "-m", "x"], {}, GIT_INIT),
]

PACKAGE_JSON = (
    '{"name": "shop-frontend", "version": "1.0.0", "scripts": {"build": "node build.js"}}'
)
NODE = [
    Scenario("npm-no-package-json", "npm", ["npm", "run", "build"]),
    Scenario("npm-missing-script", "npm", ["npm", "run", "deploy"], {"package.json": PACKAGE_JSON}),
    Scenario(
        "npm-script-fails",
        "npm",
        ["npm", "run", "build"],
        {"package.json": PACKAGE_JSON, "build.js": "process.exit(2)\n"},
    ),
    Scenario(
        "npm-install-offline",
        "npm",
        ["npm", "install", "--offline", "--no-audit", "--no-fund", "left-padz"],
        {"package.json": PACKAGE_JSON},
    ),
    Scenario("node-reference-error", "node", ["node", "-e", "renderPage()"]),
    Scenario("node-type-error", "node", ["node", "-e", "const cart = null; cart.items.length"]),
    Scenario("node-module-missing", "node", ["node", "-e", "require('expresss')"]),
    Scenario("node-syntax-error", "node", ["node", "app.js"], {"app.js": "function x( {\n"}),
    Scenario("node-json-parse", "node", ["node", "-e", "JSON.parse('{bad')"]),
]

MAKE_C = [
    Scenario("make-no-makefile", "make", ["make"]),
    Scenario("make-no-rule", "make", ["make", "deploy"], {"Makefile": "all:\n\ttrue\n"}),
    Scenario("make-missing-separator", "make", ["make"], {"Makefile": "all:\n    echo hi\n"}),
    Scenario("make-recipe-fails", "make", ["make"], {"Makefile": "all:\n\tfalse\n"}),
    Scenario(
        "make-missing-prerequisite",
        "make",
        ["make"],
        {"Makefile": "app: main.o\n\tcc -o app main.o\n"},
    ),
    Scenario(
        "gcc-undeclared",
        "gcc",
        ["gcc", "-c", "main.c"],
        {"main.c": "int main(void) { return countr; }\n"},
    ),
    Scenario(
        "gcc-missing-header",
        "gcc",
        ["gcc", "-c", "main.c"],
        {"main.c": '#include "config.h"\nint main(void) { return 0; }\n'},
    ),
    Scenario(
        "gcc-expected-semicolon",
        "gcc",
        ["gcc", "-c", "main.c"],
        {"main.c": "int main(void) { int x = 1\n return x; }\n"},
    ),
    Scenario(
        "gcc-undefined-reference",
        "gcc",
        ["gcc", "main.c", "-o", "app"],
        {"main.c": "int parse_args(int);\nint main(void) { return parse_args(1); }\n"},
    ),
    Scenario(
        "gcc-implicit-declaration",
        "gcc",
        ["gcc", "-c", "main.c"],
        {"main.c": "int main(void) { return open_db(); }\n"},
    ),
    Scenario("gcc-no-input", "gcc", ["gcc", "missing.c"]),
    Scenario(
        "rustc-unresolved",
        "rustc",
        ["rustc", "main.rs"],
        {"main.rs": 'fn main() { println!("{}", totl); }\n'},
    ),
    Scenario(
        "rustc-mismatched-types",
        "rustc",
        ["rustc", "main.rs"],
        {"main.rs": 'fn main() { let x: i32 = "a"; }\n'},
    ),
    Scenario("cargo-no-manifest", "cargo", ["cargo", "build", "--offline"]),
    Scenario(
        "javac-symbol",
        "javac",
        ["javac", "Main.java"],
        {"Main.java": "class Main { public static void main(String[] a) { prnt(a); } }\n"},
    ),
    Scenario("java-no-class", "java", ["java", "Missing"]),
]

PIP = [
    Scenario(
        "pip-no-distribution",
        "pip",
        ["python3", "-m", "pip", "install", "--no-index", "requestz-helpers"],
    ),
    Scenario(
        "pip-requirements-missing",
        "pip",
        ["python3", "-m", "pip", "install", "--no-index", "-r", "requirements-dev.txt"],
    ),
    Scenario(
        "pip-invalid-requirement",
        "pip",
        ["python3", "-m", "pip", "install", "--no-index", "flask==="],
    ),
    Scenario("pip-show-missing", "pip", ["python3", "-m", "pip", "show", "requestz-helpers"]),
    Scenario("pip-no-such-option", "pip", ["python3", "-m", "pip", "install", "--frobnicate"]),
    Scenario("pip-unknown-command", "pip", ["python3", "-m", "pip", "instal", "numpy"]),
]

LLM = [
    Scenario("llm-unknown-model", "llm", ["llm", "-m", "gpt-9-turbo", "say hi"]),
    Scenario("llm-missing-key", "llm", ["llm", "keys", "get", "openai"]),
    Scenario("llm-no-such-option", "llm", ["llm", "--temperature-max", "2", "hi"]),
    Scenario("llm-no-such-command", "llm", ["llm", "templatez", "list"]),
    Scenario("llm-unknown-template", "llm", ["llm", "-t", "summarise-pr", "hi"]),
    Scenario("llm-bad-option-value", "llm", ["llm", "-m", "markov", "-o", "length", "many", "hi"]),
]

SCENARIOS = [*PYTHON, *SHELL, *GIT, *NODE, *MAKE_C, *PIP, *LLM]
_MAKE_VARIABLES = frozenset({"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"})


def _program(scenario: Scenario) -> str | None:
    """The executable the scenario runs, found next to this Python first (its venv)."""
    name = scenario.argv[0]
    if name == "python3":
        return sys.executable
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _clean(text: str, project: Path, home: str) -> str:
    text = text.replace(str(project.resolve()), "~/project").replace(str(project), "~/project")
    text = text.replace(str(project.parent), "~")
    # The interpreter the scenarios run with names this machine's folders.
    text = text.replace(sys.executable, "python3").replace(sys.prefix, "~/.venv")
    if home and home != "/":
        text = text.replace(home, "~")
    return text[-MAX_CHARS:]


def record(scenario: Scenario) -> dict[str, object] | None:
    """Run ``scenario`` in a fresh project; its outputs, or ``None`` when its tool is missing."""
    program = _program(scenario)
    if program is None:
        return None
    # A recorder run under make (`make test`) would have the scenario's make print
    # `make[1]:`; the recorded outputs are those of a make started from a shell.
    inherited = {k: v for k, v in os.environ.items() if k not in _MAKE_VARIABLES}
    env = {
        **inherited,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "NO_COLOR": "1",
        "npm_config_update_notifier": "false",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "project"
        project.mkdir()
        real_home = Path.home()
        for tool_home in ("RUSTUP_HOME", "CARGO_HOME"):  # rustup finds its toolchains there
            default = real_home / f".{tool_home.split('_')[0].lower()}"
            env.setdefault(tool_home, str(default))
        env["HOME"] = folder  # no user configuration (git, npm, llm keys) leaks in
        env["LLM_USER_PATH"] = str(Path(folder) / "llm")
        for relative, content in scenario.files.items():
            path = project / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        for step in scenario.setup:
            subprocess.run(step, cwd=project, env=env, capture_output=True, check=True)
        done = subprocess.run(
            [program, *scenario.argv[1:]],
            cwd=project,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        home = os.environ.get("HOME", "")
        return {
            "name": scenario.name,
            "tool": scenario.tool,
            "command": " ".join(scenario.argv),
            "exit_code": done.returncode,
            "stderr": _clean(done.stderr.decode("utf-8", "replace"), project, home),
            "stdout": _clean(done.stdout.decode("utf-8", "replace"), project, home),
        }


def main(argv: list[str]) -> int:
    """Record every scenario whose tool is installed and write them as JSON."""
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    recorded, skipped = [], []
    for scenario in SCENARIOS:
        result = record(scenario)
        if result is None:
            skipped.append(scenario.tool)
        elif result["exit_code"] == 0:
            print(f"{scenario.name}: exited 0, not an error; left out", file=sys.stderr)
        else:
            recorded.append(result)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n")
    print(f"recorded {len(recorded)} failing commands into {output}")
    if skipped:
        print(f"skipped (not installed): {', '.join(sorted(set(skipped)))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
