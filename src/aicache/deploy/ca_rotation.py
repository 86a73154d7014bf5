"""Renewing a federation's server certificate, and rolling its CA without breaking bundles.

Rolling the CA keeps the old one trusted for an overlap window: the server
presents its new certificate with a bridge (the new CA certified by the old),
so bundles carrying only the old CA keep working, and bundles issued from
then on carry both CAs. Ending the overlap drops the bridge and the old CA.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from aicache.errors import AicacheError
from aicache.security.federation_dir import CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY

if TYPE_CHECKING:
    from aicache.deploy.server import ServerDirectory

CA_BUNDLE = "ca-bundle.pem"  # during a CA roll: the new CA and the old one
CA_BRIDGE = "ca-bridge.pem"  # during a CA roll: the new CA certified by the old one
CA_PREVIOUS_CERT = "ca-previous.pem"  # the old CA's certificate (its key is not kept)


def rotate(
    directory: ServerDirectory,
    *,
    days: int,
    roll_ca: bool = False,
    end_overlap: bool = False,
    force: bool = False,
) -> list[str]:
    """Issue a new server certificate (and with ``roll_ca`` a new CA); restart if running.

    ``end_overlap`` drops the bridge and the old CA: bundles issued before the
    roll stop working.

    Returns
    -------
    list[str]
        What was done, one line each.

    Raises
    ------
    AicacheError
        On a contradictory request, or when there is no roll to end.
    """
    from aicache.security import certificates as certs

    if roll_ca and end_overlap:
        raise AicacheError("--ca and --end-overlap are separate steps: run them one at a time")
    running = directory.superlink.running()
    if running and not force and (active := directory.active_runs()):
        raise AicacheError(
            f"a run is going on (Flower run {active[0]}): restarting the SuperLink with the "
            "new certificate would end it",
            hint="Rotate after it ends, or pass --force (then `server run --resume`).",
        )
    path = directory.path
    done: list[str] = []
    try:
        current = certs.load_issued(path(SERVER_KEY), path(SERVER_CERT))
        ca = certs.load_issued(path(CA_KEY), path(CA_CERT))
    except (OSError, ValueError) as exc:
        raise AicacheError(
            f"cannot read the federation's CA or server key in {directory.root}: {exc}",
            hint="rotate-certs needs keys/ca.key and server.key in the directory (bring an "
            "offline CA key back for the rotation).",
        ) from exc
    names = certs.certificate_names(current.certificate)
    if roll_ca:
        if path(CA_BRIDGE).exists():
            raise AicacheError(
                "a CA roll is still in its overlap window",
                hint="End it first with `aicache server rotate-certs --end-overlap`.",
            )
        if certs.path_length(ca.certificate) == 0:
            raise AicacheError(
                "this federation's CA may not certify another CA (path length 0), so no "
                "bridge can keep old bundles working through a roll",
                hint="Renew only the server certificate, or make a new federation "
                "(`server init --force`) and enrol the nodes again.",
            )
        new_ca = certs.create_ca(f"{directory.name} CA {time.strftime('%Y-%m-%d')}")
        path(CA_PREVIOUS_CERT).write_bytes(certs.certificate_pem(ca.certificate))
        bridge = certs.cross_certify(new_ca, ca, days=days)
        path(CA_BRIDGE).write_bytes(certs.certificate_pem(bridge))
        certs.write_private(path(CA_KEY), certs.key_pem(new_ca.key))
        path(CA_CERT).write_bytes(certs.certificate_pem(new_ca.certificate))
        path(CA_BUNDLE).write_bytes(
            certs.certificate_pem(new_ca.certificate) + certs.certificate_pem(ca.certificate)
        )
        ca = new_ca
        done.append("new CA created; old bundles stay valid through a bridge certificate")
    if end_overlap:
        if not path(CA_BRIDGE).exists():
            raise AicacheError("there is no CA roll to end (no overlap window is open)")
        for name in (CA_BRIDGE, CA_BUNDLE, CA_PREVIOUS_CERT):
            path(name).unlink(missing_ok=True)
        done.append("overlap ended: only bundles carrying the new CA work now")
    server = certs.issue_server_certificate(ca, names, days=days)
    chain = certs.certificate_pem(server.certificate)
    if path(CA_BRIDGE).exists():
        chain += path(CA_BRIDGE).read_bytes()
    certs.write_private(path(SERVER_KEY), certs.key_pem(server.key))
    path(SERVER_CERT).write_bytes(chain)
    done.append(f"new server certificate for {', '.join(names)}, valid {days} days")
    if directory.superlink.running():
        try:
            settings = json.loads(directory.runtime.read_text())
        except (FileNotFoundError, ValueError):
            settings = {}
        directory.stop()
        directory.start(insecure=bool(settings.get("insecure")), listen=settings.get("host"))
        done.append("SuperLink restarted with it (nodes reconnect on their own)")
    return done
