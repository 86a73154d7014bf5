"""The key authority: makes a federation's CKKS keys, in a process of its own.

``python -m aicache.privacy.key_authority DIR`` writes ``DIR/clients.ckks``
(the secret context, for clients, owner-only) and ``DIR/server.ckks`` (the
public context, for the server). Running it
as a separate process keeps the secret key out of the server's memory even in
a simulation, where server and clients share a machine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aicache.privacy.ckks import make_keys

FOR_CLIENTS = "clients.ckks"
FOR_SERVER = "server.ckks"


def write_keys(directory: Path) -> tuple[Path, Path]:
    """Make new keys in ``directory``; returns ``(secret, public)`` paths."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret, public = make_keys()
    secret_path, public_path = directory / FOR_CLIENTS, directory / FOR_SERVER
    descriptor = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secret)
    public_path.write_bytes(public)
    return secret_path, public_path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m aicache.privacy.key_authority DIR")
    write_keys(Path(sys.argv[1]))
