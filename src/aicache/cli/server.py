"""Operator commands: ``aicache server init|start|stop|enroll|nodes|revoke|run|rotate-certs``.

Every command but ``init`` takes the federation directory as ``DIR`` or
``--dir`` (default: the current directory).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aicache.cli.common import (
    AccountantOption,
    BudgetOption,
    DeltaOption,
    JsonOption,
    LearningRateOption,
    LocalEpochsOption,
    NoiseOption,
    TargetEpsilonOption,
    checked,
    emit_json,
    stay_in_foreground,
)
from aicache.cli.console import out, when
from aicache.errors import AicacheError, Interrupted
from aicache.extras import require_extra

if TYPE_CHECKING:
    from aicache.deploy.server import ServerDirectory

app = typer.Typer(help="Run a federation server (operator commands).", no_args_is_help=True)

DirArgument = Annotated[
    Path | None,
    typer.Argument(
        help="The federation directory (default: current directory).", show_default=False
    ),
]
DirOption = Annotated[
    Path | None, typer.Option("--dir", help="The federation directory (same as DIR).")
]


def _server(directory: Path | None, option: Path | None) -> ServerDirectory:
    from aicache.federation.environment import QUIET_ENVIRONMENT

    os.environ.update(QUIET_ENVIRONMENT)  # before anything here imports Flower
    from aicache.deploy.server import ServerDirectory

    if directory is not None and option is not None and directory != option:
        raise AicacheError(f"two federation directories given: {directory} and --dir {option}")
    return ServerDirectory(directory or option or Path.cwd())


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="The federation directory to create.")],
    name: Annotated[str, typer.Option("--name", help="The federation's name.")] = "aicache",
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="A name or address clients use (repeatable)."),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="The SuperLink's port.")] = 9092,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing federation.")] = False,
) -> None:
    """Create a CA, a server certificate, a model-signing key (Ed25519) and a config."""
    from aicache.deploy.bundle import check_host, check_name
    from aicache.security.federation_dir import CONFIG, init_federation

    check_name(name, what="federation name")  # it names the CA and every bundle
    for each in host or []:
        check_host(each)
    from aicache.web.auth import TOKEN_FILE, write_token

    files = init_federation(directory, name=name, hosts=host or [], port=port, force=force)
    token = write_token(files.root / TOKEN_FILE)
    out.print(f"Federation {name!r} initialised in {files.root} (keys owner-only).")
    out.print(
        f"Dashboard token (also in {files.root / TOKEN_FILE}, owner-only): {token}",
        soft_wrap=True,
        highlight=False,
    )
    out.print(f"Edit {files.path(CONFIG)} for its tasks, strategy and privacy settings.")


@app.command("start")
def start(
    directory: DirArgument = None,
    dir_option: DirOption = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background (stop: `server stop`).")
    ] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Without TLS or node authentication (testing only).")
    ] = False,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen", help="Address to listen on (default: the config's, else 127.0.0.1)."
        ),
    ] = None,
) -> None:
    """Start the SuperLink: TLS, node authentication, persistent state, telemetry off."""
    require_extra("server")  # the ServerApp it runs accounts privacy with dp-accounting
    server = _server(directory, dir_option)
    if insecure:
        out.print(
            "[bold red]INSECURE:[/] the SuperLink runs without TLS and without node "
            "authentication; updates travel in plaintext and anyone can join."
        )
    pid = server.start(insecure=insecure, listen=listen)
    out.print(f"SuperLink of {server.name!r} running (pid {pid}) on port {server.port}.")
    out.print(f"Log: {server.log_file}")
    if detach:
        return
    out.print("Press Ctrl-C to stop it.")
    stay_in_foreground(
        server.superlink.running,
        server.stop,
        exited=lambda: f"The SuperLink exited: {server.log_tail()}",
        stopped="SuperLink stopped.",
    )


@app.command("stop")
def stop(directory: DirArgument = None, dir_option: DirOption = None) -> None:
    """Stop the SuperLink and every process it started."""
    server = _server(directory, dir_option)
    if server.stop():
        out.print("SuperLink stopped.")
    else:
        out.print(f"The SuperLink of {server.root} was not running.")


@app.command("enroll")
def enroll(
    name: Annotated[str, typer.Argument(help="The node's name (a developer or machine).")],
    directory: DirOption = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The bundle file (default: NAME.bundle).")
    ] = None,
) -> None:
    """Register a node's key with the SuperLink and write its bundle (keep it secret)."""
    server = _server(None, directory)
    target = output or Path.cwd() / f"{name}.bundle"
    bundle = server.enroll(name, target)
    out.print(f"Enrolled {name!r} as node {bundle.node_id}. Bundle (owner-only): {target}")
    out.print(f"On the developer's machine: aicache join {target.name}")


@app.command("nodes")
def nodes(
    directory: DirArgument = None, dir_option: DirOption = None, as_json: JsonOption = False
) -> None:
    """Every node: enrolled ones, and keys registered with Flower otherwise (unknown)."""
    rows = _server(directory, dir_option).node_list()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("No nodes enrolled yet (`aicache server enroll NAME`).")
        return
    table = Table("name", "node id", "status", "enrolled", "last round", "last seen")
    for row in rows:
        table.add_row(
            "[bold red](unknown)[/]" if row["unknown"] else row["name"],
            str(row["node_id"]),
            row["status"],
            "not enrolled" if row["enrolled_at"] is None else when(row["enrolled_at"]),
            "-" if row["last_round"] is None else f"{row['last_round']} ({row['last_run']})",
            "-" if row["last_seen"] is None else when(row["last_seen"]),
        )
    out.print(table)
    unknown = [row for row in rows if row["unknown"]]
    if unknown:
        out.print(
            f"[bold red]{len(unknown)} node key(s) registered with Flower but not enrolled by "
            "aicache.[/] Remove each with `aicache server revoke NODE_ID` unless you added it."
        )


@app.command("revoke")
def revoke(
    name: Annotated[
        str, typer.Argument(help="The node to remove: its name, or an unknown node's id.")
    ],
    directory: DirOption = None,
) -> None:
    """Remove a node: it is refused at its next connection."""
    removed = _server(None, directory).revoke(name)
    if isinstance(removed, int):
        out.print(f"Removed the unknown node {removed}: its key is refused from now on.")
    else:
        out.print(f"Revoked {name!r} (node {removed.node_id}).")


@app.command("rotate-certs")
def rotate_certs(
    directory: DirArgument = None,
    dir_option: DirOption = None,
    ca: Annotated[
        bool, typer.Option("--ca", help="Also roll the CA (old bundles keep working meanwhile).")
    ] = False,
    end_overlap: Annotated[
        bool, typer.Option("--end-overlap", help="End a CA roll: drop the old CA.")
    ] = False,
    days: Annotated[int, typer.Option("--days", help="Validity of the new certificate.")] = 365,
    force: Annotated[
        bool, typer.Option("--force", help="Rotate even while a run is going on (it ends).")
    ] = False,
) -> None:
    """Issue a new server certificate; clients keep trusting the CA, no re-enrolment."""
    checked("--days", days, 1, 3650)
    server = _server(directory, dir_option)
    for line in server.rotate(days=days, roll_ca=ca, end_overlap=end_overlap, force=force):
        out.print(line)


def _config_value(server: ServerDirectory, table: str, key: str, default: Any, kind: Any) -> Any:
    """``table.key`` of the federation's config as ``kind``, or a message naming it."""
    value = server.config.get(table, {}).get(key, default)
    if kind in (int, float) and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        raise AicacheError(
            f"{table}.{key} = {value!r} in {server.root / 'aicache-server.toml'} is not a "
            "finite number",
            hint=f"Write a number, or remove it (default: {default}).",
        )
    return kind(value)


def _interrupted(server: ServerDirectory, submitted: Any, directory: Path | None) -> Interrupted:
    """Stop the followed run on the SuperLink after Ctrl-C; say how to continue it.

    A run nobody follows would go on training on the nodes; stopped, it is
    continued from its last registered round by ``--resume``. ``flwr stop``
    runs in its own session, so a second Ctrl-C cannot cut it short, and it
    may finish after this command when the machine is slow.
    """
    from aicache.deploy.processes import flower_env
    from aicache.deploy.server import CONNECTION
    from aicache.registry import ModelRegistry

    command = [str(Path(sys.executable).parent / "flwr"), "stop", str(submitted.flower_run_id)]
    stopper = subprocess.Popen(
        [*command, CONNECTION, "--format", "json"],
        env=flower_env(server.flwr_home),
        cwd=server.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: already stopping
    try:
        answer, _ = stopper.communicate(timeout=STOP_TIMEOUT)
        stopped = json.loads(answer or b"{}").get("success", False)
        where = "stopped on the server" if stopped else "not stopped on the server"
    except subprocess.TimeoutExpired:
        where = "being stopped on the server (`flwr stop` finishes in the background)"
    except ValueError:
        where = "not stopped on the server"
    finally:
        signal.signal(signal.SIGINT, previous)
    with ModelRegistry(server.registry) as registry:
        done = max((v.round for v in registry.run_versions(submitted.run_id)), default=0)
    again = shlex.join(
        ["aicache", "server", "run", "--resume", *([str(directory)] if directory else [])]
    )
    return Interrupted(
        f"interrupted after round {done} of {submitted.plan.rounds}; the run is {where}; "
        f"to continue it: {again}"
    )


STOP_TIMEOUT = 3.5  # Ctrl-C must end the command within 5 s


def secure_plan(server: ServerDirectory, plan: Any, population: int) -> Any:
    """``plan`` fitted to what its secure mode needs on this federation.

    SecAgg+: the masked sum must hold the round's clients, each weighing at
    most the task's per-client maximum (1 under DP); each protocol stage
    waits ``--round-timeout`` for replies, so a node that dies mid-round is
    dropped after that long. CKKS: the key authority's public context must
    be in the directory (and this process never reads a secret one).
    """
    from dataclasses import replace

    from aicache.federation.experiment import secagg_capacity
    from aicache.tasks.base import get_task

    aggregation = plan.secure_aggregation
    if aggregation.needs_keys:
        require_extra("he")  # the ServerApp adds ciphertexts with TenSEAL
    if aggregation.needs_keys and not server.he_public.exists():
        raise AicacheError(
            f"--secure {plan.secure} needs the federation's public CKKS context "
            f"({server.he_public}), and there is none",
            hint="On the host you trust with the secret key: `aicache server key-authority "
            "KEYDIR`; then here: `aicache server he-key KEYDIR/server.ckks`, and on each node "
            "`aicache join BUNDLE --he-key KEYDIR/clients.ckks`.",
        )
    if not aggregation.bounds_weights:
        return plan
    largest = 1.0 if plan.dp.enabled else float(get_task(plan.task).max_examples)
    fitted = secagg_capacity(plan, clients=population, max_weight=largest)
    return replace(plan, secagg=replace(fitted, timeout=plan.round_timeout))


@app.command("key-authority")
def key_authority(
    output: Annotated[Path, typer.Argument(help="The folder to write the keys to (new).")],
) -> None:
    """Make CKKS keys for --secure he; run it on the host you trust with the secret key."""
    require_extra("he")
    from aicache.privacy.key_authority import write_keys

    if output.exists() and any(output.iterdir()):
        raise AicacheError(
            f"{output} is not empty: the key authority writes new keys into a new folder",
            hint="Choose another folder; keys already given out stay valid until replaced.",
        )
    secret, public = write_keys(output)
    out.print(f"Public context (for the server): {public}")
    out.print(f"Secret context (owner-only, for every node and nobody else): {secret}")
    out.print(
        "Operator: `aicache server he-key " + str(public) + "`. Each node: "
        "`aicache join BUNDLE --he-key " + str(secret) + "` (hand it over like the bundle)."
    )


@app.command("he-key")
def he_key(
    context: Annotated[Path, typer.Argument(help="The key authority's server.ckks.")],
    directory: DirOption = None,
) -> None:
    """Give the federation the key authority's public CKKS context (never the secret one)."""
    from aicache.deploy import he_keys

    server = _server(None, directory)
    installed = he_keys.install(context, server.he_public, secret=False)
    out.print(f"Public CKKS context installed: {installed}. `--secure he` can run.")


@app.command("run")
def run(
    directory: DirArgument = None,
    dir_option: DirOption = None,
    task: Annotated[
        str | None, typer.Option("--task", help="The task to train (default: the config's).")
    ] = None,
    rounds: Annotated[
        int | None, typer.Option("--rounds", help="Federated rounds (default: the config's).")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="Aggregation rule (default: the config's).")
    ] = None,
    fraction: Annotated[float, typer.Option("--fraction", help="Share of nodes per round.")] = 1.0,
    min_clients: Annotated[
        int, typer.Option("--min-clients", help="Fewest nodes per round (waits for them).")
    ] = 2,
    local_epochs: LocalEpochsOption = None,
    learning_rate: LearningRateOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the initial model.")] = 0,
    dp: Annotated[
        str | None,
        typer.Option(
            "--dp",
            help="Differential privacy: off, central or distributed (default: the config's).",
        ),
    ] = None,
    clip: Annotated[
        float | None,
        typer.Option("--clip", help="L2 bound C on each update (default: the config's)."),
    ] = None,
    noise_multiplier: NoiseOption = None,
    target_epsilon: TargetEpsilonOption = None,
    delta: DeltaOption = None,
    accountant: AccountantOption = "rdp",
    budget: BudgetOption = None,
    secure: Annotated[
        str,
        typer.Option(
            "--secure",
            help="Secure aggregation: off, secagg (SecAgg+ masking) or he (CKKS; needs "
            "`server he-key`).",
        ),
    ] = "off",
    round_timeout: Annotated[
        float, typer.Option("--round-timeout", help="Seconds a round waits for replies.")
    ] = 120.0,
    evaluate_every: Annotated[
        int,
        typer.Option(
            "--evaluate-every", help="Evaluate every N rounds and after the last (saves latency)."
        ),
    ] = 1,
    expected_attackers: Annotated[
        int,
        typer.Option(
            "--expected-attackers", help="Attackers krum, trimmed-mean, median withstand."
        ),
    ] = 0,
    wait: Annotated[
        float, typer.Option("--wait", help="Give up following the run after this many seconds.")
    ] = 3600.0,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue this task's interrupted run.")
    ] = False,
) -> None:
    """Start a federated run on the connected nodes and follow it; versions land in DIR/registry."""
    require_extra("server")
    from aicache.cli.simulate import headline_text
    from aicache.deploy import runs
    from aicache.federation.options import plan_from_options
    from aicache.tasks.spec import get_spec

    server = _server(directory, dir_option)
    task = task or str(_config_value(server, "training", "task", "next-command", str))
    rounds = rounds if rounds is not None else _config_value(server, "training", "rounds", 10, int)
    strategy = strategy or str(_config_value(server, "training", "strategy", "fedavg", str))
    dp = dp or str(_config_value(server, "privacy", "dp", "off", str))
    clip = clip if clip is not None else _config_value(server, "privacy", "clip", 1.0, float)
    if delta is None and "delta" in server.config.get("privacy", {}):
        delta = _config_value(server, "privacy", "delta", 1e-5, float)
    checked("--rounds", rounds, 1)
    checked("--min-clients", min_clients, 1)
    checked("--round-timeout", round_timeout, 1)
    checked("--evaluate-every", evaluate_every, 1)
    server.require_running()
    with server.nodes() as book:
        population = sum(1 for n in book.all() if n.revoked_at is None)
    if population == 0:
        raise AicacheError(
            "no nodes are enrolled", hint="Enrol some with `aicache server enroll NAME`."
        )
    plan = plan_from_options(
        population=population,
        deployed=True,
        task=task,
        rounds=rounds,
        strategy=strategy,
        fraction=fraction,
        min_clients=min_clients,
        local_epochs=local_epochs,
        learning_rate=learning_rate,
        seed=seed,
        dp=dp,
        clip=clip,
        noise_multiplier=noise_multiplier,
        target_epsilon=target_epsilon,
        delta=delta,
        accountant=accountant,
        budget=budget,
        secure=secure,
        round_timeout=round_timeout,
        evaluate_every=evaluate_every,
        expected_attackers=expected_attackers,
    )
    plan = secure_plan(server, plan, population)
    submitted = runs.submit(server, plan, resume=resume)
    plan = submitted.plan
    out.print(
        f"[bold]{plan.task}[/]: run {submitted.run_id} (Flower run {submitted.flower_run_id}), "
        f"{plan.rounds} rounds"
        + (f", resuming after round {submitted.resumed_after}" if submitted.resumed_after else "")
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=out,
    ) as progress:
        bar = progress.add_task(
            f"waiting for {plan.selection.min_available} node(s)",
            total=plan.rounds,
            completed=submitted.resumed_after,
        )

        headline = get_spec(plan.task).headline

        def on_version(version: Any) -> None:
            evaluated = any(f"eval.{m.name}" in version.metrics for m in headline)
            quality = (
                headline_text(plan.task, version.metrics, prefix="eval.")
                if evaluated
                else "not evaluated"
            )
            eps = version.privacy.get("epsilon")
            privacy = f", ε {eps:.2f}" if isinstance(eps, float) else ""
            progress.update(
                bar,
                completed=version.round,
                description=f"round {version.round}: {quality} "
                f"({version.num_clients} nodes{privacy}, v{version.version})",
            )

        try:
            result = runs.follow(server, submitted, timeout=wait, on_version=on_version)
        except KeyboardInterrupt:
            progress.stop()
            raise _interrupted(server, submitted, directory or dir_option) from None
    if result.versions:
        last = result.versions[-1]
        out.print(
            f"Done: versions {result.versions[0].version}–{last.version} in {server.registry}, "
            "signed."
        )
    if result.message:
        out.print(result.message)
