"""Helpers shared by the command modules: opening the store, reading options."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from aicache.cli.console import out
from aicache.errors import AicacheError
from aicache.local.paths import SIMULATIONS_DIRNAME, aicache_home, ensure_private_dir
from aicache.local.store import Store


def open_store() -> Store:
    """Open the store under the aicache home (errors are printed by the app)."""
    return Store.open(aicache_home())


def bad_value(exc: ValueError, option: str) -> AicacheError:
    """Turn a validation error into a CLI error naming the option."""
    return AicacheError(f"{option}: {exc}")


def emit_json(document: object, output: Path | None = None) -> None:
    """Write ``document`` as JSON to ``output`` (owner-only) or to standard output."""
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.touch(mode=0o600, exist_ok=True)
        output.chmod(0o600)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AicacheError(f"cannot write {output}: {exc.strerror or exc}") from exc


def confirm(question: str, yes: bool) -> bool:
    """Ask ``question`` unless ``yes``; refuse without a terminal to ask on."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise AicacheError(
            f"{question} needs confirmation and there is no terminal to ask on",
            hint="Pass --yes to confirm.",
        )
    return typer.confirm(question, default=False)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


RegistryOption = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        help="The model registry directory (default: $AICACHE_HOME/registry, what suggest serves).",
    ),
]
SimulationRegistryOption = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        help="Where simulations register their versions (default: $AICACHE_HOME/simulations, "
        "never the registry suggest serves from).",
    ),
]
TaskOption = Annotated[str, typer.Option("--task", help="The task.")]

# Flags `simulate` and `server run` share.
LocalEpochsOption = Annotated[
    int | None, typer.Option("--local-epochs", help="Epochs per round (default: 2).")
]
LearningRateOption = Annotated[
    float | None, typer.Option("--learning-rate", help="Local step size (default: 0.01).")
]
NoiseOption = Annotated[
    float | None, typer.Option("--noise-multiplier", help="Noise z (std z·C on the sum).")
]
TargetEpsilonOption = Annotated[
    float | None, typer.Option("--target-epsilon", help="Calibrate z so the run ends at this ε.")
]
DeltaOption = Annotated[
    float | None, typer.Option("--delta", help="δ of the guarantee (default: min(1e-5, 0.1/N)).")
]
AccountantOption = Annotated[str, typer.Option("--accountant", help="rdp or pld.")]
BudgetOption = Annotated[
    float | None, typer.Option("--budget", help="Stop before a round would take ε past this.")
]


def registry_dir(registry: Path | None) -> Path:
    """The registry directory: ``--registry`` or ``$AICACHE_HOME/registry``.

    The aicache home is made owner-only first: creating the registry inside it
    must not leave the home readable by others.
    """
    if registry is not None:
        return registry
    return ensure_private_dir(aicache_home()) / "registry"


def simulation_registry_dir(registry: Path | None) -> Path:
    """Where simulations register versions: ``--registry`` or ``$AICACHE_HOME/simulations``.

    Apart from :func:`registry_dir` so that an experiment (or ``make demo``)
    never changes the model ``suggest`` and ``prefetch`` serve.
    """
    if registry is not None:
        return registry
    return ensure_private_dir(aicache_home()) / SIMULATIONS_DIRNAME


def load_model(registry: Any, version: Any) -> Any:
    """A version's arrays for use; a model pulled from a federation is verified first.

    Raises
    ------
    AicacheError
        If a pulled model no longer matches its signature (it is not used).
    """
    from aicache.deploy.serving import load_verified

    return load_verified(registry, version)


def stay_in_foreground(
    running: Callable[[], bool],
    stop: Callable[[], object],
    *,
    exited: Callable[[], str],
    stopped: str,
) -> None:
    """Wait while a supervised process runs; Ctrl-C stops it, its own exit is an error."""
    try:
        while running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop()
        out.print(stopped)
        return
    out.print(exited())
    raise typer.Exit(1)


def checked(name: str, value: float, low: float, high: float | None = None) -> float:
    """``value`` if it lies in the range, else a CLI error naming the option and the range."""
    if not math.isfinite(value):
        raise AicacheError(f"{name} {value} is not a finite number")
    if value < low or (high is not None and value > high):
        limit = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise AicacheError(f"{name} {value:g} is out of range: it must be {limit}")
    return value


class FiniteFloat(click.types.FloatParamType):
    """A float option that refuses NaN and infinities.

    Python's ``float()`` reads ``nan`` and ``inf``, and every range check
    passes NaN (each comparison with it is false): ``--max-update-norm nan``
    would silently turn the norm check off, and ``--clip nan`` would start Ray
    before failing.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number, or a usage error naming the option."""
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def finite_floats(command: click.Command) -> click.Command:
    """``command`` with every float option of it and its subcommands made :class:`FiniteFloat`.

    Done once over the whole command tree, so a flag added later cannot miss it.
    """
    for param in command.params:
        if type(param.type) is click.types.FloatParamType:
            param.type = FiniteFloat()
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            finite_floats(sub)
    return command
