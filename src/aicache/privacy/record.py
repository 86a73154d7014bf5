"""The privacy record stored with each model version, typed.

The registry stores it as JSON (:meth:`PrivacyRecord.as_dict`); readers —
the report, ``models list``/``show``, a node's privacy view — rebuild it with
:meth:`PrivacyRecord.from_dict`, which also reads what earlier versions stored
(a bare ``{"dp": "off"}``, or a record without the federation's ε).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aicache.privacy.accounting import SamplingKind
from aicache.privacy.modes import DpMode

COVERS = "the model parameters; evaluation metrics are not covered by epsilon"
# Keys written by the mechanism's guarantee and the clipping description, flattened
# into the stored record as they always were.
_GUARANTEE = ("protects", "neighbouring", "released", "sensitivity", "noise_std", "amplification")
_CLIPPING = ("clipping", "target_quantile", "clipped_count_stddev", "update_noise_multiplier")
_SCALARS = (
    "mechanism",
    "noise_multiplier",
    "effective_noise_multiplier",
    "clip",
    "sampling",
    "rounds",
    "epsilon",
    "delta",
    "accountant",
    "budget",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivacyRecord:
    """What a model version's release cost in privacy, and what the guarantee means.

    Attributes
    ----------
    dp
        The DP mechanism's name (``off``: no guarantee, ε is infinite).
    mechanism
        The noise distribution (``gaussian``).
    noise_multiplier, effective_noise_multiplier
        ``z`` as run, and the multiplier the accountant counted on.
    clip
        The clipping norm ``C`` (initial, when it adapts).
    sampling
        The sampling as accounted, with its expected rate.
    rounds
        Rounds of the run composed into :attr:`epsilon`.
    epsilon, delta, accountant, budget
        The run's ε at δ, by which accountant, and the budget it stops at.
    guarantee
        Who ε protects, the neighbouring relation, the sensitivity and noise.
    clipping
        Fixed or adaptive clipping, with the adaptive settings.
    covers
        What ε covers.
    federation, federation_epsilon
        The federation and ε over all runs on its data (``None`` when not known).
    extra
        Fields this version of aicache does not know, kept as they were stored.
    """

    dp: DpMode = DpMode.OFF
    mechanism: str | None = None
    noise_multiplier: float | None = None
    effective_noise_multiplier: float | None = None
    clip: float | None = None
    sampling: dict[str, Any] | None = None
    rounds: int | None = None
    epsilon: float | None = None
    delta: float | None = None
    accountant: str | None = None
    budget: float | None = None
    guarantee: dict[str, Any] = field(default_factory=dict)
    clipping: dict[str, Any] = field(default_factory=dict)
    covers: str = COVERS
    federation: str | None = None
    federation_epsilon: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dp", DpMode(self.dp))

    @property
    def enabled(self) -> bool:
        """Whether the version was trained with differential privacy."""
        return self.dp is not DpMode.OFF

    def describe(self) -> str:
        """One line on the differential privacy this record claims (reports, ``simulate``)."""
        if not self.enabled:
            return "no differential privacy in this run"
        sampling = dict(self.sampling or {})
        sampled = (
            f"each of {sampling['population']} clients with chance {sampling['rate']:g} a round"
            if SamplingKind(sampling["kind"]) is SamplingKind.POISSON
            else f"{sampling['size']} of {sampling['population']} clients a round"
        )
        overall = self.federation_epsilon
        return (
            f"{self.dp} DP, Gaussian noise z = {self.noise_multiplier:.3f}, clip "
            f"C = {self.clip:g}, {sampled}: "
            f"ε = {self.epsilon:.3f} at δ = {self.delta:g} ({self.accountant})"
            + (
                f"; ε on this federation over all runs: {overall:.3f}"
                if overall is not None and overall != self.epsilon
                else ""
            )
        )

    def with_federation(self, federation: str, federation_epsilon: float) -> PrivacyRecord:
        """This record with the federation it was spent on and the ε over all its runs."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(federation=federation, federation_epsilon=federation_epsilon)
        return PrivacyRecord(**values)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready form the registry stores (the same keys as ever)."""
        if not self.enabled:
            return {"dp": DpMode.OFF.value, **self.extra}
        stored: dict[str, Any] = {"dp": self.dp.value}
        stored.update({name: getattr(self, name) for name in _SCALARS})
        stored.update(self.guarantee)
        stored.update(self.clipping)
        stored["covers"] = self.covers
        if self.federation is not None:
            stored["federation"] = self.federation
        if self.federation_epsilon is not None:
            stored["federation_epsilon"] = self.federation_epsilon
        stored.update(self.extra)
        return stored

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PrivacyRecord:
        """Rebuild a record from what the registry stored (any earlier form included)."""
        values = dict(data or {})
        dp = values.pop("dp", DpMode.OFF.value)
        if dp not in tuple(DpMode):  # a mechanism this version does not know: no claim
            return cls(dp=DpMode.OFF, extra={"dp": dp, **values})
        known: dict[str, Any] = {name: values.pop(name) for name in _SCALARS if name in values}
        guarantee = {name: values.pop(name) for name in _GUARANTEE if name in values}
        clipping = {name: values.pop(name) for name in _CLIPPING if name in values}
        covers = values.pop("covers", COVERS)
        federation = values.pop("federation", None)
        federation_epsilon = values.pop("federation_epsilon", None)
        return cls(
            dp=DpMode(dp),
            **known,
            guarantee=guarantee,
            clipping=clipping,
            covers=covers,
            federation=federation,
            federation_epsilon=federation_epsilon,
            extra=values,
        )
