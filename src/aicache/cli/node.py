"""Developer commands: ``aicache join``, ``aicache leave``, ``aicache node status``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aicache.cli.common import JsonOption, emit_json, stay_in_foreground
from aicache.cli.console import out, when


def join(
    bundle: Annotated[Path, typer.Argument(help="The bundle from the federation's operator.")],
    detach: Annotated[
        bool, typer.Option("--detach", help="Keep the node running in the background.")
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Accept a bundle for a server without TLS (testing)."),
    ] = False,
    he_key: Annotated[
        Path | None,
        typer.Option(
            "--he-key", help="The key authority's clients.ckks, for runs with --secure he."
        ),
    ] = None,
) -> None:
    """Join a federation: a SuperNode trains aicache's tasks on this machine's own store."""
    from aicache.deploy.node import NodeHome

    node = NodeHome()
    if he_key is not None:
        from aicache.deploy import he_keys
        from aicache.deploy.client_app import HE_KEY

        he_keys.install(he_key, node.root / HE_KEY, secret=True)
    pid = node.join(bundle, insecure=insecure)
    joined = node.joined()
    assert joined is not None
    if joined.insecure:
        out.print(
            "[bold red]INSECURE:[/] no TLS and no node authentication: model updates travel "
            "in plaintext."
        )
    out.print(
        f"Joined {joined.federation!r} at {joined.address} as {joined.name!r} (pid {pid}). "
        "Only model updates leave this machine."
    )
    if detach:
        out.print("Running in the background; `aicache leave` stops it.")
        return
    out.print("Press Ctrl-C to leave.")
    stay_in_foreground(
        node.supernode.running,
        node.leave,
        exited=lambda: f"The node exited; its log is {node.log_file}.",
        stopped="Left the federation.",
    )


def leave() -> None:
    """Stop this machine's node (the bundle stays, `aicache join` with it rejoins)."""
    from aicache.deploy.node import NodeHome

    if NodeHome().leave():
        out.print("Left the federation.")
    else:
        out.print("No node was running.")


def _node_task(state: dict[str, Any]) -> str | None:
    """The task whose model the node uses: the one it last trained, else the first a node
    can train (a task whose spec reads the local store)."""
    from aicache.tasks.spec import all_specs, spec_names

    last = state.get("last_round")
    if isinstance(last, dict) and last.get("task") in spec_names():
        return str(last["task"])
    deployable = [spec.name for spec in all_specs() if spec.read_store is not None]
    return deployable[0] if deployable else None


def status(as_json: JsonOption = False) -> None:
    """Whether this machine's node runs and is connected, its last round, the model in use."""
    from aicache.cli.common import registry_dir
    from aicache.deploy.node import NodeHome
    from aicache.registry import ModelRegistry

    state = NodeHome().status()
    task = _node_task(state)
    latest = None
    if task is not None:
        with ModelRegistry(registry_dir(None)) as registry:
            latest = registry.pinned(task) or registry.latest(task)
    state["model_task"] = task
    state["model_version"] = None if latest is None else latest.version
    state["model_note"] = None if latest is None else latest.note
    if as_json:
        emit_json(state)
        return
    if not state["joined"]:
        out.print("Not part of a federation (`aicache join BUNDLE`).")
        return
    connection = "connected" if state["connected"] else "running" if state["running"] else "stopped"
    out.print(f"{state['name']} in {state['federation']!r} at {state['address']}: {connection}")
    last = state["last_round"]
    out.print(
        "Last round: none yet"
        if last is None
        else f"Last round: {last['round']} of run {last['run']} "
        f"({last['task']}, {when(last['at'])})"
    )
    out.print(f"Updates sent: {state['updates_sent']} ({state['bytes_sent']} bytes)")
    model = state["model_version"]
    used = "none" if model is None else f"{state['model_task']} version {model}"
    out.print(f"Model in use: {used}")


node_app = typer.Typer(help="This machine's federation node: join, leave, status.")


def register(app: typer.Typer) -> None:
    """Add the developer commands to ``app`` (``aicache status`` is the cache's)."""
    app.command("join")(join)
    app.command("leave")(leave)
    node_app.command("join")(join)
    node_app.command("leave")(leave)
    node_app.command("status")(status)
    app.add_typer(node_app, name="node", no_args_is_help=True)
