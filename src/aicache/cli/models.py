"""Model commands: the registry (models ...) and suggestions from the latest model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from aicache.cli.common import (
    JsonOption,
    RegistryOption,
    TaskOption,
    checked,
    emit_json,
    load_model,
    registry_dir,
)
from aicache.cli.console import out, when
from aicache.errors import AicacheError


def suggest(
    k: Annotated[int, typer.Option("--k", help="How many suggestions.")] = 3,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """The commands you are likely to type next, from your own history and the global model."""
    from aicache.cli.common import open_store
    from aicache.features.history_items import items_from_store
    from aicache.local.importer import directory_hash
    from aicache.registry import ModelRegistry
    from aicache.simulation.evaluation import ensure_compatible
    from aicache.tasks.next_command import NextCommandContext, NextCommandTask

    checked("--k", k, 1, 20)
    task = NextCommandTask()
    with ModelRegistry(registry_dir(registry)) as reg:
        version = reg.latest(task.name)
        if version is None:
            raise AicacheError(
                f"there is no {task.name} model yet in {registry_dir(registry)}",
                hint="Run `aicache simulate` (or join a federation) to get one.",
            )
        params = load_model(reg, version)
    ensure_compatible(task.name, params)
    with open_store() as store:
        history = items_from_store(store.conn)
    context = NextCommandContext(history=history, dir_hash=directory_hash(str(Path.cwd())), k=k)
    suggestions = task.predict(params, context)
    if as_json:
        emit_json(
            {"suggestions": suggestions, "model_version": version.version, "history": len(history)}
        )
        return
    for rank, command in enumerate(suggestions, 1):
        out.print(f"{rank}. {command}")
    if not history:
        out.print("(no history yet: `aicache import history` makes these yours)")


models_app = typer.Typer(
    help="The model registry: list, show, export, roll back.", no_args_is_help=True
)


@models_app.command("list")
def models_list(
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every registered version, oldest first."""
    from aicache.registry import ModelRegistry

    with ModelRegistry(registry_dir(registry)) as reg:
        versions = reg.versions(task)
    if as_json:
        emit_json([v.as_dict() for v in versions])
        return
    if not versions:
        out.print(f"No model versions in {registry_dir(registry)}.")
        return
    # Compact enough for an 80-column terminal: a table per task, ε without δ (it
    # is in `models show`), no year, and the 8 characters of the hash people compare.
    for task_name in sorted({v.task for v in versions}):
        table = Table(
            "ver",
            "from",
            "round",
            "strategy",
            "clients",
            "top-1",
            "ε",
            "created",
            "sha256",
            title=task_name,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            padding=(0, 1, 0, 0),
            pad_edge=False,
        )
        for v in versions:
            if v.task != task_name:
                continue
            top1 = v.metrics.get("eval.top1")
            epsilon = v.privacy.get("epsilon")
            table.add_row(
                str(v.version),
                str(v.parent or "-"),
                str(v.round),
                v.strategy,
                str(v.num_clients),
                "-" if top1 is None else f"{top1:.3f}",
                "no DP" if v.privacy.get("dp", "off") == "off" else f"{epsilon:.3g}",
                time.strftime("%m-%d %H:%M", time.localtime(v.created_at)),
                v.sha256[:8],
            )
        out.print(table)


def _privacy_text(privacy: dict[str, Any]) -> str:
    if privacy.get("dp", "off") == "off":
        return "no DP"
    return f"ε={privacy.get('epsilon'):.3g}, δ={privacy.get('delta'):.1e}"


@models_app.command("show")
def models_show(
    version: Annotated[str, typer.Argument(help="latest or a version number.")] = "latest",
    task: TaskOption = "next-command",
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """One version's metadata: lineage, strategy, metrics and privacy spent."""
    from aicache.registry import ModelRegistry

    with ModelRegistry(registry_dir(registry)) as reg:
        found = reg.resolve(task, version)
    if as_json:
        emit_json(found.as_dict())
        return
    grid = Table.grid(padding=(0, 2))
    for name, value in found.as_dict().items():
        text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
        if name == "created_at":
            text = when(found.created_at)
        grid.add_row(f"[bold]{name}[/]", text)
    grid.add_row("[bold]privacy spent[/]", _privacy_text(found.privacy))
    out.print(grid)


@models_app.command("export")
def models_export(
    destination: Annotated[
        Path, typer.Argument(help="Where to write the .npz (metadata beside it as .json).")
    ],
    version: Annotated[
        str, typer.Option("--version", help="latest or a version number.")
    ] = "latest",
    task: TaskOption = "next-command",
    registry: RegistryOption = None,
) -> None:
    """Write one version's arrays (.npz, no pickle) and its metadata (.json)."""
    from aicache.registry import ModelRegistry
    from aicache.registry.artifacts import artifact_path

    with ModelRegistry(registry_dir(registry)) as reg:
        found = reg.resolve(task, version)
        load_model(reg, found)  # the artifact against its hash (and signature) first
        data = artifact_path(reg.artifacts, found.sha256).read_bytes()
    if destination.is_dir() or str(destination).endswith("/"):
        target = destination / f"{task}-v{found.version}.npz"
    elif destination.suffix == ".npz":
        target = destination
    else:
        target = destination.with_name(destination.name + ".npz")
    try:
        target.write_bytes(data)
        target.with_suffix(".json").write_text(json.dumps(found.as_dict(), indent=2) + "\n")
    except OSError as exc:
        raise AicacheError(f"cannot write {target}: {exc.strerror or exc}") from exc
    out.print(f"Exported {task} v{found.version} to {target} and {target.with_suffix('.json')}.")


@models_app.command("rollback")
def models_rollback(
    to: Annotated[int, typer.Option("--to", help="The version to make current again.")],
    task: TaskOption = "next-command",
    registry: RegistryOption = None,
) -> None:
    """Make an earlier version current again (as a new version; history is kept)."""
    from aicache.registry import ModelRegistry

    with ModelRegistry(registry_dir(registry)) as reg:
        target = reg.resolve(task, str(to))
        created = reg.rollback(task, target)
    out.print(
        f"{task}: version {created.version} now serves the model of version {target.version}."
    )


@models_app.command("pull")
def models_pull(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """Install the newest model the federation delivered, after verifying its signature."""
    from aicache.deploy.distribution import Inbox, pull
    from aicache.deploy.node import NodeHome
    from aicache.registry import ModelRegistry

    node = NodeHome()
    key = node.signing_key()
    if key is None:
        raise AicacheError(
            "this machine has not joined a federation: there is no key to verify models with",
            hint="Join one with `aicache join BUNDLE`.",
        )
    with ModelRegistry(registry_dir(registry)) as reg:
        results = pull(Inbox(node.inbox), reg, key)
    if as_json:
        emit_json([_pulled(r) for r in results])
    elif not results:
        out.print("No model delivered yet: a node receives one at the end of each run it is in.")
    for result in results if not as_json else []:
        if result.status == "installed":
            out.print(
                f"{result.task}: installed version {result.server_version} of the federation "
                f"(local version {result.local_version}); signature verified."
            )
        elif result.status == "current":
            out.print(f"{result.task}: version {result.server_version} is already in use.")
        else:
            out.print(f"[bold red]{result.task}: refused[/]: {result.problem}")
    refused = [r for r in results if r.status == "refused"]
    if refused:
        raise AicacheError(
            f"{len(refused)} delivered model(s) failed verification and were not installed",
            hint="The previous model stays in use.",
            exit_code=1,
        )


def _pulled(result: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(result)


@models_app.command("verify")
def models_verify(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """Re-check every model pulled from the federation against its signature."""
    from aicache.deploy.distribution import PULLED_NOTE, check_version
    from aicache.deploy.node import NodeHome
    from aicache.registry import ModelRegistry

    key = NodeHome().signing_key()
    rows: list[dict[str, Any]] = []
    with ModelRegistry(registry_dir(registry)) as reg:
        for version in reg.versions():
            signed = reg.signature(version.task, version.version) is not None
            if not signed and not version.note.startswith(PULLED_NOTE):
                continue  # trained here (a simulation): nothing to verify against
            try:
                check_version(reg, version, key)
                rows.append({"task": version.task, "version": version.version, "ok": True})
            except AicacheError as exc:
                rows.append(
                    {
                        "task": version.task,
                        "version": version.version,
                        "ok": False,
                        "problem": exc.message,
                    }
                )
    if as_json:
        emit_json(rows)
    else:
        for row in rows:
            mark = "ok" if row["ok"] else f"[bold red]FAILED[/]: {row['problem']}"
            out.print(f"{row['task']} version {row['version']}: {mark}")
        if not rows:
            out.print("No pulled models to verify.")
    bad = [r for r in rows if not r["ok"]]
    if bad:
        raise AicacheError(
            f"{len(bad)} model(s) do not match their signatures",
            hint="Pull them again.",
            exit_code=1,
        )


def register(app: typer.Typer) -> None:
    """Add the model commands to ``app``."""
    app.command("suggest")(suggest)
    app.add_typer(models_app, name="models")
