"""Local differential privacy: a client mod that noises the update before it leaves.

Under ``--dp local`` the server is not trusted with anything un-noised. Each
sampled client clips its update ``Δ`` to L2 norm ``C`` and sends
``w + clip(Δ) + N(0, z²C²·I)`` with weight 1 and no training statistic; the
noise is drawn from the operating system's entropy.

Privacy of one round, for one client: neighbouring inputs are two versions of
that client's own data (replace one client's data), the clipped updates lie
in a ball of radius ``C``, so the released vector moves by at most ``2C``
(sensitivity ``2C``) and the round is the Gaussian mechanism with noise
multiplier ``z / 2``. The server picks the clients and sees who replies, so
sampling gives no amplification from the client's point of view; a client's
ε composes the rounds it took part in (a version records the worst case, all
of them). The server may aggregate these updates by any rule: that is
post-processing and costs no privacy.

Flower's own ``LocalDpMod`` calibrates its noise with the classic one-shot
bound ``σ = Δ·sqrt(2 ln(1.25/δ))/ε`` (valid only for ε < 1, with no
composition over rounds) and draws it from numpy's global generator; this
mod takes ``z`` and leaves ε to the accountant, like the other modes.

Limitation: the clipping norm and noise come in the round's configuration,
so a client trusts the server to ask for enough noise; it refuses a request
with no noise at all, but a deployment should pin a floor on the client.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.constant import ErrorCode

from aicache.federation.validation import META, NUM_EXAMPLES
from aicache.privacy.noise import noised_update

LOCAL_DP_CLIP = "local-dp-clip"
LOCAL_DP_STD = "local-dp-std"


def local_dp_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Clip and noise the reply's update on the client when the round asks for local DP.

    A round without the local-DP settings passes through untouched.
    """
    config = message.content.config_records.get("config")
    if config is None or LOCAL_DP_CLIP not in config:
        return call_next(message, context)
    clip, std = config.get(LOCAL_DP_CLIP), config.get(LOCAL_DP_STD)
    if not isinstance(clip, int | float) or not isinstance(std, int | float) or min(clip, std) <= 0:
        reason = f"local DP needs a clipping norm and noise above 0, got {clip!r} and {std!r}"
        return Message(
            Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=reason), reply_to=message
        )
    reference = message.content.array_records["arrays"].to_numpy_ndarrays()
    reply = call_next(message, context)
    if reply.has_error():
        return reply
    model = reply.content.array_records["arrays"].to_numpy_ndarrays()
    sent = noised_update(model, reference, clip=float(clip), std=float(std))
    meta = reply.content.config_records.get(META, ConfigRecord())
    content = RecordDict(
        {
            "arrays": ArrayRecord([s.astype(m.dtype) for s, m in zip(sent, model, strict=True)]),
            # The example count and training metrics are functions of the private data
            # with no noise on them: they stay on the client.
            "metrics": MetricRecord({NUM_EXAMPLES: 1}),
            META: meta,
        }
    )
    return Message(content, reply_to=message)
