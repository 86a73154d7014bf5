"""CKKS homomorphic encryption of model updates (TenSEAL), as small functions.

A key authority (at enrolment; in simulation, a step before the run) makes a
context: the secret one goes to clients only, the public one (no secret key)
to the server, which can then add ciphertexts but never read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from aicache.extras import LazyModule

if TYPE_CHECKING:
    import tenseal as ts
else:  # TenSEAL is the `he` extra: imported on first use, so importing this stays cheap
    ts = LazyModule("he", "tenseal")

POLY_MODULUS_DEGREE = 8192
COEFF_MOD_BIT_SIZES = (60, 40, 40, 60)
GLOBAL_SCALE = 2.0**40
# Slots of one ciphertext: vectors are cut into pieces of this size, so every
# piece fits one ciphertext (TenSEAL would otherwise split it and warn).
SLOTS = POLY_MODULUS_DEGREE // 2


def make_keys() -> tuple[bytes, bytes]:
    """A new CKKS context: ``(secret, public)``, both serialised.

    The public form holds the public and Galois keys only: it can encrypt and
    add, not decrypt.
    """
    context = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=POLY_MODULUS_DEGREE,
        coeff_mod_bit_sizes=list(COEFF_MOD_BIT_SIZES),
    )
    context.global_scale = GLOBAL_SCALE
    context.generate_galois_keys()
    secret = context.serialize(save_secret_key=True)
    context.make_context_public()
    return secret, context.serialize()


def load_context(data: bytes) -> ts.Context:
    """A context from its serialised form."""
    return ts.context_from(data)


def is_public(data: bytes) -> bool:
    """Whether a serialised context lacks the secret key."""
    return not load_context(data).is_private()


Ciphertext = list[bytes]
"""A vector's serialised ciphertexts, one per piece of :data:`SLOTS` values."""


def encrypt(context: ts.Context, vector: np.ndarray) -> Ciphertext:
    """The ciphertext of a flat float vector."""
    values = np.asarray(vector, dtype=np.float64)
    return [
        bytes(ts.ckks_vector(context, values[start : start + SLOTS].tolist()).serialize())
        for start in range(0, max(values.size, 1), SLOTS)
    ]


def add(context: ts.Context, ciphertexts: list[Ciphertext]) -> Ciphertext:
    """The ciphertext of the sum (needs only a public context).

    Raises
    ------
    ValueError
        If there is nothing to add or the ciphertexts have different lengths.
    """
    if not ciphertexts or len({len(c) for c in ciphertexts}) != 1:
        raise ValueError("need one or more ciphertexts of the same length")
    sums = []
    for pieces in zip(*ciphertexts, strict=True):
        total = ts.ckks_vector_from(context, pieces[0])
        for piece in pieces[1:]:
            total += ts.ckks_vector_from(context, piece)
        sums.append(bytes(total.serialize()))
    return sums


def add_plain(context: ts.Context, ciphertext: Ciphertext, vector: np.ndarray) -> Ciphertext:
    """The ciphertext of the plaintext of ``ciphertext`` plus ``vector`` (public context only)."""
    values = np.asarray(vector, dtype=np.float64)
    if values.size > len(ciphertext) * SLOTS or values.size <= (len(ciphertext) - 1) * SLOTS:
        raise ValueError(f"a vector of {values.size} values does not match the ciphertext")
    return [
        bytes(
            (
                ts.ckks_vector_from(context, piece)
                + values[index * SLOTS : (index + 1) * SLOTS].tolist()
            ).serialize()
        )
        for index, piece in enumerate(ciphertext)
    ]


def decrypt(context: ts.Context, ciphertext: Ciphertext) -> np.ndarray:
    """The plaintext of a ciphertext (needs the secret context)."""
    return np.concatenate(
        [np.asarray(ts.ckks_vector_from(context, piece).decrypt()) for piece in ciphertext]
    ).astype(np.float64)


def to_arrays(ciphertext: Ciphertext) -> list[np.ndarray]:
    """A ciphertext as byte arrays, the form model records carry."""
    return [np.frombuffer(piece, dtype=np.uint8).copy() for piece in ciphertext]


def from_arrays(arrays: list[np.ndarray]) -> Ciphertext:
    """The ciphertext carried by :func:`to_arrays`' arrays."""
    return [np.asarray(a, dtype=np.uint8).tobytes() for a in arrays]


def flatten(arrays: list[np.ndarray]) -> np.ndarray:
    """All arrays as one flat float vector."""
    return np.concatenate([np.ravel(a).astype(np.float64) for a in arrays])


def unflatten(vector: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """Split a flat vector back into arrays shaped like ``like``."""
    arrays, start = [], 0
    for array in like:
        arrays.append(vector[start : start + array.size].reshape(array.shape))
        start += array.size
    if start != vector.size:
        raise ValueError(f"the vector has {vector.size} values, the arrays hold {start}")
    return arrays
