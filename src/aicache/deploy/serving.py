"""What ``suggest`` and ``prefetch`` serve: one model, chosen and loaded in one place.

The serving model of a task is, in order: the version pinned in the serving
registry (``aicache models use N``), else its newest version there (a model
pulled from a federation, or a rollback), else the model shipped with the
package. Simulations write to a registry of their own, so an experiment never
changes what is served. Suggestions blend that model with the user's own
habits (see :meth:`aicache.tasks.next_command.NextCommandTask.predict`) and
are shown as the user last typed them when the store keeps command lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aicache.deploy.distribution import check_version
from aicache.errors import AicacheError
from aicache.local.command_lines import keeps_command_lines, last_typed
from aicache.local.importer import directory_hash
from aicache.local.paths import REGISTRY_DIRNAME
from aicache.local.store import Store
from aicache.registry import ModelRegistry, ModelVersion
from aicache.registry.shipped import shipped_model
from aicache.tasks.base import ensure_compatible
from aicache.tasks.next_command import NextCommandContext, NextCommandTask, history_from_store


@dataclass(frozen=True, slots=True)
class ServedModel:
    """The model a task serves and where it came from.

    Attributes
    ----------
    params
        Its arrays, verified (hash, and signature for a pulled model).
    version
        The registry version, or ``None`` for the shipped model.
    origin
        ``pinned``, ``newest``, ``shipped``, or ``chosen`` (a version asked for by number).
    privacy
        Its privacy record.
    """

    params: list[np.ndarray]
    version: int | None
    origin: str
    privacy: dict[str, Any]

    @property
    def label(self) -> str:
        """How a person names it: ``version 3 (pinned)`` or ``the shipped model``."""
        if self.version is None:
            return "the shipped model"
        return f"version {self.version} ({self.origin})"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One suggested next command.

    Attributes
    ----------
    tokens
        What the model predicts: ``program`` or ``program subcommand``.
    typed
        The most recent command line the user typed that normalises to
        ``tokens``, when the store keeps command lines; else ``None``.
    """

    tokens: str
    typed: str | None

    @property
    def shown(self) -> str:
        """What to print: the command as typed when known, else the tokens."""
        return self.typed or self.tokens


@dataclass(frozen=True, slots=True)
class Suggestions:
    """The answer to ``suggest``: what to type next, and from what.

    Attributes
    ----------
    suggestions
        Best first.
    model
        The model that ranked them.
    history
        How many of the user's commands went in.
    lines_kept
        Whether the store keeps command lines as typed (``raw-storage`` was on
        when they were imported); without them suggestions are tokens.
    """

    suggestions: list[Suggestion]
    model: ServedModel
    history: int
    lines_kept: bool


def load_verified(registry: ModelRegistry, version: ModelVersion) -> list[np.ndarray]:
    """A version's arrays for use; a model pulled from a federation is verified first.

    Raises
    ------
    AicacheError
        If a pulled model no longer matches its signature (it is not used).
    """
    key = None
    if registry.signature(version.task, version.version) is not None:
        # Only a signed model needs the federation's key: the node module that reads
        # it loads Flower, which `aicache run` would otherwise pay for on every miss.
        from aicache.deploy.node import NodeHome

        key = NodeHome().signing_key()
    check_version(registry, version, key)
    return registry.load(version)


def serving_model(registry_root: Path, task: str = NextCommandTask.name) -> ServedModel:
    """The model ``task`` serves from the registry at ``registry_root`` (see the module).

    Raises
    ------
    AicacheError
        If there is no model at all (no version and nothing shipped), or the
        chosen one fails its checks.
    """
    with ModelRegistry(registry_root) as reg:
        pinned = reg.pinned(task)
        version = pinned or reg.latest(task)
        if version is not None:
            params = load_verified(reg, version)
            origin = "pinned" if pinned is not None else "newest"
            served = ServedModel(params, version.version, origin, version.privacy)
            ensure_compatible(task, served.params)
            return served
    shipped = shipped_model(task)
    if shipped is None:
        raise AicacheError(
            f"there is no {task} model in {registry_root} and none came with this install",
            hint="Reinstall aicache, or pull one from a federation (`aicache models pull`).",
        )
    ensure_compatible(task, shipped.arrays)
    return ServedModel(shipped.arrays, None, "shipped", shipped.privacy)


def served_model(task: str, home: Path, version: int | None = None) -> ServedModel:
    """The model ``task`` serves on the node of the aicache home ``home``, any task.

    ``version`` names a registry version to use instead (``--model N``);
    else the model is chosen as :func:`serving_model` does: pinned, newest,
    else the one shipped for ``task``.

    Raises
    ------
    AicacheError
        If there is no such version, no model at all, or the model fails its checks.
    """
    root = home / REGISTRY_DIRNAME
    if version is None:
        return serving_model(root, task)
    with ModelRegistry(root) as reg:
        chosen = next((v for v in reg.versions(task) if v.version == version), None)
        if chosen is None:
            raise AicacheError(
                f"there is no version {version} of {task} in {root}",
                hint=f"`aicache models list --task {task}` shows the versions.",
            )
        params = load_verified(reg, chosen)
    ensure_compatible(task, params)
    return ServedModel(params, chosen.version, "chosen", chosen.privacy)


def suggest_next(
    store: Store, registry_root: Path, *, k: int, directory: Path | None = None
) -> Suggestions:
    """The ``k`` commands the user is likely to type next, best first.

    Parameters
    ----------
    store
        The private store: the user's history and their typed command lines.
    registry_root
        The serving registry.
    k
        How many suggestions.
    directory
        The current directory (its hash is a feature), when known.
    """
    task = NextCommandTask()
    model = serving_model(registry_root, task.name)
    history = history_from_store(store.conn)
    context = NextCommandContext(
        history=history,
        dir_hash=None if directory is None else directory_hash(str(directory)),
        k=k,
    )
    predicted = task.predict(model.params, context)
    suggestions = [Suggestion(tokens, last_typed(store, tokens)) for tokens in predicted]
    return Suggestions(
        suggestions=suggestions,
        model=model,
        history=len(history),
        lines_kept=keeps_command_lines(store),
    )
