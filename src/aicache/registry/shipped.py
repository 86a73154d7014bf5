"""The global models shipped inside the package, so a fresh install can suggest.

Each is a plain ``.npz`` archive (no pickle) with a JSON record beside it:
the SHA-256 of the archive, how it was trained (the command that rebuilds it
from the project's own synthetic population) and its privacy record (the DP
run's ε and δ from the accountant). The archive is checked against that hash
before use. They are rebuilt by ``scripts/train_shipped_model.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from aicache.registry.artifacts import ArtifactError, decode_arrays, sha256_hex

SHIPPED_PACKAGE = "aicache.registry.shipped_models"


@dataclass(frozen=True, slots=True)
class ShippedModel:
    """A global model that came with the package.

    Attributes
    ----------
    task
        The task it serves.
    arrays
        Its parameters, checked against :attr:`sha256`.
    sha256
        The hash of its archive, as its record states it.
    privacy
        The privacy record of the run that trained it (``dp``, ``epsilon``,
        ``delta``, ``accountant``, ...).
    record
        The whole JSON record (training command, population, metrics).
    """

    task: str
    arrays: list[np.ndarray]
    sha256: str
    privacy: dict[str, Any]
    record: dict[str, Any]


def shipped_model(task: str) -> ShippedModel | None:
    """The model of ``task`` shipped with the package, or ``None`` when there is none.

    Raises
    ------
    ArtifactError
        If the archive does not match the hash of its record (a damaged install).
    """
    folder = resources.files(SHIPPED_PACKAGE)
    archive, meta = folder / f"{task}.npz", folder / f"{task}.json"
    if not archive.is_file() or not meta.is_file():
        return None
    record = json.loads(meta.read_text(encoding="utf-8"))
    data = archive.read_bytes()
    actual = sha256_hex(data)
    if actual != record["sha256"]:
        raise ArtifactError(
            f"the {task} model shipped with aicache was altered: its SHA-256 is {actual[:16]}…, "
            f"its record says {str(record['sha256'])[:16]}…",
            hint="Reinstall aicache.",
        )
    arrays = decode_arrays(data, origin=f"the shipped {task} model")
    return ShippedModel(
        task=task,
        arrays=arrays,
        sha256=actual,
        privacy=dict(record.get("privacy", {})),
        record=record,
    )
