"""The newest model version a node has verified, per federation and task.

A delivery that verifies is genuine, not necessarily current: the server
signed every old version too, so a replayed or stale delivery carries a
valid signature. ``models pull`` therefore never installs a version older
than the newest it has verified for that federation and task. The mark is
kept on the node (``federation/verified.json``, owner-only) and only rises;
the versions already pulled into the registry count too, so a node that
pulled before the file existed, or lost it, keeps its floor. Going back is
the developer's explicit choice: ``aicache models rollback --to N``.
"""

from __future__ import annotations

import json
from pathlib import Path

from aicache.deploy.bundle import write_private_text
from aicache.errors import AicacheError
from aicache.registry import ModelRegistry

VERIFIED_FILE = "verified.json"


class NewestVerified:
    """The persisted high-water mark of verified server versions.

    Parameters
    ----------
    path
        The JSON file: ``{federation: {task: version}}``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, int]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return {
                str(federation): {str(task): int(version) for task, version in tasks.items()}
                for federation, tasks in data.items()
            }
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise AicacheError(
                f"the record of verified model versions {self.path} is damaged: {exc}",
                hint=f"Nothing was installed. Delete {self.path}: the versions already in the "
                "registry then set the newest verified version again.",
            ) from exc

    def get(self, federation: str, task: str, registry: ModelRegistry) -> int:
        """The newest version of ``task`` verified from ``federation`` (0 if none)."""
        recorded = self._read().get(federation, {}).get(task, 0)
        return max(recorded, max(pulled_versions(registry, federation, task).values(), default=0))

    def raise_to(self, federation: str, task: str, version: int) -> None:
        """Record that ``version`` verified; the mark never goes down."""
        data = self._read()
        tasks = data.setdefault(federation, {})
        if tasks.get(task, 0) >= version:
            return
        tasks[task] = version
        write_private_text(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def pulled_versions(registry: ModelRegistry, federation: str, task: str) -> dict[int, int]:
    """Local version -> the server version its signed manifest names, for ``federation``.

    A local rollback to a pulled version keeps its signature, so it maps to the
    server version it serves again.
    """
    found: dict[int, int] = {}
    for local, manifest in registry.signed_manifests(task).items():
        try:
            document = json.loads(manifest)
            if document.get("federation") == federation:
                found[local] = int(document["version"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # `models verify` reports a damaged signature; it sets no floor
    return found
