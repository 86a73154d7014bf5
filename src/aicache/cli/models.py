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
    from aicache.deploy.serving import suggest_next

    checked("--k", k, 1, 20)
    with open_store() as store:
        answer = suggest_next(store, registry_dir(registry), k=k, directory=Path.cwd())
    if as_json:
        emit_json(
            {
                "suggestions": [s.shown for s in answer.suggestions],
                "tokens": [s.tokens for s in answer.suggestions],
                "as_typed": [s.typed is not None for s in answer.suggestions],
                "model_version": answer.model.version,
                "model": answer.model.origin,
                "privacy": answer.model.privacy,
                "history": answer.history,
            }
        )
        return
    for rank, suggestion in enumerate(answer.suggestions, 1):
        out.print(f"{rank}. {suggestion.shown}", markup=False, highlight=False)
    if not answer.history:
        out.print("(no history yet: `aicache import history` makes these yours)")
    elif not answer.lines_kept:
        out.print(
            "(shown as program and subcommand: the store keeps no command lines; "
            "`aicache config set raw-storage on` before importing keeps them as typed)"
        )


models_app = typer.Typer(
    help="The model registry: list, show, export, roll back.", no_args_is_help=True
)


@models_app.command("list")
def models_list(
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every registered version, oldest first, and which one each task serves."""
    from aicache.registry import ModelRegistry

    with ModelRegistry(registry_dir(registry)) as reg:
        versions = reg.versions(task)
        serving = _serving(reg, {v.task for v in versions})
    if as_json:
        emit_json([{**v.as_dict(), "serving": bool(_serves(serving, v))} for v in versions])
        return
    if not versions:
        out.print(f"No model versions in {registry_dir(registry)}: {_shipped_text(task)}.")
        return
    # Compact enough for an 80-column terminal: a table per task, ε without δ (it
    # is in `models show`), no year, and the 8 characters of the hash people compare.
    for task_name in sorted({v.task for v in versions}):
        metric = _headline(task_name, [v for v in versions if v.task == task_name])
        table = Table(
            "ver",
            "from",
            "round",
            "strategy",
            "clients",
            "metric" if metric is None else metric[1],
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
            value = None if metric is None else v.metrics.get(metric[0])
            epsilon = v.privacy.get("epsilon")
            table.add_row(
                f"{v.version}*" if _serves(serving, v) else str(v.version),
                str(v.parent or "-"),
                str(v.round),
                v.strategy,
                str(v.num_clients),
                "-" if value is None else f"{value:.3f}",
                f"{epsilon:.3g}" if _has_dp(v.privacy) else "no DP",
                time.strftime("%m-%d %H:%M", time.localtime(v.created_at)),
                v.sha256[:8],
            )
        out.print(table)
        serves = serving.get(task_name)
        if serves is not None:
            how = "pinned; `models use latest` unpins" if serves[1] else "the newest"
            out.print(f"* serves suggest and prefetch ({how}).")


def _headline(task: str, versions: list[Any]) -> tuple[str, str] | None:
    """The list's metric column for ``task``: its key in the versions' metrics and its label.

    A known task shows its spec's first headline metric; a task this install does
    not have (a plugin's) shows the first evaluation metric its versions recorded,
    under that metric's own name, since its spec is not here to name its headline.
    """
    from aicache.tasks.spec import get_spec

    try:
        metric = get_spec(task).headline[0]
    except (KeyError, IndexError):
        recorded = sorted({k for v in versions for k in v.metrics if k.startswith("eval.")})
        return None if not recorded else (recorded[0], recorded[0].removeprefix("eval."))
    return f"eval.{metric.name}", metric.label


def _shipped_text(task: str | None) -> str:
    """What serves until a version is registered: the models shipped with aicache."""
    from aicache.registry.shipped import shipped_model
    from aicache.tasks.spec import spec_names

    names = [task] if task else spec_names()
    shipped = [(name, model) for name in names if (model := shipped_model(name)) is not None]
    if len(shipped) == 1:
        _, model = shipped[0]
        return f"suggest serves the model shipped with aicache ({_privacy_text(model.privacy)})"
    if not shipped:
        return "suggest serves the model shipped with aicache"
    # Each names what it serves: suggest's next-command model first, as with one model.
    return "; ".join(
        f"{'suggest' if name == 'next-command' else name} serves the model shipped with "
        f"aicache ({_privacy_text(model.privacy)})"
        for name, model in sorted(shipped, key=lambda pair: pair[0] != "next-command")
    )


def _serving(reg: Any, tasks: set[str]) -> dict[str, tuple[int, bool]]:
    """For each task, the version it serves and whether it is pinned."""
    serving: dict[str, tuple[int, bool]] = {}
    for name in tasks:
        pinned = reg.pinned(name)
        chosen = pinned or reg.latest(name)
        if chosen is not None:
            serving[name] = (chosen.version, pinned is not None)
    return serving


def _serves(serving: dict[str, tuple[int, bool]], version: Any) -> str:
    served = serving.get(version.task)
    if served is None or served[0] != version.version:
        return ""
    return "pinned" if served[1] else "newest"


@models_app.command("use")
def models_use(
    version: Annotated[
        str, typer.Argument(help="The version to serve, or latest to follow the newest.")
    ],
    task: TaskOption = "next-command",
    registry: RegistryOption = None,
) -> None:
    """Pin the version suggest and prefetch serve (new versions then change nothing)."""
    from aicache.deploy.serving import load_verified
    from aicache.registry import ModelRegistry
    from aicache.tasks.base import ensure_compatible

    with ModelRegistry(registry_dir(registry)) as reg:
        if version == "latest":
            reg.pin(task, None)
            newest = reg.latest(task)
            shown = "the shipped model" if newest is None else f"version {newest.version}"
            out.print(f"{task}: serving the newest version from now on (now {shown}).")
            return
        chosen = reg.resolve(task, version)
        ensure_compatible(task, load_verified(reg, chosen))  # never pin what cannot serve
        reg.pin(task, chosen)
    out.print(f"{task}: version {chosen.version} now serves, pinned (`models use latest` unpins).")


def _has_dp(privacy: dict[str, Any]) -> bool:
    from aicache.privacy.record import PrivacyRecord

    return PrivacyRecord.from_dict(privacy).enabled


def _privacy_text(privacy: dict[str, Any]) -> str:
    from aicache.privacy.record import PrivacyRecord

    record = PrivacyRecord.from_dict(privacy)
    if not record.enabled:
        return "no DP"
    return f"ε={record.epsilon:.3g}, δ={record.delta:.1e}"


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
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing .npz and .json.")
    ] = False,
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
    existing = [p for p in (target, target.with_suffix(".json")) if p.exists() or p.is_symlink()]
    if existing and not force:
        raise AicacheError(
            f"{' and '.join(str(p) for p in existing)} already exist"
            if len(existing) > 1
            else f"{existing[0]} already exists",
            hint="Nothing was written. Choose another destination, or pass --force to overwrite.",
        )
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
    """Install the newest model the federation delivered, after verifying its signature.

    A version older than the newest this node has verified is never installed
    (a replayed delivery cannot roll the node back); `models rollback --to N`
    goes back on purpose.
    """
    from aicache.deploy.distribution import Inbox, pull
    from aicache.deploy.freshness import VERIFIED_FILE, NewestVerified
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
        results = pull(Inbox(node.inbox), reg, key, NewestVerified(node.root / VERIFIED_FILE))
        # What serves each task now, said after the fact so that it is true.
        in_use = {r.task: reg.latest(r.task) for r in results}
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
        elif result.status == "kept":
            out.print(f"{result.task}: {result.problem}.")
        else:
            out.print(f"[bold red]{result.task}: refused[/]: {result.problem}")
    failed = [r for r in results if r.status in ("refused", "stale")]
    if failed:
        installed = {r.task for r in results if r.status == "installed"}
        raise AicacheError(
            f"{len(failed)} delivered model(s) were refused and not installed",
            hint=" ".join(
                _in_use_text(task, in_use[task], task in installed)
                for task in sorted({r.task for r in failed})
            ),
            exit_code=1,
        )


def _in_use_text(task: str, version: Any, just_installed: bool) -> str:
    if version is None:
        return f"{task}: no model is installed."
    status = "is now in use" if just_installed else "stays in use"
    return f"{task}: local version {version.version} ({version.note or 'trained here'}) {status}."


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
