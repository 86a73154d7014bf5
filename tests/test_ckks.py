"""CKKS aggregation: the arithmetic, the key authority, and a server that only holds public keys."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from flwr.serverapp.strategy import FedAvg

from aicache.federation.homomorphic import HomomorphicStrategy
from aicache.privacy import ckks
from aicache.privacy.key_authority import write_keys


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return ckks.make_keys()


def test_the_sum_of_ciphertexts_decrypts_to_the_sum(keys: tuple[bytes, bytes]) -> None:
    # Prepare: vectors longer than one ciphertext's slots
    secret, public = keys
    rng = np.random.default_rng(0)
    vectors = [rng.normal(0, 1, 10_000) for _ in range(4)]
    server = ckks.load_context(public)
    # Execute: clients encrypt with the public key, the server adds
    total = ckks.add(server, [ckks.encrypt(server, v) for v in vectors])
    # Assert
    plain = ckks.decrypt(ckks.load_context(secret), total)
    assert plain.shape == (10_000,)
    assert np.abs(plain - np.sum(vectors, axis=0)).max() < 1e-6


def test_a_public_context_cannot_decrypt(keys: tuple[bytes, bytes]) -> None:
    secret, public = keys
    assert ckks.is_public(public) and not ckks.is_public(secret)
    server = ckks.load_context(public)
    with pytest.raises(ValueError, match="secret"):
        ckks.decrypt(server, ckks.encrypt(server, np.ones(3)))


def test_the_server_refuses_a_context_with_a_secret_key(keys: tuple[bytes, bytes]) -> None:
    secret, public = keys
    with pytest.raises(ValueError, match="secret key"):
        HomomorphicStrategy(FedAvg(), task="t", max_update_norm=1.0, public_context=secret)
    strategy = HomomorphicStrategy(FedAvg(), task="t", max_update_norm=1.0, public_context=public)
    assert ckks.is_public(strategy.public_context)


def test_the_key_authority_keeps_the_secret_for_clients_only(tmp_path: Path) -> None:
    for_clients, for_server = write_keys(tmp_path / "keys")
    assert stat.S_IMODE(for_clients.stat().st_mode) == 0o600
    assert ckks.is_public(for_server.read_bytes())
    assert not ckks.is_public(for_clients.read_bytes())


def test_flatten_round_trips_and_checks_sizes() -> None:
    arrays = [np.arange(6.0).reshape(2, 3), np.array([7.0])]
    back = ckks.unflatten(ckks.flatten(arrays), arrays)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, back, strict=True))
    with pytest.raises(ValueError, match="7 values"):
        ckks.unflatten(np.zeros(7), [np.zeros(3)])
