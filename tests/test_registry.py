"""The model registry: versions, lineage, artifacts that cannot run code, rollback."""

from __future__ import annotations

import io
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from aicache.errors import AicacheError
from aicache.local import schema as store_schema
from aicache.registry import ArtifactError, ModelRegistry
from aicache.registry.artifacts import artifact_path, decode_arrays, encode_arrays
from aicache.registry.model_registry import APPLICATION_ID, STORE_APPLICATION_ID

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


def test_a_foreign_database_is_refused_by_name_and_left_untouched(tmp_path: Path) -> None:
    # Prepare: another program's SQLite file where the registry would be.
    root = tmp_path / "reg"
    root.mkdir()
    foreign = root / "registry.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('keep me')")
    db.close()
    before = foreign.read_bytes()
    # Execute / Assert
    with pytest.raises(AicacheError, match="SQLite database of another program") as raised:
        ModelRegistry(root)
    assert str(foreign) in raised.value.message and "store.db" not in str(raised.value)
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == ["registry.db"]


def test_the_store_is_not_taken_for_a_registry(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    root.mkdir()
    with sqlite3.connect(root / "registry.db") as db:
        db.execute(f"PRAGMA application_id = {STORE_APPLICATION_ID}")
        db.execute("CREATE TABLE versions (x)")
    db.close()
    with pytest.raises(AicacheError, match="aicache's private store, not a model registry"):
        ModelRegistry(root)
    assert STORE_APPLICATION_ID == store_schema.APPLICATION_ID


def test_a_registry_made_before_the_mark_is_adopted(tmp_path: Path) -> None:
    # Prepare: an unmarked registry with one version, as older releases wrote it.
    root = tmp_path / "reg"
    with ModelRegistry(root) as registry:
        _register(registry, ARRAYS, 1, None)
    with sqlite3.connect(root / "registry.db") as db:
        db.execute("PRAGMA application_id = 0")
        db.execute("PRAGMA user_version = 0")
    db.close()
    # Execute
    with ModelRegistry(root) as registry:
        versions = registry.versions()
    # Assert
    with sqlite3.connect(root / "registry.db") as db:
        marks = (
            db.execute("PRAGMA application_id").fetchone()[0],
            db.execute("PRAGMA user_version").fetchone()[0],
        )
    db.close()
    assert [v.version for v in versions] == [1]
    assert marks == (APPLICATION_ID, 1)


def test_a_registry_from_a_newer_aicache_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    ModelRegistry(root).close()
    with sqlite3.connect(root / "registry.db") as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(AicacheError, match="written by a newer aicache"):
        ModelRegistry(root)
