"""A federation's certificate authority and the SuperLink's TLS certificate.

The operator's CA signs the server certificate; clients trust the CA, so a
new server certificate (rotation) needs no re-enrolment. Rolling the CA
itself keeps the old one trusted for an overlap window: clients are given a
bundle of both.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_CA_DAYS = 3650
DEFAULT_SERVER_DAYS = 365


@dataclass(frozen=True, slots=True)
class Issued:
    """A private key and the certificate issued for it."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aicache federation"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_usage() -> x509.KeyUsage:
    """What a CA key may do: sign certificates and revocation lists."""
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def create_ca(common_name: str, *, days: int = DEFAULT_CA_DAYS) -> Issued:
    """A new self-signed certificate authority."""
    key = ec.generate_private_key(ec.SECP384R1())
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return Issued(key, certificate)


def issue_server_certificate(
    ca: Issued,
    names: list[str],
    *,
    days: int = DEFAULT_SERVER_DAYS,
    valid_from: dt.datetime | None = None,
) -> Issued:
    """A TLS server certificate signed by ``ca`` for ``names`` (DNS names and IP addresses).

    Raises
    ------
    ValueError
        If no name is given.
    """
    if not names:
        raise ValueError("a server certificate needs at least one name or address")
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP384R1())
    start = valid_from or _now() - dt.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA384())
    )
    return Issued(key, certificate)


def cross_certify(
    new_ca: Issued, old_ca: Issued, *, days: int = DEFAULT_SERVER_DAYS
) -> x509.Certificate:
    """``new_ca``'s name and key, vouched for by ``old_ca``: the bridge of a CA roll.

    A server presenting its certificate followed by this one is trusted both
    by clients that know only the old CA (through the bridge) and by clients
    that know the new one (directly), for as long as the bridge is valid.
    """
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(new_ca.certificate.subject)
        .issuer_name(old_ca.certificate.subject)
        .public_key(new_ca.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(new_ca.key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(old_ca.key.public_key()),
            critical=False,
        )
        .sign(old_ca.key, hashes.SHA384())
    )


def path_length(certificate: x509.Certificate) -> int | None:
    """How many CAs may stand below this CA (``None``: no limit or not a CA)."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None
    return constraints.path_length


def certificate_names(certificate: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses a server certificate covers."""
    try:
        alternatives = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(alternatives.get_values_for_type(x509.DNSName))
    names += [str(a) for a in alternatives.get_values_for_type(x509.IPAddress)]
    return names


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """A certificate in PEM."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A private key in unencrypted PKCS#8 PEM (the file itself is owner-only)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` readable by the owner only, from its first byte."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode otherwise: fix it first
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path


def load_issued(key_path: Path, certificate_path: Path) -> Issued:
    """A key and certificate from PEM files."""
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an elliptic-curve key")
    return Issued(key, x509.load_pem_x509_certificate(certificate_path.read_bytes()))


def verify_chain(
    certificate: x509.Certificate,
    trusted: list[x509.Certificate],
    name: str,
    intermediates: list[x509.Certificate] | None = None,
) -> None:
    """Check that ``certificate`` is valid now, for ``name``, under one of ``trusted``.

    Raises
    ------
    x509.verification.VerificationError
        With the reason (expired, unknown issuer, wrong name).
    """
    from cryptography.x509.verification import PolicyBuilder, Store

    try:
        subject: x509.verification.Subject = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = x509.DNSName(name)
    verifier = PolicyBuilder().store(Store(trusted)).build_server_verifier(subject)
    verifier.verify(certificate, intermediates or [])
