"""The model registry: versions, lineage, artifacts that cannot run code, rollback."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from aicache.errors import AicacheError
from aicache.registry import ArtifactError, ModelRegistry
from aicache.registry.artifacts import artifact_path, decode_arrays, encode_arrays

ARRAYS = [np.arange(6, dtype=np.float64).reshape(2, 3), np.array([0.5, -1.0])]


def _register(registry: ModelRegistry, arrays: list[np.ndarray], round: int, parent: int | None):
    return registry.register(
        "next-command",
        arrays,
        run_id="run-1",
        round=round,
        parent=parent,
        strategy="fedavg",
        strategy_config={},
        num_clients=3,
        metrics={"eval.top1": 0.1 * round},
        privacy={"dp": "off"},
    )


def test_versions_chain_and_round_trip(tmp_path: Path) -> None:
    # Prepare
    with ModelRegistry(tmp_path / "reg") as registry:
        # Execute
        first = _register(registry, ARRAYS, 1, None)
        second = _register(registry, [a * 2 for a in ARRAYS], 2, first.version)
        loaded = registry.load(registry.resolve("next-command", "latest"))
        # Assert
        assert (first.version, second.version, second.parent) == (1, 2, 1)
        assert all(np.array_equal(a, b * 2) for a, b in zip(loaded, ARRAYS, strict=True))
        assert [v.version for v in registry.versions("next-command")] == [1, 2]
        assert registry.resolve("next-command", "1").metrics == {"eval.top1": 0.1}


def test_a_second_process_sees_the_same_versions(tmp_path: Path) -> None:
    with ModelRegistry(tmp_path / "reg") as registry:
        _register(registry, ARRAYS, 1, None)
    with ModelRegistry(tmp_path / "reg") as registry:
        assert registry.latest("next-command") is not None


def test_rollback_makes_an_old_model_current_and_keeps_history(tmp_path: Path) -> None:
    with ModelRegistry(tmp_path / "reg") as registry:
        first = _register(registry, ARRAYS, 1, None)
        _register(registry, [a + 1 for a in ARRAYS], 2, 1)
        restored = registry.rollback("next-command", first)
        assert restored.version == 3
        assert restored.sha256 == first.sha256
        assert restored.note == "rollback to version 1"
        latest = registry.load(registry.resolve("next-command", "latest"))
        assert all(np.array_equal(a, b) for a, b in zip(latest, ARRAYS, strict=True))


def test_an_altered_artifact_is_refused(tmp_path: Path) -> None:
    with ModelRegistry(tmp_path / "reg") as registry:
        version = _register(registry, ARRAYS, 1, None)
        path = artifact_path(registry.artifacts, version.sha256)
        data = bytearray(path.read_bytes())
        data[-30] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match="altered"):
            registry.load(version)


def test_unknown_versions_are_named(tmp_path: Path) -> None:
    with ModelRegistry(tmp_path / "reg") as registry:
        with pytest.raises(AicacheError, match="no version latest"):
            registry.resolve("next-command", "latest")
        with pytest.raises(AicacheError, match="invalid model version 'newest'"):
            registry.resolve("next-command", "newest")


def test_artifacts_never_unpickle() -> None:
    # Prepare: an .npz whose only member is a pickled object array
    buffer = io.BytesIO()
    np.savez(buffer, np.array([{"evil": True}], dtype=object))
    # Execute / Assert
    with pytest.raises(ArtifactError, match="not a plain array archive"):
        decode_arrays(buffer.getvalue())
    with pytest.raises(ArtifactError):
        decode_arrays(pickle.dumps(ARRAYS))
    with pytest.raises(ValueError, match="dtype object"):
        encode_arrays([np.array([None], dtype=object)])


def test_unfinished_runs_are_found_for_resuming(tmp_path: Path) -> None:
    with ModelRegistry(tmp_path / "reg") as registry:
        done = registry.start_run("next-command", {"rounds": 3})
        registry.finish_run(done, "finished")
        assert registry.unfinished_run("next-command") is None
        crashed = registry.start_run("next-command", {"rounds": 5})
        record = registry.unfinished_run("next-command")
        assert record is not None and record.run_id == crashed and record.spec == {"rounds": 5}
