"""``aicache errors``: my recent error signatures, and which are common across the federation."""

from __future__ import annotations

from typing import Annotated

import typer

from aicache.cli.common import JsonOption, checked, emit_json
from aicache.cli.console import ago, out
from aicache.local.paths import aicache_home


def errors(
    n: Annotated[
        int, typer.Option("-n", "--number", help="How many error signatures (1-200).")
    ] = 10,
    as_json: JsonOption = False,
) -> None:
    """Your recent error signatures, which are common across the federation, what answered them."""
    from aicache.deploy.error_report import error_report

    checked("-n", n, 1, 200)
    report = error_report(aicache_home(), int(n))
    if as_json:
        emit_json(report.as_dict())
        return
    if not report.rows:
        out.print(
            "No error signature yet: failing commands run through `aicache run` leave one "
            "(only the tool, the error class and a template are kept)."
        )
    for row in report.rows:
        # One block per signature: a table would fold the signatures on a narrow terminal.
        if row.common is None:
            federation = "not common" if report.release is not None else "no federation view"
        else:
            trend = ", rising" if row.common.rising else ""
            federation = f"common: {row.common.band} developers ({row.common.share:.0%}){trend}"
        times = "once" if row.mine.times == 1 else f"{row.mine.times} times"
        out.print(row.mine.key, markup=False, soft_wrap=True)
        out.print(f"  {times}, last {ago(row.mine.last_ts)}; {federation}", markup=False)
        if row.mine.answer:
            out.print(
                f"  an answer followed it: aicache inspect {row.mine.answer[:12]}", markup=False
            )
    if report.release is None or report.model is None:
        out.print(f"No federation view: {report.missing}", markup=False)
        return
    terms = report.release.describe()
    epsilon = "no DP" if terms["epsilon"] is None else f"ε = {terms['epsilon']:.3g}"
    if terms["delta"] is not None:
        epsilon += f" at δ = {terms['delta']:g}"
    out.print(
        f"Federation: {report.model.label}, {terms['mechanism']} noise, {epsilon}; common means "
        f"a count at or above the threshold {terms['threshold']:.1f} "
        f"({terms['threshold_developers']:.1f} developers a round).",
        markup=False,
    )
