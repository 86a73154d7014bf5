"""The embedded default data: projects of simulated developers, from stacks anyone can see.

A developer works in one or two *stacks* (the packages a kind of project uses
together) and has personal habits (a few packages they add to every project).
Stacks come from two public places: the hand-written list below (well-known
combinations: a web API with FastAPI, SQLAlchemy and Alembic; a notebook
with pandas and matplotlib) and the dependency metadata of the distributions
installed beside aicache (``Requires-Dist``: what real released projects
depend on). Everything derives from one seed and the installed environment.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from aicache.tasks.library_recs.vocabulary import index, normalise

STACKS: dict[str, tuple[str, ...]] = {
    "web-api": (
        "fastapi",
        "uvicorn",
        "pydantic",
        "sqlalchemy",
        "alembic",
        "httpx",
        "python-dotenv",
        "psycopg2-binary",
        "pytest",
    ),
    "django-site": (
        "django",
        "djangorestframework",
        "psycopg2-binary",
        "celery",
        "redis",
        "gunicorn",
        "pillow",
        "django-cors-headers",
    ),
    "flask-app": (
        "flask",
        "flask-sqlalchemy",
        "flask-cors",
        "gunicorn",
        "jinja2",
        "werkzeug",
        "python-dotenv",
        "requests",
    ),
    "data-science": (
        "numpy",
        "pandas",
        "matplotlib",
        "scikit-learn",
        "scipy",
        "seaborn",
        "jupyter",
        "ipykernel",
        "tqdm",
    ),
    "deep-learning": (
        "torch",
        "torchvision",
        "numpy",
        "tqdm",
        "transformers",
        "datasets",
        "tensorboard",
        "accelerate",
        "safetensors",
    ),
    "llm-app": (
        "openai",
        "tiktoken",
        "langchain",
        "pydantic",
        "python-dotenv",
        "httpx",
        "tenacity",
        "anthropic",
    ),
    "cli-tool": (
        "click",
        "rich",
        "typer",
        "pyyaml",
        "platformdirs",
        "packaging",
        "tomli",
        "colorama",
    ),
    "aws-ops": ("boto3", "botocore", "s3transfer", "awscli", "pyyaml", "requests", "jmespath"),
    "scraping": ("requests", "beautifulsoup4", "lxml", "selenium", "urllib3", "pandas", "tqdm"),
    "async-service": ("aiohttp", "asyncpg", "redis", "orjson", "uvloop", "pydantic", "structlog"),
    "testing": (
        "pytest",
        "pytest-cov",
        "coverage",
        "pytest-mock",
        "mypy",
        "ruff",
        "tox",
        "pre-commit",
    ),
    "geo": ("numpy", "pandas", "shapely", "pyproj", "geopandas", "matplotlib", "rasterio"),
    "crypto-net": ("cryptography", "pyopenssl", "certifi", "idna", "paramiko", "requests"),
    "docs": ("sphinx", "sphinx-rtd-theme", "docutils", "myst-parser", "jinja2", "pygments"),
    "google-cloud": (
        "google-cloud-storage",
        "google-auth",
        "google-api-core",
        "protobuf",
        "grpcio",
        "google-cloud-bigquery",
    ),
    "azure": (
        "azure-core",
        "azure-identity",
        "azure-storage-blob",
        "msal",
        "requests",
        "cryptography",
    ),
}
"""Well-known combinations of public packages, each listed core first."""


@functools.cache
def installed_stacks() -> tuple[tuple[str, ...], ...]:
    """The dependencies of each distribution installed here, where two or more are known.

    Read from ``Requires-Dist`` without extras-only and environment-marked
    requirements that exclude this interpreter; sorted, so a given environment
    always yields the same stacks.
    """
    from importlib.metadata import distributions

    known = index()
    found: dict[str, tuple[str, ...]] = {}
    for dist in distributions():
        name = normalise(dist.name or "")
        requires = []
        for line in dist.requires or []:
            if "extra ==" in line:
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
            if match and normalise(match.group(1)) in known:
                requires.append(normalise(match.group(1)))
        requires = list(dict.fromkeys(r for r in requires if r != name))
        if name and len(requires) >= 2:
            found[name] = tuple(requires)
    return tuple(found[name] for name in sorted(found))


def all_stacks() -> list[tuple[str, ...]]:
    """Every stack, the hand-written ones first, keeping only vocabulary names."""
    known = index()
    stacks = [tuple(p for p in stack if p in known) for stack in STACKS.values()]
    stacks += list(installed_stacks())
    return [s for s in stacks if len(s) >= 2]


@dataclass(frozen=True, slots=True)
class Developer:
    """One simulated developer: their stacks, their habits and their projects (names)."""

    user: str
    stacks: tuple[int, ...]
    habits: tuple[str, ...]
    projects: list[list[str]]


def developer(seed: int, index_: int, projects: int) -> Developer:
    """Developer ``index_`` of the population seeded by ``seed``, with ``projects`` projects."""
    rng = np.random.default_rng([seed, index_])
    stacks = all_stacks()
    handwritten = len(STACKS)
    # Most developers work in the well-known stacks; some in a stack of a real release.
    chosen = [
        int(rng.integers(handwritten)) if rng.random() < 0.7 else int(rng.integers(len(stacks)))
        for _ in range(int(rng.integers(1, 3)))
    ]
    popular = list(index())[:300]
    habits = tuple(popular[int(i)] for i in rng.choice(len(popular), size=3, replace=False))
    made: list[list[str]] = []
    for _ in range(projects):
        stack = stacks[chosen[int(rng.integers(len(chosen)))]]
        keep = rng.random(len(stack)) < np.where(np.arange(len(stack)) < 2, 0.9, 0.55)
        names = [p for p, k in zip(stack, keep, strict=True) if k]
        names += [h for h in habits if rng.random() < 0.6]
        noise = rng.zipf(1.6, size=int(rng.integers(0, 3)))
        names += [popular[min(int(z) - 1, len(popular) - 1)] for z in noise]
        made.append(list(dict.fromkeys(names)))
    return Developer(f"dev-{index_:04d}", tuple(chosen), habits, made)
