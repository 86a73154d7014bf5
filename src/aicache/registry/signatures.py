"""Signed manifests of model versions: what a node verifies before it uses a model."""

from __future__ import annotations

from aicache.registry.database import RegistryDatabase


class SignatureBook:
    """The ``signatures`` table: each version's signed manifest and its signature.

    Parameters
    ----------
    db
        The open registry database.
    """

    def __init__(self, db: RegistryDatabase) -> None:
        self._db = db

    def add(self, task: str, version: int, manifest: bytes, signature: bytes) -> None:
        """Keep the signed manifest of ``version`` (what clients verify before use)."""
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO signatures (task, version, manifest, signature) "
                "VALUES (?, ?, ?, ?)",
                (task, version, manifest.decode(), signature),
            )

    def get(self, task: str, version: int) -> tuple[bytes, bytes] | None:
        """The signed manifest and signature of ``version``, if it has them."""
        row = self._db.conn.execute(
            "SELECT manifest, signature FROM signatures WHERE task = ? AND version = ?",
            (task, version),
        ).fetchone()
        return None if row is None else (row[0].encode(), bytes(row[1]))

    def manifests(self, task: str) -> dict[int, bytes]:
        """Every signed manifest of ``task``, by local version number."""
        rows = self._db.conn.execute(
            "SELECT version, manifest FROM signatures WHERE task = ? ORDER BY version", (task,)
        ).fetchall()
        return {int(row[0]): row[1].encode() for row in rows}
