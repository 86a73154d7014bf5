"""The context a cached answer depends on: the project it was asked in.

Everything here is cheap (a few ``stat`` calls) because it runs on every
cache lookup.
"""

from __future__ import annotations

import os
from pathlib import Path

SCOPES = ("project", "dir", "global")

# Marker files that reveal a project's main language, checked in order.
_LANGUAGE_MARKERS = (
    ("Cargo.toml", "rust"),
    ("go.mod", "go"),
    ("pyproject.toml", "python"),
    ("setup.py", "python"),
    ("requirements.txt", "python"),
    ("tsconfig.json", "typescript"),
    ("package.json", "javascript"),
    ("pom.xml", "java"),
    ("build.gradle", "java"),
    ("build.gradle.kts", "kotlin"),
    ("Gemfile", "ruby"),
    ("composer.json", "php"),
    ("mix.exs", "elixir"),
    ("CMakeLists.txt", "cpp"),
    ("Makefile", "make"),
)

# Environment variables that select a model or an account and so change answers.
KEY_ENVIRONMENT = (
    "ANTHROPIC_MODEL",
    "CLAUDE_MODEL",
    "GEMINI_MODEL",
    "OPENAI_MODEL",
    "LLM_MODEL",
    "QWEN_MODEL",
    "CLOUDSDK_CORE_PROJECT",
    "AICACHE_KEY_EXTRA",
)


def project_root(cwd: Path) -> Path:
    """The nearest ancestor of ``cwd`` that holds a ``.git`` entry, else ``cwd``."""
    for candidate in (cwd, *cwd.parents):
        if (candidate / ".git").exists():
            return candidate
    return cwd


def project_language(root: Path) -> str | None:
    """The project's main language guessed from marker files at its root, if any."""
    try:
        names = {entry.name for entry in os.scandir(root)}
    except OSError:
        return None
    for marker, language in _LANGUAGE_MARKERS:
        if marker in names:
            return language
    return None


def key_context(scope: str, cwd: Path, environ: dict[str, str]) -> dict[str, str]:
    """The context that goes into a cache key for ``scope``.

    ``project`` keys answers to the repository (so an agent that reads the
    code does not answer for another project), ``dir`` to the exact working
    directory, ``global`` to nothing but the command. Model-selecting
    environment variables count in every scope.

    Raises
    ------
    ValueError
        If ``scope`` is not one of :data:`SCOPES`.
    """
    if scope not in SCOPES:
        raise ValueError(f"invalid scope {scope!r}: choose one of {', '.join(SCOPES)}")
    context = {name: environ[name] for name in KEY_ENVIRONMENT if name in environ}
    if scope == "project":
        context["project"] = str(project_root(cwd))
    elif scope == "dir":
        context["dir"] = str(cwd)
    return context
