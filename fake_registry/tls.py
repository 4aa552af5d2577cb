"""TLS for the fake: a generated CA and server certificate, or files you bring.

``generate_tls()`` makes a throw-away certificate authority and a server
certificate signed by it, valid for the loopback names, so a client under
test can verify the fake exactly as it verifies a real registry: by trusting
``ca_pem``. Keys are EC P-256 (fast to generate: about a millisecond).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DEFAULT_HOSTS", "TlsMaterial", "generate_tls", "load_tls"]

#: Names the generated server certificate is valid for.
DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
_VALIDITY = datetime.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """PEM-encoded certificate chain and key. The key never appears in the repr.

    Attributes:
        ca_pem: the CA bundle a client must trust (empty when unknown).
        cert_pem: the server certificate (chain).
        key_pem: the server's private key.
    """

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key_pem, self.cert_pem)])

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Credentials for a client that trusts this CA."""
        return grpc.ssl_channel_credentials(root_certificates=self.ca_pem or None)

    def write_ca(self, path: str | Path) -> Path:
        """Write the CA bundle to ``path`` (for clients configured by file)."""
        target = Path(path)
        target.write_bytes(self.ca_pem)
        return target


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def generate_tls(hosts: Sequence[str] = DEFAULT_HOSTS) -> TlsMaterial:
    """A fresh CA and a server certificate for ``hosts`` (names or IP addresses)."""
    if not hosts:
        raise ValueError("hosts must name at least one host")
    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(minutes=5), now + _VALIDITY

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("fake-registry test CA"))
        .issuer_name(_name("fake-registry test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return TlsMaterial(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=server_cert.public_bytes(serialization.Encoding.PEM),
        key_pem=server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def load_tls(
    cert_file: str | Path, key_file: str | Path, ca_file: str | Path | None = None
) -> TlsMaterial:
    """Read a certificate (chain), its key and optionally the CA bundle from files.

    Raises:
        ValueError: a file is unreadable or holds no PEM data (the message names it).
    """
    paths = {"cert": cert_file, "key": key_file}
    if ca_file is not None:
        paths["ca"] = ca_file
    data: dict[str, bytes] = {}
    for role, path in paths.items():
        try:
            content = Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read TLS {role} file {path}: {exc.strerror}") from None
        if b"-----BEGIN" not in content:
            raise ValueError(f"TLS {role} file {path} holds no PEM data")
        data[role] = content
    return TlsMaterial(ca_pem=data.get("ca", b""), cert_pem=data["cert"], key_pem=data["key"])
