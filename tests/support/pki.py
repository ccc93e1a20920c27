"""Certificates made in the test (``cryptography``): a CA, a server certificate for
``localhost``/``127.0.0.1``, a client certificate it signed, and a client certificate of
another CA. Used by the TLS tests of the suggestion server and the DBManager."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_cert: Path  # a client certificate from another CA
    other_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject, key, issuer, issuer_key, *, ca=False, server=False):  # noqa: ANN001, ANN202
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Path:
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def make_pki(directory: Path) -> Pki:
    """A fresh CA, server and client certificates (PEM files) in ``directory``."""
    ca_key, other_ca_key = _key(), _key()
    ca = _certificate(_name("tuner test CA"), ca_key, _name("tuner test CA"), ca_key, ca=True)
    other_ca_name = _name("another CA")
    server_key, client_key, other_key = _key(), _key(), _key()
    server = _certificate(_name("localhost"), server_key, ca.subject, ca_key, server=True)
    client = _certificate(_name("controller"), client_key, ca.subject, ca_key)
    other = _certificate(_name("intruder"), other_key, other_ca_name, other_ca_key)
    _write(directory / "ca.pem", ca, ca_key)
    _write(directory / "server.pem", server, server_key)
    _write(directory / "client.pem", client, client_key)
    _write(directory / "other.pem", other, other_key)
    return Pki(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "client.pem",
        directory / "client.key",
        directory / "other.pem",
        directory / "other.key",
    )
