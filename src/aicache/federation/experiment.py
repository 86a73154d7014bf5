"""What a simulated experiment needs from the federation layer before its rounds.

The refusal of attacks a secure mode cannot host, SecAgg+ settings fitted to
the population, and CKKS keys made by a separate key authority.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from aicache.errors import AicacheError
from aicache.extras import require_extra
from aicache.federation.plan import TrainingPlan
from aicache.privacy.combinations import refuse_experiment
from aicache.privacy.key_authority import FOR_CLIENTS, FOR_SERVER
from aicache.privacy.secure import SecAggSettings, fitted

__all__ = ["SecAggSettings", "key_authority", "refuse_attacks", "secagg_capacity"]


def refuse_attacks(plan: TrainingPlan, *, adversaries: int, dropouts: int) -> None:
    """Refuse simulated adversaries or dropouts the plan's secure mode cannot host.

    Raises
    ------
    AicacheError
        Naming the refused combination.
    """
    try:
        refuse_experiment(
            secure=plan.secure_aggregation.mode, adversaries=adversaries, dropouts=dropouts
        )
    except ValueError as exc:
        raise AicacheError(str(exc)) from exc


def secagg_capacity(plan: TrainingPlan, *, clients: int, max_weight: float) -> SecAggSettings:
    """SecAgg+ settings that fit ``clients`` whose largest weight is ``max_weight``.

    Raises
    ------
    AicacheError
        Naming what overflows.
    """
    sampled = plan.selection.per_round(clients)
    try:
        return fitted(plan.secagg, sampled=sampled, max_weight=max_weight)
    except ValueError as exc:
        raise AicacheError(str(exc), hint="Lower --fraction.") from exc


def key_authority() -> tuple[Path, Path]:
    """New CKKS keys made by a separate process: this one (the server's) reads only the
    public context, so the secret key is never in its memory."""
    require_extra("he")  # TenSEAL makes the keys
    directory = Path(tempfile.mkdtemp(prefix="aicache-keys-"))
    done = subprocess.run(
        [sys.executable, "-m", "aicache.privacy.key_authority", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise AicacheError(f"the key authority failed: {done.stderr.strip()[-500:]}")
    return directory / FOR_CLIENTS, directory / FOR_SERVER
