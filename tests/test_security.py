"""Certificates, signing keys and node keys for deployment, and `aicache server init`."""

from __future__ import annotations

import datetime as dt
import stat
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import VerificationError

from aicache.security import signing
from aicache.security.certificates import create_ca, issue_server_certificate, verify_chain
from aicache.security.node_keys import new_node_key, public_from_private
from tests.conftest import Cli


def test_a_server_certificate_verifies_for_its_names_under_its_ca() -> None:
    ca = create_ca("test CA")
    server = issue_server_certificate(ca, ["localhost", "127.0.0.1", "fl.example.org"])
    for name in ("localhost", "127.0.0.1", "fl.example.org"):
        verify_chain(server.certificate, [ca.certificate], name)
    with pytest.raises(VerificationError):
        verify_chain(server.certificate, [ca.certificate], "other.example.org")


def test_a_wrong_ca_and_an_expired_certificate_are_refused() -> None:
    ca, other = create_ca("ours"), create_ca("theirs")
    server = issue_server_certificate(ca, ["localhost"])
    with pytest.raises(VerificationError):
        verify_chain(server.certificate, [other.certificate], "localhost")
    expired = issue_server_certificate(
        ca, ["localhost"], days=1, valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    )
    with pytest.raises(VerificationError):
        verify_chain(expired.certificate, [ca.certificate], "localhost")


def test_a_rotated_server_certificate_needs_no_new_trust_and_a_ca_roll_overlaps() -> None:
    old_ca, new_ca = create_ca("2026"), create_ca("2027")
    rotated = issue_server_certificate(old_ca, ["localhost"])
    verify_chain(rotated.certificate, [old_ca.certificate], "localhost")
    # During the overlap a bundle trusts both CAs: either server certificate works.
    bundle = [old_ca.certificate, new_ca.certificate]
    verify_chain(issue_server_certificate(new_ca, ["localhost"]).certificate, bundle, "localhost")
    verify_chain(rotated.certificate, bundle, "localhost")


def test_signatures_detect_tampering_and_missing_signatures() -> None:
    key = signing.new_signing_key()
    public = signing.load_public(signing.public_pem(key))
    data = b"model artifact bytes"
    signature = signing.sign(key, data)
    signing.verify(public, data, signature, what="model v1")
    with pytest.raises(signing.SignatureError, match="does not match its signature"):
        signing.verify(public, data + b"!", signature, what="model v1")
    with pytest.raises(signing.SignatureError, match="model v1 is not signed"):
        signing.verify(public, data, None, what="model v1")
    stranger = signing.load_public(signing.public_pem(signing.new_signing_key()))
    with pytest.raises(signing.SignatureError):
        signing.verify(stranger, data, signature, what="model v1")


def test_node_keys_are_nist_ec_keys_in_openssh_format() -> None:
    private, public = new_node_key()
    assert private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert public.startswith(b"ecdsa-sha2-nistp384 ")
    assert public_from_private(private) == public
    assert serialization.load_ssh_public_key(public) is not None


def test_server_init_creates_a_private_federation_directory(cli: Cli, tmp_path: Path) -> None:
    # Execute
    target = tmp_path / "fed"
    result = cli.run("server", "init", str(target), "--name", "team", "--host", "fl.internal")
    again = cli.run("server", "init", str(target))
    # Assert
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    for key in ("keys/ca.key", "server.key", "keys/signing.key"):
        assert stat.S_IMODE((target / key).stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "keys").stat().st_mode) == 0o700
    assert not (target / "ca.key").exists() and not (target / "signing.key").exists()
    config = tomllib.loads((target / "aicache-server.toml").read_text())
    assert config["federation"] == {"name": "team", "address": "fl.internal:9092"}
    certificate = x509.load_pem_x509_certificate((target / "server.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((target / "ca.pem").read_bytes())
    verify_chain(certificate, [ca], "fl.internal")
    verify_chain(certificate, [ca], "127.0.0.1")
    assert again.returncode == 2 and b"already holds a federation" in again.stderr


def test_a_ca_roll_bridge_keeps_old_and_new_trust_working() -> None:
    from cryptography.x509.verification import VerificationError

    from aicache.security.certificates import (
        create_ca,
        cross_certify,
        issue_server_certificate,
        verify_chain,
    )

    # Prepare: a server certificate from the new CA, and the bridge the server presents
    old, new = create_ca("old CA"), create_ca("new CA")
    server = issue_server_certificate(new, ["fl.example.internal"]).certificate
    bridge = cross_certify(new, old)
    # Execute / Assert: an old bundle trusts it through the bridge, a new one directly
    verify_chain(server, [old.certificate], "fl.example.internal", [bridge])
    verify_chain(server, [new.certificate], "fl.example.internal", [bridge])
    # Without the bridge (after --end-overlap) the old CA alone no longer vouches for it
    with pytest.raises(VerificationError):
        verify_chain(server, [old.certificate], "fl.example.internal")


def test_an_older_federation_directory_moves_its_keys_apart(cli: Cli, tmp_path: Path) -> None:
    from aicache.deploy.server import ServerDirectory

    # Prepare: the layout before keys/ existed, CA and signing keys beside the config
    target = tmp_path / "fed"
    assert cli.run("server", "init", str(target)).returncode == 0
    originals = {}
    for name in ("ca.key", "signing.key"):
        originals[name] = (target / "keys" / name).read_bytes()
        (target / "keys" / name).replace(target / name)
    (target / "keys").rmdir()
    # Execute
    server = ServerDirectory(target)
    # Assert
    for name, content in originals.items():
        assert not (target / name).exists()
        assert (target / "keys" / name).read_bytes() == content
    assert server.signing_key_path() == target / "keys" / "signing.key"
    assert stat.S_IMODE((target / "keys").stat().st_mode) == 0o700
