"""Federated simulation commands: simulate and evaluate."""

from __future__ import annotations

import math
import os
import shlex
from pathlib import Path
from typing import Annotated, Any

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
    SimulationRegistryOption,
    TargetEpsilonOption,
    TaskOption,
    checked,
    emit_json,
    load_model,
    simulation_registry_dir,
)
from aicache.cli.console import err, out
from aicache.errors import AicacheError, Interrupted
from aicache.extras import require_extra

DataFormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", help="Format of --data [the task's first: greenberg for next-command]."
    ),
]


def _quiet_flower() -> None:
    # Before anything imports Flower or Ray: no telemetry, no update checks.
    from aicache.federation.environment import QUIET_ENVIRONMENT

    os.environ.update(QUIET_ENVIRONMENT)


def _resume_command(
    task: str,
    data: Path | None,
    data_format: str | None,
    clients: int,
    seed: int,
    registry: Path | None,
    output: Path,
) -> str:
    """The command that resumes this run: the flags that name its data, registry and report.

    The rest of the plan (rounds, strategy, privacy) is read back from the registry.
    """
    words = ["aicache", "simulate", "--resume", "--task", task]
    if data is not None:
        words += ["--data", str(data)]
        if data_format is not None:
            words += ["--format", data_format]
    else:
        words += ["--clients", str(clients)]
    words += ["--seed", str(seed)]
    if registry is not None:
        words += ["--registry", str(registry)]
    words += ["--out", str(output)]
    return shlex.join(words)


def _source(task: str, data: Path | None, data_format: str | None, seed: int, clients: int) -> Any:
    """The population of ``task`` that the flags name: ``--data`` in ``--format``, or synthetic.

    Without ``--format`` the data is read in the task's own default format.

    Raises
    ------
    AicacheError
        For an unknown task or a format the task does not read.
    """
    from aicache.tasks.spec import get_spec, spec_names

    if task not in spec_names():
        raise AicacheError(
            f"--task: unknown task {task!r}: choose one of {', '.join(spec_names())}"
        )
    try:
        return get_spec(task).source(
            data=None if data is None else str(data),
            data_format=data_format,
            seed=seed,
            clients=clients,
        )
    except ValueError as exc:
        raise AicacheError(str(exc)) from None


def headline_text(task: str, metrics: dict[str, float], prefix: str = "") -> str:
    """The task's headline metrics as ``top-1 0.412 top-3 0.703`` (NaN when absent)."""
    from aicache.tasks.spec import get_spec

    return " ".join(
        f"{m.label} {metrics.get(prefix + m.name, math.nan):.3f}" for m in get_spec(task).headline
    )


def simulate(
    task: TaskOption = "next-command",
    clients: Annotated[int, typer.Option("--clients", help="Synthetic developers.")] = 20,
    rounds: Annotated[int, typer.Option("--rounds", help="Federated rounds.")] = 10,
    strategy: Annotated[
        str,
        typer.Option("--strategy", help="fedavg, fedprox, fedadam, trimmed-mean, median, krum."),
    ] = "fedavg",
    mu: Annotated[float | None, typer.Option("--mu", help="FedProx's proximal μ.")] = None,
    fraction: Annotated[
        float | None, typer.Option("--fraction", help="Share of clients per round [1.0].")
    ] = None,
    min_clients: Annotated[
        int | None, typer.Option("--min-clients", help="Fewest clients per round [2].")
    ] = None,
    sample_rate: Annotated[
        float | None,
        typer.Option(
            "--sample-rate",
            help="Poisson sampling: each client joins a round with this chance (--dp central).",
        ),
    ] = None,
    local_epochs: LocalEpochsOption = None,
    learning_rate: LearningRateOption = None,
    max_update_norm: Annotated[
        float,
        typer.Option("--max-update-norm", help="Reject updates with a larger L2 norm (0: off)."),
    ] = 100.0,
    data: Annotated[
        Path | None, typer.Option("--data", help="Real data instead of the synthetic default.")
    ] = None,
    data_format: DataFormatOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds data, model and sampling.")] = 0,
    output: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("aicache-report"),
    registry: SimulationRegistryOption = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run of this task.")
    ] = False,
    warm_start: Annotated[
        bool, typer.Option("--warm-start", help="Start from the task's latest version.")
    ] = False,
    cpus: Annotated[int, typer.Option("--cpus", help="Ray workers.")] = 2,
    adversarial: Annotated[
        int, typer.Option("--adversarial", help="Clients that send corrupted models (experiments).")
    ] = 0,
    attack: Annotated[str, typer.Option("--attack", help="nan, scale or sign-flip.")] = "nan",
    expected_attackers: Annotated[
        int | None,
        typer.Option(
            "--expected-attackers",
            help="Attackers krum, trimmed-mean and median must withstand [--adversarial].",
        ),
    ] = None,
    dp: Annotated[
        str,
        typer.Option("--dp", help="Differential privacy: off, central, distributed or local."),
    ] = "off",
    clip: Annotated[
        float, typer.Option("--clip", help="L2 bound C on each update (initial, if adaptive).")
    ] = 1.0,
    adaptive_clip: Annotated[
        float | None,
        typer.Option(
            "--adaptive-clip",
            help="Adapt C to this quantile of the update norms (--dp central, Andrew et al.).",
        ),
    ] = None,
    clip_count_noise: Annotated[
        float | None,
        typer.Option(
            "--clip-count-noise", help="Noise σ_b on the clipped count [clients a round / 20]."
        ),
    ] = None,
    noise_multiplier: NoiseOption = None,
    target_epsilon: TargetEpsilonOption = None,
    delta: DeltaOption = None,
    accountant: AccountantOption = "rdp",
    budget: BudgetOption = None,
    secure: Annotated[
        str,
        typer.Option("--secure", help="Secure aggregation: off, secagg (SecAgg+) or he (CKKS)."),
    ] = "off",
    secagg_shares: Annotated[
        float, typer.Option("--secagg-shares", help="SecAgg+ key shares: odd count or a share.")
    ] = 1.0,
    secagg_threshold: Annotated[
        float,
        typer.Option("--secagg-threshold", help="Shares that rebuild a dropped mask (or a share)."),
    ] = 0.6,
    secagg_dropouts: Annotated[
        int,
        typer.Option("--secagg-dropouts", help="Clients that vanish mid-protocol (experiments)."),
    ] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show Flower's log.")] = False,
) -> None:
    """Run a federated simulation (real ServerApp and ClientApp on Flower's Simulation Engine).

    With [bold]--dp central[/], each sampled client clips its update to C and the
    server adds Gaussian noise z·C to their sum; ε is accounted with dp-accounting
    for the exact sampling used (a fixed share of clients each round, --fraction).
    With [bold]--dp local[/], each client clips and noises its own update (z·C) before
    sending it; ε is per client and sampling does not amplify it. Central DP also
    runs over [bold]--secure secagg[/] or [bold]he[/]: clients clip before masking or
    encrypting, the noise goes on the sum, and ε is central mode's.
    """
    require_extra("simulation")
    _quiet_flower()
    from aicache.federation.options import plan_from_options
    from aicache.simulation import runner
    from aicache.simulation.adversary import Adversary, Dropout
    from aicache.simulation.report import ARM_LABELS, ARMS, privacy_text, write_report
    from aicache.tasks.spec import get_spec

    source = _source(task, data, data_format, seed, clients)
    checked("--clients", clients, 2)
    checked("--rounds", rounds, 1)
    checked("--cpus", cpus, 1)
    source.check()  # a bad data file is named here, not in a Ray worker's traceback
    names = source.names()
    if len(names) < 2:
        raise AicacheError(
            f"--data {data}: it holds {len(names)} user's trace; a federation needs at least 2"
        )
    plan = plan_from_options(
        population=len(names),
        task=task,
        rounds=rounds,
        strategy=strategy,
        mu=mu,
        fraction=fraction,
        min_clients=min_clients,
        sample_rate=sample_rate,
        local_epochs=local_epochs,
        learning_rate=learning_rate,
        max_update_norm=max_update_norm,
        seed=seed,
        expected_attackers=expected_attackers,
        simulated_attackers=adversarial,
        dp=dp,
        clip=clip,
        adaptive_clip=adaptive_clip,
        clip_count_noise=clip_count_noise,
        noise_multiplier=noise_multiplier,
        target_epsilon=target_epsilon,
        delta=delta,
        accountant=accountant,
        budget=budget,
        secure=secure,
        secagg_shares=secagg_shares,
        secagg_threshold=secagg_threshold,
    )
    try:
        adversary = Adversary(adversarial, attack)
    except ValueError as exc:
        raise AicacheError(str(exc)) from exc

    out.print(f"[bold]{task}[/]: {source.describe()}, {rounds} rounds, strategy {strategy}")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=out,
    ) as progress:
        bar = progress.add_task("starting Flower and Ray", total=rounds)

        def on_round(report: Any) -> None:
            rejected = f", {len(report.rejected)} rejected" if report.rejected else ""
            if report.epsilon is not None:
                rejected += f", ε {report.epsilon:.2f}"
            progress.update(
                bar,
                completed=report.round,
                description=f"round {report.round}: "
                f"{headline_text(task, report.evaluate_metrics)} "
                f"({report.accepted} clients{rejected}, v{report.version})",
            )

        def on_stage(name: str) -> None:
            progress.update(bar, description=name)

        try:
            outcome = runner.run(
                plan,
                source,
                registry_root=simulation_registry_dir(registry),
                resume=resume,
                warm_start=warm_start,
                cpus=cpus,
                adversary=adversary,
                dropout=Dropout(secagg_dropouts),
                on_round=on_round,
                on_stage=on_stage,
                verbose=verbose,
            )
        except Interrupted as stop:
            progress.stop()
            again = _resume_command(task, data, data_format, clients, seed, registry, output)
            raise Interrupted(f"{stop.message}; to continue it: {again}") from None
    document = write_report(outcome, output)
    headline = get_spec(task).headline
    table = Table("arm", *(m.label for m in headline))
    for arm in ARMS:
        table.add_row(ARM_LABELS[arm], *(f"{document[arm][m.name]:.3f}" for m in headline))
    table.add_row("untrained model", *(f"{outcome.initial.get(m.name, 0):.3f}" for m in headline))
    out.print(table)
    first, last = outcome.versions[0], outcome.versions[-1]
    out.print(
        f"{len(outcome.names)} clients, {len(outcome.rounds)} rounds in {outcome.seconds:.1f} s; "
        f"registry versions {first}–{last} in {simulation_registry_dir(registry)}"
    )
    out.print(f"Privacy: {privacy_text(outcome.privacy)}")
    if outcome.stopped:
        out.print(f"[yellow]The privacy budget ended the run early: {outcome.stopped}.[/]")
    out.print(f"Report: {(output / 'index.html').resolve()}")


def evaluate(
    task: TaskOption = "next-command",
    model: Annotated[str, typer.Option("--model", help="latest or a version number.")] = "latest",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Users to evaluate on (default: a fresh synthetic population)."
        ),
    ] = None,
    data_format: DataFormatOption = None,
    cold_start: Annotated[
        int, typer.Option("--cold-start", help="Commands in each user's cold-start view.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic users.")] = 1,
    clients: Annotated[int, typer.Option("--clients", help="Synthetic users.")] = 20,
    registry: SimulationRegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a registered model on users it never saw, with a cold-start view."""
    from aicache.registry import ModelRegistry
    from aicache.simulation.evaluation import evaluate_unseen, summary
    from aicache.tasks.spec import get_spec

    source = _source(task, data, data_format, seed, clients)
    checked("--cold-start", cold_start, 1)
    with ModelRegistry(simulation_registry_dir(registry)) as reg:
        version = reg.resolve(task, model)
        params = load_model(reg, version)
        trained_on = _trained_on(reg, version.run_id)
    seen = [n for n, m in zip(source.names(), source.members(), strict=True) if m in trained_on]
    if seen:
        shown = ", ".join(seen[:5]) + (", ..." if len(seen) > 5 else "")
        err.print(
            f"warning: {len(seen)} of the {len(source.names())} users evaluated on trained "
            f"v{version.version} ({shown}): their scores are not on unseen users. "
            "Evaluate on other users (another --seed or --data).",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )
    result = summary(evaluate_unseen(task, params, source, cold_start=cold_start))
    result.update(
        task=task,
        version=version.version,
        data=source.describe(),
        cold_start=cold_start,
        seen_in_training=seen,
    )
    if as_json:
        emit_json(result)
        return
    out.print(f"[bold]{task}[/] v{version.version} on {source.describe()}")
    spec = get_spec(task)
    columns = [m.name for m in spec.headline]
    labels = [m.label for m in spec.headline]
    if spec.cold_start is not None:  # the cold-start view: the first headline metric
        columns += [f"cold_global_{columns[0]}", f"cold_own_{columns[0]}"]
        labels += [f"first {cold_start}: global {labels[0]}", f"own history {labels[0]}"]
    else:
        columns.append(f"cold_global_{columns[0]}")
        labels.append(f"first {cold_start}: global {labels[0]}")
    table = Table("user", spec.record_label, *labels)
    for row in result["per_user"]:
        table.add_row(row["user"], str(row[spec.record_label]), *(f"{row[c]:.3f}" for c in columns))
    table.add_row("macro", "", *(f"{result[c]:.3f}" for c in columns), style="bold")
    out.print(table)


def _trained_on(reg: Any, run_id: str) -> set[str]:
    """Who trained the run ``run_id`` (empty when the registry does not know it)."""
    from aicache.simulation.sources import training_members

    try:
        return training_members(reg.run(run_id).spec)
    except AicacheError:  # a version not made by a run of this registry
        return set()


def register(app: typer.Typer) -> None:
    """Add the simulation commands to ``app``."""
    app.command("simulate")(simulate)
    app.command("evaluate")(evaluate)
