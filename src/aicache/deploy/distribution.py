"""Signed model distribution: the server signs each version, clients verify before use.

A version's *manifest* names everything a client relies on: the task, the
server's version number, the artifact's SHA-256 and size, the round and run,
and the privacy record (ε, δ, mechanism). The server signs the manifest's
canonical JSON with the federation's Ed25519 key; as the manifest holds the
artifact's hash, the signature covers the model's bytes too.

At the end of a run the server sends the newest signed version to every
connected node, whose ClientApp leaves it in the node's *inbox* untouched.
``aicache models pull`` verifies an inbox entry against the key from the
bundle and only then installs it in the local registry, with its signature;
every later load of a pulled version verifies it again.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aicache.deploy.bundle import write_private_text
from aicache.deploy.freshness import NewestVerified, pulled_versions
from aicache.errors import AicacheError
from aicache.registry import ModelRegistry, ModelVersion
from aicache.registry.artifacts import decode_arrays, encode_arrays, sha256_hex
from aicache.security import signing

MANIFEST_FORMAT = "aicache-model/1"
PULLED_NOTE = "pulled from federation"


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes a manifest is signed as (sorted keys, no spaces)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def manifest_of(version: ModelVersion, federation: str) -> dict[str, Any]:
    """What the server vouches for about ``version``."""
    return {
        "format": MANIFEST_FORMAT,
        "federation": federation,
        "task": version.task,
        "version": version.version,
        "round": version.round,
        "run_id": version.run_id,
        "strategy": version.strategy,
        "num_clients": version.num_clients,
        "sha256": version.sha256,
        "size": version.size,
        "privacy": version.privacy,
        "metrics": version.metrics,
        "created_at": version.created_at,
    }


def sign_version(
    registry: ModelRegistry, version: ModelVersion, key: Ed25519PrivateKey, federation: str
) -> bytes:
    """Sign ``version``'s manifest and keep the signature with it in ``registry``."""
    manifest = canonical(manifest_of(version, federation))
    signature = signing.sign(key, manifest)
    registry.add_signature(version.task, version.version, manifest, signature)
    return manifest


@dataclass(frozen=True, slots=True)
class Delivery:
    """A signed model as it travels to a node and waits in its inbox."""

    manifest: bytes
    signature: bytes
    artifact: bytes

    def to_json(self) -> str:
        """The inbox file's content."""
        return json.dumps(
            {
                "manifest": self.manifest.decode(),
                "signature": base64.b64encode(self.signature).decode(),
                "artifact": base64.b64encode(self.artifact).decode(),
            }
        )

    @classmethod
    def from_json(cls, text: str, *, origin: str) -> Delivery:
        """Read an inbox file.

        Raises
        ------
        AicacheError
            If it is not a delivery.
        """
        try:
            data = json.loads(text)
            return cls(
                manifest=str(data["manifest"]).encode(),
                signature=base64.b64decode(data["signature"], validate=True),
                artifact=base64.b64decode(data["artifact"], validate=True),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise AicacheError(
                f"{origin} is not a model delivery: {exc}",
                hint="Delete it; the next run's delivery replaces it.",
            ) from exc

    def manifest_dict(self) -> dict[str, Any]:
        """The manifest, parsed (only trust it after :meth:`verify`)."""
        try:
            value = json.loads(self.manifest)
        except ValueError as exc:  # not JSON, or not UTF-8
            raise AicacheError(f"a model manifest is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise AicacheError("a model manifest is not a JSON object")
        return value

    def verify(
        self, key: Ed25519PublicKey, *, what: str
    ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """The manifest and arrays, after checking the signature and the artifact's hash.

        Raises
        ------
        SignatureError
            If the manifest is unsigned or its signature does not match.
        AicacheError
            If the artifact is not the one the manifest names.
        """
        signing.verify(key, self.manifest, self.signature, what=what)
        manifest = self.manifest_dict()
        if manifest.get("format") != MANIFEST_FORMAT:
            raise AicacheError(f"{what} has an unknown manifest format {manifest.get('format')!r}")
        if sha256_hex(self.artifact) != manifest.get("sha256"):
            raise signing.SignatureError(
                f"{what}: the model's bytes do not match the signed hash: it was altered",
                hint="It was not installed.",
            )
        return manifest, decode_arrays(self.artifact, origin=what)


def delivery_for(registry: ModelRegistry, version: ModelVersion) -> Delivery:
    """The signed delivery of ``version`` (it must have been signed).

    Raises
    ------
    AicacheError
        If it has no signature.
    """
    signed = registry.signature(version.task, version.version)
    if signed is None:
        raise AicacheError(f"version {version.version} of {version.task} is not signed")
    arrays = registry.load(version)
    return Delivery(manifest=signed[0], signature=signed[1], artifact=encode_arrays(arrays))


class Inbox:
    """Deliveries waiting on a node to be verified and installed (owner-only files)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, delivery: Delivery) -> Path:
        """Keep ``delivery`` as ``<task>/v<version>.json`` (written atomically).

        Raises
        ------
        AicacheError
            If the manifest names no known task or no version number: nothing
            it names becomes a path before it is checked.
        """
        from aicache.tasks.base import task_names

        manifest = delivery.manifest_dict()
        task, version = manifest.get("task"), manifest.get("version")
        if task not in task_names() or not isinstance(version, int) or version < 1:
            raise AicacheError(f"a delivery names an unknown task or version: {task!r} {version!r}")
        folder = self.root / str(task)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"v{version}.json"
        write_private_text(path, delivery.to_json())
        return path

    def by_task(self) -> dict[str, list[Path]]:
        """Each task's deliveries, newest first (by the number in the file name)."""
        found: dict[str, list[Path]] = {}
        if not self.root.is_dir():
            return found
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = [f for f in folder.glob("v*.json") if f.stem[1:].isdigit()]
            if files:
                found[folder.name] = sorted(files, key=lambda f: -int(f.stem[1:]))
        return found


@dataclass(frozen=True, slots=True)
class Pulled:
    """What ``models pull`` did for one delivery.

    ``status`` is ``installed``; ``current`` (that version is already the
    latest); ``kept`` (it was pulled before, and a later local version, such
    as a rollback, stays the latest); ``refused`` (it failed verification);
    or ``stale`` (genuine, but older than the newest version this node has
    verified, so it was not installed).
    """

    task: str
    server_version: int
    local_version: int | None
    status: str
    problem: str = ""


def pull(
    inbox: Inbox, registry: ModelRegistry, key: Ed25519PublicKey, newest: NewestVerified
) -> list[Pulled]:
    """Install, for each task, the newest delivery that verifies, if it is new.

    Deliveries are tried newest first; each that fails verification is
    refused (reported, and left in place for inspection) and the next older
    one is tried, so a forged file cannot block later genuine models. A
    verified delivery older than the newest version this node has verified
    for its federation and task (``newest``) is never installed: only
    ``models rollback`` goes back. The task's current model stays the latest
    until a delivery is installed.
    """
    results: list[Pulled] = []
    for task, paths in inbox.by_task().items():
        for path in paths:
            outcome = _pull_one(task, path, registry, key, newest)
            results.append(outcome)
            if outcome.status != "refused":
                break
    return results


def _pull_one(
    task: str, path: Path, registry: ModelRegistry, key: Ed25519PublicKey, newest: NewestVerified
) -> Pulled:
    what = f"the delivered model {path.name} of {task}"
    try:
        delivery = Delivery.from_json(path.read_text(), origin=str(path))
        manifest, arrays = delivery.verify(key, what=what)
        if manifest.get("task") != task:
            raise signing.SignatureError(f"{what} is signed for another task")
        federation, server_version = str(manifest["federation"]), int(manifest["version"])
    except (AicacheError, KeyError, TypeError, ValueError) as exc:
        problem = exc.message if isinstance(exc, AicacheError) else f"{what}: bad manifest {exc}"
        return Pulled(task, int(path.stem[1:]), None, "refused", problem)
    floor = newest.get(federation, task, registry)
    if server_version < floor:
        return Pulled(
            task,
            server_version,
            None,
            "stale",
            f"version {server_version} was not installed: it is older than version {floor}, "
            f"the newest this node has verified from {federation} (a stale or replayed delivery)",
        )
    holding = sorted(
        local
        for local, version in pulled_versions(registry, federation, task).items()
        if version == server_version
    )
    latest = registry.latest(task)
    if holding and latest is not None:
        newest.raise_to(federation, task, server_version)
        if latest.version in holding:
            return Pulled(task, server_version, latest.version, "current")
        return Pulled(
            task,
            server_version,
            holding[0],
            "kept",
            f"version {server_version} was installed before (local version {holding[0]}); "
            f"local version {latest.version} stays in use",
        )
    installed = registry.register(
        task,
        arrays,
        run_id=str(manifest["run_id"]),
        round=int(manifest["round"]),
        parent=None,
        strategy=str(manifest["strategy"]),
        strategy_config={},
        num_clients=int(manifest["num_clients"]),
        metrics={k: float(v) for k, v in dict(manifest["metrics"]).items()},
        privacy=dict(manifest["privacy"]),
        note=f"{PULLED_NOTE} {federation} version {server_version}",
    )
    registry.add_signature(task, installed.version, delivery.manifest, delivery.signature)
    newest.raise_to(federation, task, server_version)
    return Pulled(task, server_version, installed.version, "installed")


def check_version(
    registry: ModelRegistry, version: ModelVersion, key: Ed25519PublicKey | None
) -> None:
    """Verify a pulled version against its signature (local versions pass unchanged).

    Raises
    ------
    SignatureError
        If a pulled version lost its signature, or it no longer matches.
    """
    signed = registry.signature(version.task, version.version)
    pulled = version.note.startswith(PULLED_NOTE)
    if signed is None:
        if pulled:
            raise signing.SignatureError(
                f"version {version.version} of {version.task} came from a federation but has "
                "no signature",
                hint="Pull it again with `aicache models pull`.",
            )
        return
    what = f"version {version.version} of {version.task}"
    if key is None:
        raise AicacheError(
            f"{what} is signed, but no federation key is installed to check it",
            hint="Join the federation again (`aicache join BUNDLE`).",
        )
    signing.verify(key, signed[0], signed[1], what=what)
    manifest = json.loads(signed[0])
    if manifest.get("sha256") != version.sha256 or manifest.get("task") != version.task:
        raise signing.SignatureError(
            f"{what} is not the model its signature names: its record was altered",
            hint="It was not used. Pull it again with `aicache models pull`.",
        )
    registry.load(version)  # the artifact's bytes against the (signed) hash
