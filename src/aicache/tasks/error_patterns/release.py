"""The DP heavy-hitters release: which error keys are common, with a threshold and ε.

Method: a Gaussian-noised histogram over a public hashed domain, released
above a threshold (the histogram route to differentially private heavy
hitters: contribution bounding and Gaussian noise as in Wilson et al. 2020,
thresholding as in Korolova et al. 2009; one hash row of a count-min sketch,
Cormode & Muthukrishnan 2005). Because the domain (:data:`~.catalogue.BUCKETS`
buckets, fixed by a public hash) does not depend on anyone's data, the
threshold is post-processing: the privacy is the Gaussian mechanism's, on
contributions of L2 norm at most :data:`~.task.CONTRIBUTION_NORM`, accounted
by dp-accounting like every task's run. The threshold keeps noise out: it
is the larger of :data:`~.task.MIN_DEVELOPERS` developers per round and the
count that a bucket nobody hit exceeds with probability
:data:`FALSE_BUCKETS` / buckets, so that a release holds fewer than
:data:`FALSE_BUCKETS` noise-only buckets on average.

Noise of a summed count: under ``--dp local`` each of the ``n`` summed
contributions carries ``N(0, (zC)²)``, so the sum's is ``zC·√n``; a secure
sum noised once (``central``) carries ``zC`` per round (times
``CONTRIBUTION_NORM`` in counts: the arrays are kept in units of the bound).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from aicache.tasks.base import Params
from aicache.tasks.error_patterns.catalogue import BUCKETS, bucket
from aicache.tasks.error_patterns.task import CONTRIBUTION_NORM, MIN_DEVELOPERS, in_counts

FALSE_BUCKETS = 0.05
"""Expected noise-only buckets above the threshold in one release."""
METHOD = "noised histogram over a public hashed domain, thresholded (Gaussian mechanism)"
_BANDS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000)


@dataclass(frozen=True, slots=True)
class Release:
    """What one model version says of error keys, and with what privacy.

    Attributes
    ----------
    params
        The summed histogram ``[counts, trend, reports]``, in counts.
    rounds
        Rounds summed into it (counts are per developer and round).
    noise_std
        The standard deviation of the noise of one summed count (0 without DP).
    threshold
        A count below it is not released.
    epsilon, delta
        The privacy of the release (``None``: no DP).
    mechanism
        How it was noised (``local``, ``central``, or ``off``).
    """

    params: Params
    rounds: int
    noise_std: float
    threshold: float
    epsilon: float | None
    delta: float | None
    mechanism: str

    @property
    def developers(self) -> float:
        """About how many developers reported per round (noised)."""
        return max(float(self.params[2][0]) / self.rounds, 0.0)

    def lookup(self, key: str) -> CommonError | None:
        """What the release says of ``key``: ``None`` when it is not common."""
        index = bucket(key)
        count = float(self.params[0][index])
        if count < self.threshold:
            return None
        trend = float(self.params[1][index])
        per_round = count / self.rounds
        # Rising: more developers hit it lately than before, beyond what noise explains.
        rising = trend > max(self.threshold, 0.1 * count)
        share = per_round / self.developers if self.developers >= 1 else 0.0
        return CommonError(key, per_round, band(per_round), min(share, 1.0), rising)

    def common(self, keys: Sequence[str]) -> list[CommonError]:
        """The keys of ``keys`` the release marks common, the most common first."""
        found = [c for k in dict.fromkeys(keys) if (c := self.lookup(k)) is not None]
        return sorted(found, key=lambda c: (-c.developers, c.key))

    def describe(self) -> dict[str, Any]:
        """The release's terms: method, threshold and privacy (for JSON and tables)."""
        return {
            "method": METHOD,
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "threshold": self.threshold,
            "threshold_developers": self.threshold / self.rounds,
            "noise_std": self.noise_std,
            "rounds": self.rounds,
        }


@dataclass(frozen=True, slots=True)
class CommonError:
    """A key the federation counts as common.

    Attributes
    ----------
    key
        ``tool: signature``.
    developers
        About how many developers hit it per round (noised).
    band
        Its count band (``50-100``).
    share
        The share of reporting developers who hit it.
    rising
        Whether more of them hit it lately than before.
    """

    key: str
    developers: float
    band: str
    share: float
    rising: bool


def band(developers: float) -> str:
    """A coarse band for a count of developers: ``5-10``, ..., ``10000+``."""
    for low, high in itertools.pairwise(_BANDS):
        if developers < high:
            return f"{low}-{high}"
    return f"{_BANDS[-1]}+"


def noise_factor(buckets: int = BUCKETS, false_buckets: float = FALSE_BUCKETS) -> float:
    """How many noise deviations a count must clear (see the module)."""
    return NormalDist().inv_cdf(1.0 - false_buckets / buckets)


def threshold(noise_std: float, rounds: int) -> float:
    """The release threshold of a sum of ``rounds`` rounds whose counts carry ``noise_std``."""
    return max(float(MIN_DEVELOPERS * rounds), noise_factor() * noise_std)


def _number(stored: Mapping[str, Any], name: str) -> float | None:
    value = stored.get(name)
    return float(value) if isinstance(value, int | float) else None


def summed_noise_std(
    stored: Mapping[str, Any], contributions: float, *, per_contribution: bool = False
) -> float:
    """The noise of one summed count, from a version's stored privacy record (see the module).

    A record without DP states no noise multiplier. ``per_contribution``: each
    contribution carried its own noise (which mechanism does is the privacy
    layer's to say, read by the caller).
    """
    z, clip = _number(stored, "noise_multiplier"), _number(stored, "clip")
    if not z or not clip:
        return 0.0
    per = z * clip * CONTRIBUTION_NORM
    if per_contribution:
        return per * math.sqrt(max(contributions, 1.0))
    return per * math.sqrt(max(int(_number(stored, "rounds") or 1), 1))


def release_of(
    params: Params,
    stored: Mapping[str, Any] | None,
    *,
    rounds: int | None = None,
    per_contribution: bool = False,
) -> Release:
    """The release of a model version: its histogram read with its stored privacy record.

    The rounds summed into it are the record's; a record without DP states
    none, and then ``rounds`` (the version's round in its run) is used, else 1.
    ``per_contribution``: the record's mechanism noised each contribution
    (``--dp local``) rather than the sum once.
    """
    record = dict(stored or {})
    rounds = max(int(_number(record, "rounds") or rounds or 1), 1)
    counts = in_counts(params)
    std = summed_noise_std(record, float(counts[2][0]), per_contribution=per_contribution)
    return Release(
        params=counts,
        rounds=rounds,
        noise_std=std,
        threshold=threshold(std, rounds),
        epsilon=_number(record, "epsilon"),
        delta=_number(record, "delta"),
        mechanism=str(record.get("dp", "off")),
    )
