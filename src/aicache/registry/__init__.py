"""Model versions: metadata in SQLite, content-addressed artifacts, the privacy ledger."""

from aicache.registry.artifacts import ArtifactError, load_arrays, save_arrays
from aicache.registry.model_registry import ModelRegistry, ModelVersion, RunRecord

__all__ = [
    "ArtifactError",
    "ModelRegistry",
    "ModelVersion",
    "RunRecord",
    "load_arrays",
    "save_arrays",
]
