"""The embedded default data: a seeded generator of synthetic developer populations.

Each developer has a profile (the languages and tools of their work), personal
habits (their editor, how often they check ``git status``, their own scripts)
and a session structure (how a working session opens and how long it runs).
Their history is a walk through the workflows of their profile: edit, build,
test, fix after a failure, commit, deploy. Everything derives from one seed,
so the same ``--seed`` gives the same population.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from aicache.features.history_items import HistoryItem

# Workflows: ordered steps; a step is a command, or alternatives "a|b" picked per user.
WORKFLOWS: dict[str, dict[str, list[str]]] = {
    "python": {
        "test-fix": ["EDITOR", "pytest", "EDITOR", "pytest", "git diff", "git add", "git commit"],
        "run": ["EDITOR", "python", "python"],
        "deps": ["pip install", "pip freeze", "git add", "git commit"],
        "lint": ["ruff|flake8", "mypy", "EDITOR", "ruff|flake8"],
    },
    "javascript": {
        "dev": ["EDITOR", "npm run", "npm test", "git add", "git commit"],
        "deps": ["npm install", "npm audit", "git add", "git commit", "git push"],
        "build": ["npm run", "npx", "ls"],
    },
    "rust": {
        "build": ["EDITOR", "cargo build", "cargo build", "cargo test", "git commit"],
        "check": ["cargo check", "cargo clippy", "EDITOR", "cargo fmt"],
        "run": ["cargo run", "EDITOR", "cargo run"],
    },
    "go": {
        "build": ["EDITOR", "go build", "go test", "git add", "git commit"],
        "mod": ["go mod", "go build", "go test"],
    },
    "ops": {
        "deploy": ["kubectl get", "kubectl apply", "kubectl get", "kubectl logs"],
        "docker": ["docker build", "docker run", "docker ps", "docker logs"],
        "infra": ["terraform plan", "terraform apply", "git add", "git commit", "git push"],
    },
    "data": {
        "notebook": ["jupyter", "python", "ls", "head"],
        "pipeline": ["python", "ls", "du", "python"],
        "cluster": ["ssh", "squeue|htop", "scp"],
    },
    "ai": {
        "ask": ["claude|gemini|llm", "EDITOR", "claude|gemini|llm"],
        "review": ["git diff", "claude|gemini|llm", "EDITOR", "git commit"],
    },
}
COMMON = {
    "vcs": ["git status", "git pull", "git log", "git status", "git push"],
    "navigate": ["cd", "ls", "cd", "ls"],
    "inspect": ["cat|less", "grep", "EDITOR"],
}
PROFILES: dict[str, tuple[str, ...]] = {
    "python-backend": ("python", "ops", "ai"),
    "web-frontend": ("javascript", "ai"),
    "systems": ("rust", "go"),
    "devops": ("ops", "go", "python"),
    "data-scientist": ("data", "python", "ai"),
    "polyglot": ("python", "javascript", "rust", "ai"),
}
EDITORS = ("vim", "nvim", "code", "emacs", "nano")
STARTERS = ("cd", "git pull", "ls", "git status", "tmux")


@dataclass(frozen=True, slots=True)
class Developer:
    """One synthetic developer: who they are and what they typed."""

    user: str
    profile: str
    history: list[HistoryItem]


def _choice(rng: np.random.Generator, options: list[str] | tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _resolve(step: str, editor: str, picks: dict[str, str], rng: np.random.Generator) -> str:
    if step == "EDITOR":
        return editor
    if "|" in step:
        # Each user has a preferred alternative, used four times in five.
        if step not in picks:
            picks[step] = _choice(rng, step.split("|"))
        return picks[step] if rng.random() < 0.8 else _choice(rng, step.split("|"))
    return step


def developer(seed: int, index: int, commands: int) -> Developer:
    """Generate developer ``index`` of the population seeded by ``seed``.

    Parameters
    ----------
    seed
        The population's seed.
    index
        Which developer (0-based); each has an independent stream of randomness.
    commands
        About how many commands to generate.
    """
    rng = np.random.default_rng([seed, index])
    profile = _choice(rng, tuple(PROFILES))
    areas = PROFILES[profile]
    area_weights = rng.dirichlet(np.ones(len(areas)) * 2.0)
    editor = _choice(rng, EDITORS)
    status_habit = float(rng.uniform(0.05, 0.35))  # how often git status slips in
    own_scripts = [
        "./" + hashlib.sha256(f"{seed}-{index}-{k}".encode()).hexdigest()[:6] + ".sh"
        for k in range(int(rng.integers(1, 4)))
    ]
    fail_rate = float(rng.uniform(0.03, 0.15))
    session_length = float(rng.uniform(15, 60))
    projects = [
        hashlib.sha256(f"{seed}-{index}-dir{k}".encode()).hexdigest()[:16]
        for k in range(int(rng.integers(2, 6)))
    ]
    picks: dict[str, str] = {}
    history: list[HistoryItem] = []
    session = 0
    while len(history) < commands:
        directory = _choice(rng, projects)
        remaining = max(3, int(rng.poisson(session_length)))
        history.append(HistoryItem(_choice(rng, STARTERS), session, directory, False))
        while remaining > 0:
            if rng.random() < 0.25:
                workflow = COMMON[_choice(rng, tuple(COMMON))]
            else:
                area = areas[int(rng.choice(len(areas), p=area_weights))]
                workflow = WORKFLOWS[area][_choice(rng, tuple(WORKFLOWS[area]))]
            for step in workflow:
                command = _resolve(step, editor, picks, rng)
                if command == "cd":
                    directory = _choice(rng, projects)
                failed = bool(rng.random() < fail_rate)
                history.append(HistoryItem(command, session, directory, failed))
                remaining -= 1
                if failed and rng.random() < 0.7:
                    history.append(HistoryItem(editor, session, directory, False))
                    history.append(HistoryItem(command, session, directory, False))
                    remaining -= 2
                if rng.random() < status_habit:
                    history.append(HistoryItem("git status", session, directory, False))
                    remaining -= 1
                if rng.random() < 0.04:
                    history.append(
                        HistoryItem(_choice(rng, own_scripts), session, directory, False)
                    )
                    remaining -= 1
        session += 1
    return Developer(user=f"dev-{index:04d}", profile=profile, history=history[:commands])


def population(seed: int, size: int, commands: int = 600) -> list[Developer]:
    """``size`` developers of the population seeded by ``seed``.

    Raises
    ------
    ValueError
        If ``size`` or ``commands`` is not positive.
    """
    if size < 1:
        raise ValueError(f"invalid population size {size}: it must be at least 1")
    if commands < 10:
        raise ValueError(f"invalid history length {commands}: it must be at least 10")
    return [developer(seed, index, commands) for index in range(size)]
