"""TLS to the registry: :class:`TlsConfig` (what to trust and present) and its PEM material.

Part of the client configuration (``Config(tls=...)``); importable from :mod:`sdk` and
:mod:`sdk.config` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sdk._checks import text as _text
from sdk.errors import ConfigError

__all__ = ["TlsConfig", "TlsMaterial"]


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """PEM bytes for ``grpc.ssl_channel_credentials(**vars)``; ``None`` = not used.

    ``root_certificates=None`` means the system's trust roots.
    """

    root_certificates: bytes | None
    private_key: bytes | None = field(repr=False)
    certificate_chain: bytes | None


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS to the registry. ``TlsConfig()`` means TLS with the system's CA roots.

    Args:
        ca_file: path of a PEM CA bundle to trust instead of the system roots.
        ca_pem: the same as bytes; give ``ca_file`` or ``ca_pem``, not both.
        cert_file: client certificate chain (PEM) for mutual TLS; needs ``key_file``.
        key_file: the client certificate's private key (PEM); needs ``cert_file``.
        server_name: the name to verify in the server's certificate, when it
            differs from the host in the address (``None``: the address's host).
    """

    ca_file: str | None = None
    ca_pem: bytes | None = field(default=None, repr=False)
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file", "server_name"):
            value = getattr(self, name)
            if value is not None:
                _text(f"tls.{name}", value)
        if self.ca_pem is not None:
            if not isinstance(self.ca_pem, bytes) or not self.ca_pem.strip():
                raise ConfigError("tls.ca_pem", "must be non-empty PEM bytes")
            if self.ca_file is not None:
                raise ConfigError("tls.ca_pem", "give ca_file or ca_pem, not both")
        if (self.cert_file is None) != (self.key_file is None):
            missing = "tls.key_file" if self.key_file is None else "tls.cert_file"
            raise ConfigError(missing, "a client certificate needs both cert_file and key_file")

    def load(self) -> TlsMaterial:
        """Read the PEM files.

        Raises:
            ConfigError: a file cannot be read; ``field`` names which.
        """
        return TlsMaterial(
            root_certificates=self.ca_pem or _read("tls.ca_file", self.ca_file),
            private_key=_read("tls.key_file", self.key_file),
            certificate_chain=_read("tls.cert_file", self.cert_file),
        )


def _read(name: str, path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(name, f"cannot read {path!r}: {exc.strerror or exc}") from None
