"""Submitting a federated run to the SuperLink and following it through the registry.

The run is registered in the federation's registry first (its plan, the
model it starts from); Flower gets aicache's Flower App, signed with the
federation's key, with run-config values naming the registry, the node list
and that run. Progress is read back from the registry, where the ServerApp
registers each round's model; this process (the operator's) signs each one:
the signing key never enters a process Flower starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicache import __version__
from aicache.deploy.client_app import SECURE_KEY
from aicache.deploy.distribution import sign_version
from aicache.deploy.server import CONNECTION, ServerDirectory
from aicache.deploy.server_app import (
    FEDERATION_KEY,
    HE_CONTEXT_KEY,
    NODES_KEY,
    REGISTRY_KEY,
    RUN_KEY,
)
from aicache.errors import AicacheError
from aicache.federation.plan import TrainingPlan
from aicache.federation.session import Resume, RunSession
from aicache.registry import ModelRegistry, ModelVersion
from aicache.security import signing
from aicache.security.app_signing import APP_SIGNATURE_KEY, sign_app

# Two shims, so a node's ClientApp process never imports the server side.
SERVER_MODULE, CLIENT_MODULE = "aicache_serverapp", "aicache_clientapp"
_SHIMS = {
    SERVER_MODULE: '''"""aicache's ServerApp, from the installed aicache package."""

from aicache.deploy.server_app import server_app as app

__all__ = ["app"]
''',
    CLIENT_MODULE: '''"""aicache's ClientApp, from the installed aicache package."""

from aicache.deploy.client_app import client_app as app

__all__ = ["app"]
''',
}


def write_app(folder: Path) -> Path:
    """Write aicache's Flower App (a pyproject and two shim modules) into ``folder``."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    pyproject = {
        "build-system": {"requires": ["setuptools"], "build-backend": "setuptools.build_meta"},
        "project": {
            "name": "aicache-federation",
            "version": __version__,
            "description": "aicache's federated tasks (needs aicache installed on every node)",
            "dependencies": [],
        },
        "tool": {
            "flwr": {
                "app": {
                    "publisher": "aicache",
                    "components": {
                        "serverapp": f"{SERVER_MODULE}:app",
                        "clientapp": f"{CLIENT_MODULE}:app",
                    },
                    "config": {
                        REGISTRY_KEY: "",
                        NODES_KEY: "",
                        FEDERATION_KEY: "",
                        RUN_KEY: "",
                        SECURE_KEY: "off",
                        HE_CONTEXT_KEY: "",
                        APP_SIGNATURE_KEY: "",
                    },
                }
            }
        },
    }
    (folder / "pyproject.toml").write_text(tomli_w.dumps(pyproject))
    for module, text in _SHIMS.items():
        (folder / f"{module}.py").write_text(text)
    return folder


@dataclass(frozen=True, slots=True)
class Submitted:
    """A run the SuperLink accepted."""

    run_id: str
    flower_run_id: int
    plan: TrainingPlan
    resumed_after: int


def submit(server: ServerDirectory, plan: TrainingPlan, *, resume: bool = False) -> Submitted:
    """Register the run and hand it to the SuperLink.

    With ``resume`` the newest unfinished run of the task is submitted again
    and continues after its last registered round.

    Raises
    ------
    AicacheError
        If there is nothing to resume, or the SuperLink refuses the run.
    """
    federation = f"deployment: {server.name}"
    submitted_runs = _submitted(server)
    resumable = (
        RunSession.resumable(
            registry_root=server.registry,
            task=plan.task,
            federation=federation,
            rule=Resume.UNFINISHED,
        )
        if resume
        else None
    )
    active = server.active_runs()
    stale = submitted_runs.get(resumable.record.run_id) if resumable is not None else None
    if stale in active and not server.serverapp_running():
        # Flower keeps a run whose ServerApp died with the SuperLink "running" until its
        # heartbeat expires; resuming replaces it. A run whose ServerApp is alive is left
        # alone (refused below), so two ServerApps never share a run.
        server.flwr("stop", str(stale), CONNECTION)
        active = [run for run in active if run != stale]
    if active:
        raise AicacheError(
            f"a run is still going on the server (Flower run {active[0]}): one at a time",
            hint="Wait for it to end; `aicache server stop` and `start` end it at once "
            "(`--resume` then continues it).",
        )
    session = RunSession.begin(
        registry_root=server.registry,
        plan=plan,
        federation=federation,
        resuming=resumable,
        warm_start=True,
    )
    plan, run_id = session.plan, session.run_id
    from flwr.cli.build import build_fab_from_disk

    key = _signing_key(server)
    sign_pending(server, plan.task, key)
    app = write_app(server.root / "app")
    (app / "run-config.toml").unlink(missing_ok=True)  # kept there before apps were signed
    # Flower builds the FAB deterministically (fixed file order and dates): the app
    # `flwr run` sends is the one signed here.
    signature = sign_app(build_fab_from_disk(app), key)
    overrides = server.root / "run-config.toml"
    overrides.write_text(
        tomli_w.dumps(
            {
                REGISTRY_KEY: str(server.registry),
                NODES_KEY: str(server.root / "nodes.db"),
                FEDERATION_KEY: server.name,
                RUN_KEY: run_id,
                SECURE_KEY: str(plan.secure),
                HE_CONTEXT_KEY: str(server.he_public) if plan.secure_aggregation.needs_keys else "",
                APP_SIGNATURE_KEY: signature,
            }
        )
    )
    try:
        answer = server.flwr("run", str(app), CONNECTION, "--run-config", str(overrides))
    except AicacheError:
        session.fail("the SuperLink refused the run")
        raise
    flower_run_id = int(answer["run-id"])
    _submitted(server, {**submitted_runs, run_id: flower_run_id})
    return Submitted(run_id, flower_run_id, plan, session.resumed_after)


def _signing_key(server: ServerDirectory) -> Ed25519PrivateKey:
    try:
        return signing.load_private(server.signing_key_path().read_bytes())
    except OSError as exc:
        raise AicacheError(
            f"cannot read the federation's signing key {server.signing_key_path()}: "
            f"{exc.strerror or exc}",
            hint="`aicache server run` signs the app and every model with it; restore it "
            "from your backup of the federation directory.",
        ) from exc


def sign_pending(server: ServerDirectory, task: str, key: Ed25519PrivateKey) -> int:
    """Sign the task's versions the ServerApp registered and nobody signed yet; how many."""
    signed = 0
    with ModelRegistry(server.registry) as registry:
        for version in registry.versions(task):
            if registry.signature(version.task, version.version) is None:
                sign_version(registry, version, key, server.name)
                signed += 1
    return signed


def _submitted(server: ServerDirectory, update: dict[str, int] | None = None) -> dict[str, int]:
    """Which Flower run carries each registry run (read, or replaced by ``update``)."""
    path = server.root / "runs.json"
    if update is not None:
        path.write_text(json.dumps(update))
        return update
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def flower_status(server: ServerDirectory, flower_run_id: int) -> str:
    """Flower's status of a run (``pending``, ``running``, ``finished:completed`` ...)."""
    answer = server.flwr("list", CONNECTION, "--run-id", str(flower_run_id))
    runs = answer.get("runs", [])
    return str(runs[0].get("status", "unknown")) if runs else "unknown"


@dataclass(frozen=True, slots=True)
class Progress:
    """What a followed run has done so far."""

    status: str
    versions: list[ModelVersion]
    message: str | None


def follow(
    server: ServerDirectory,
    submitted: Submitted,
    *,
    timeout: float,
    on_version: Callable[[ModelVersion], None] | None = None,
    interval: float = 0.5,
) -> Progress:
    """Wait for the run to end, signing and reporting each new version; Flower is asked
    every few seconds.

    Raises
    ------
    AicacheError
        If the run fails, Flower ends it without a result, or ``timeout`` passes.
    """
    deadline = time.monotonic() + timeout
    reported = 0
    next_flower_check = time.monotonic() + 5.0
    key = _signing_key(server)
    while True:
        progress = _progress(server, submitted.run_id)
        if len(progress.versions) > reported:
            # The ServerApp delivers the last version once it is signed here.
            sign_pending(server, submitted.plan.task, key)
        for version in progress.versions[reported:]:
            if on_version is not None:
                on_version(version)
        reported = len(progress.versions)
        if progress.status == "finished":
            return progress
        if progress.status == "failed":
            raise AicacheError(
                f"the run failed: {progress.message}",
                hint="Versions of completed rounds stay registered; `--resume` continues it.",
                exit_code=1,
            )
        now = time.monotonic()
        if now > deadline:
            raise AicacheError(
                f"the run did not finish within {timeout:g} s",
                hint="It goes on on the server; `aicache server run --resume` picks it up "
                "if it was interrupted.",
                exit_code=1,
            )
        if now > next_flower_check:
            next_flower_check = now + 5.0
            try:
                status = flower_status(server, submitted.flower_run_id)
            except AicacheError:
                if server.superlink.running():
                    raise
                done = max((v.round for v in progress.versions), default=submitted.resumed_after)
                raise AicacheError(
                    f"the SuperLink stopped during the run (after round {done})",
                    hint="Nodes keep their data and retry; after `aicache server start`, "
                    "`aicache server run --resume` continues from the registry.",
                    exit_code=1,
                ) from None
            if status.startswith("finished") and progress.status == "running":
                time.sleep(1.0)  # the registry is written before Flower marks the end
                if _progress(server, submitted.run_id).status == "running":
                    raise AicacheError(
                        f"Flower ended the run ({status}) before it finished its rounds",
                        hint=f"The SuperLink's log says why: {server.log_file}. "
                        "`aicache server run --resume` continues it.",
                        exit_code=1,
                    )
        time.sleep(interval)


def _progress(server: ServerDirectory, run_id: str) -> Progress:
    with ModelRegistry(server.registry) as registry:
        record = registry.run(run_id)
        return Progress(record.status, registry.run_versions(run_id), record.message)
