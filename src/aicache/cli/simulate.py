"""Federated simulation commands: simulate and evaluate."""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import replace
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


def _quiet_flower() -> None:
    # Before anything imports Flower or Ray: no telemetry, no update checks.
    from aicache.federation.environment import QUIET_ENVIRONMENT

    os.environ.update(QUIET_ENVIRONMENT)


def _resume_command(
    task: str,
    data: Path | None,
    data_format: str,
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
        words += ["--data", str(data), "--format", data_format]
    else:
        words += ["--clients", str(clients)]
    words += ["--seed", str(seed)]
    if registry is not None:
        words += ["--registry", str(registry)]
    words += ["--out", str(output)]
    return shlex.join(words)


def _dp_plan(
    mode: str,
    clip: float,
    noise_multiplier: float | None,
    target_epsilon: float | None,
    delta: float | None,
    accountant: str,
    budget: float | None,
    *,
    population: int,
    selection: Any,
    rounds: int,
    secagg: Any,
    secure: str = "off",
    sample_rate: float | None = None,
    adaptive_clip: float | None = None,
    clip_count_noise: float | None = None,
) -> Any:
    """The run's DP plan from the flags (errors name the flag)."""
    from aicache.privacy.accounting import Sampling
    from aicache.privacy.central import DP_MODES, DpPlan, default_delta

    if mode not in DP_MODES:
        raise AicacheError(f"--dp: unknown mode {mode!r}: choose one of {', '.join(DP_MODES)}")
    if mode == "off":
        if noise_multiplier is not None or target_epsilon is not None or budget is not None:
            raise AicacheError(
                "--noise-multiplier, --target-epsilon and --budget need --dp central, "
                "distributed or local"
            )
        return DpPlan()
    if (noise_multiplier is None) == (target_epsilon is None):
        raise AicacheError(
            f"--dp {mode} needs exactly one of --noise-multiplier or --target-epsilon"
        )
    if sample_rate is not None:
        sampling = Sampling("poisson", rate=sample_rate, population=population)
    else:
        size = max(int(population * selection.fraction), selection.min_clients)
        sampling = Sampling("fixed", population=population, size=min(size, population))
    chosen_delta = default_delta(population) if delta is None else delta
    survivors = 0
    if mode == "distributed":
        # CKKS has no reconstruction threshold: a round needs every sampled client.
        survivors = sampling.size if secure == "he" else min_survivors(secagg, sampling.size)
    quantile, count_noise = 0.0, 0.0
    if adaptive_clip is not None:
        if mode != "central":
            raise AicacheError("--adaptive-clip is an option of --dp central")
        # Andrew et al.'s default: a twentieth of the clients a round.
        quantile = adaptive_clip
        count_noise = sampling.size / 20 if clip_count_noise is None else clip_count_noise
    elif clip_count_noise is not None:
        raise AicacheError("--clip-count-noise needs --adaptive-clip")
    if target_epsilon is not None:
        return DpPlan.calibrated(
            target_epsilon=target_epsilon,
            rounds=rounds,
            clip=clip,
            delta=chosen_delta,
            accountant=accountant,
            sampling=sampling,
            mode=mode,
            min_survivors=survivors,
            target_quantile=quantile,
            clipped_count_stddev=count_noise,
        )
    assert noise_multiplier is not None
    return DpPlan(
        mode,
        clip,
        noise_multiplier,
        chosen_delta,
        accountant,
        sampling,
        budget,
        survivors,
        quantile,
        count_noise,
    )


def _selection(
    fraction: float | None,
    min_clients: int | None,
    sample_rate: float | None,
    dp: str,
    *,
    population: int,
) -> Any:
    """Who trains each round: a fixed share (``--fraction``) or a Poisson sample."""
    from aicache.federation.strategies import Selection

    if sample_rate is None:
        share = 1.0 if fraction is None else fraction
        fewest = 2 if min_clients is None else min_clients
        return Selection(share, min(fewest, population), min_available=population)
    if fraction is not None or min_clients is not None:
        raise AicacheError(
            "--sample-rate (Poisson sampling) and --fraction/--min-clients (a fixed number "
            "of clients a round) exclude each other: give one"
        )
    if dp != "central":
        raise AicacheError(
            "--sample-rate needs --dp central: it is the sampling the central DP accountant "
            "amplifies with (use --fraction otherwise)"
        )
    if not 0.0 < sample_rate <= 1.0:
        raise AicacheError(f"--sample-rate: invalid rate {sample_rate}: it must be in (0, 1]")
    # Only training is Poisson-sampled; evaluation asks about the same share, at least one.
    return Selection(sample_rate, 1, min_available=population)


def robust_spec(spec: Any, expected: int | None, per_round: int, *, simulated: int = 0) -> Any:
    """``spec`` told how many attackers to withstand (``--expected-attackers``).

    Unset, a robust rule expects the run's simulated attackers (``--adversarial``)
    and the other rules none: Krum with ``num_malicious_nodes`` 0 under attack
    would score updates as if every client were honest.
    """
    from aicache.federation.strategies import ROBUST_STRATEGIES, expecting_attackers

    if expected is None:
        expected = simulated if spec.name in ROBUST_STRATEGIES else 0
    try:
        return expecting_attackers(spec, expected, per_round)
    except ValueError as exc:
        raise AicacheError(
            f"--expected-attackers {expected}: {exc}",
            hint="Ask more clients a round (--fraction, --min-clients) or choose another rule.",
        ) from exc


def min_survivors(secagg: Any, sampled: int) -> int:
    """The fewest clients a SecAgg+ round can complete with: its reconstruction threshold.

    Rounded up from Flower's own arithmetic, so the accountant never assumes
    more noise than the smallest completing round holds.
    """
    shares = secagg.num_shares
    count = sampled if shares == 1.0 else int(shares) if shares > 1 else round(shares * sampled)
    threshold = secagg.reconstruction_threshold
    needed = int(threshold) if threshold > 1 else math.ceil(threshold * count)
    return min(sampled, max(2, needed))


def _source(task: str, data: Path | None, data_format: str, seed: int, clients: int) -> Any:
    """The population of ``task`` that the flags name: ``--data`` in ``--format``, or synthetic.

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
    spec = get_spec(task)
    if (data is not None or spec.formats) and data_format not in spec.formats:
        known = ", ".join(spec.formats) or "none: it runs on its synthetic population only"
        raise AicacheError(f"--format: unknown format {data_format!r}: choose one of {known}")
    return spec.source(
        data=None if data is None else str(data),
        data_format=data_format,
        seed=seed,
        clients=clients,
    )


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
    data_format: Annotated[str, typer.Option("--format", help="Format of --data.")] = "greenberg",
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
    _quiet_flower()
    from aicache.federation.plan import TrainingPlan
    from aicache.federation.strategies import StrategySpec
    from aicache.privacy.secure import SecAggSettings
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
    try:
        settings = {"proximal_mu": mu} if mu is not None else {}
        selection = _selection(fraction, min_clients, sample_rate, dp, population=len(names))
        spec = robust_spec(
            StrategySpec(strategy, settings),
            expected_attackers,
            selection.per_round(len(names)),
            simulated=adversarial,
        )
        secagg_settings = SecAggSettings(secagg_shares, secagg_threshold)
        dp_plan = _dp_plan(
            dp,
            clip,
            noise_multiplier,
            target_epsilon,
            delta,
            accountant,
            budget,
            population=len(names),
            selection=selection,
            rounds=rounds,
            secagg=secagg_settings,
            secure=secure,
            sample_rate=sample_rate,
            adaptive_clip=adaptive_clip,
            clip_count_noise=clip_count_noise,
        )
        plan = TrainingPlan(
            task=task,
            rounds=rounds,
            strategy=spec,
            selection=selection,
            seed=seed,
            max_update_norm=max_update_norm,
            dp=dp_plan,
            secure=secure,
            secagg=secagg_settings,
        )
        # Unset flags keep the plan's defaults, so the two never drift apart.
        if learning_rate is not None:
            plan = replace(plan, learning_rate=learning_rate)
        if local_epochs is not None:
            plan = replace(plan, local_epochs=local_epochs)
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
    data_format: Annotated[str, typer.Option("--format", help="Format of --data.")] = "greenberg",
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
        table.add_row(row["user"], str(row["records"]), *(f"{row[c]:.3f}" for c in columns))
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
