"""Channels to the registry, built from a :class:`~sdk.config.Config` (CONTRACT 4.2, G9, G18).

Rules (the reference SDK's address parsing, as far as grpcio allows):
    one address                        -> that address as a plain target
    several, all IPv4 literals         -> one channel, ``ipv4:a:1,b:2`` + ``round_robin``
    several, all bracketed IPv6        -> one channel, ``ipv6:[a]:1,[b]:2`` + ``round_robin``
    several, any name (or mixed kinds) -> one channel per address behind a
                                          :class:`FailoverChannel`
    tls None                           -> plaintext; else ``ssl_channel_credentials`` from
                                          the CA bundle and the optional client certificate,
                                          ``server_name`` as the target name override
    keepalive                          -> ``KeepalivePolicy.channel_options()`` on every channel

grpcio cannot register the reference SDK's ``static:///`` resolver from Python, and a
``dns:`` target names one host, hence the failover channel for host names
(``sdk._grpc.failover``).

One transport serves both roles of the reference SDK's two channels: auth calls use it
bare (no interceptors), business calls go through the interceptors on top of it. One
connection per node instead of two, and ``close()`` has exactly one thing to close, so no
auth channel can leak (G9).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from sdk._grpc.failover import FailoverChannel
from sdk.config import Config, TlsConfig

__all__ = [
    "TargetPlan",
    "Transport",
    "channel_credentials",
    "channel_options",
    "open_transport",
    "plan_target",
]

Options = tuple[tuple[str, Any], ...]
_T = TypeVar("_T")
_ROUND_ROBIN: Options = (("grpc.lb_policy_name", "round_robin"),)


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """How a list of addresses becomes channels.

    Attributes:
        targets: one gRPC target per channel to open.
        options: extra channel options (the ``round_robin`` LB policy for IP lists).
        failover: several channels, wrapped in a :class:`FailoverChannel`.
    """

    targets: tuple[str, ...]
    options: Options = ()

    @property
    def failover(self) -> bool:
        return len(self.targets) > 1


def _ip_kind(address: str) -> int | None:
    """4 or 6 for an IP literal ``host:port`` / ``[v6]:port``, else ``None``."""
    host = address.rpartition(":")[0]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def plan_target(addresses: Sequence[str]) -> TargetPlan:
    """Plan the channels for parsed registry addresses (see the module rules).

    Raises:
        ValueError: ``addresses`` is empty (``Config`` never lets that through).
    """
    if not addresses:
        raise ValueError("no registry address")
    if len(addresses) == 1:
        return TargetPlan((addresses[0],))
    kinds = {_ip_kind(address) for address in addresses}
    if kinds == {4}:
        return TargetPlan(("ipv4:" + ",".join(addresses),), _ROUND_ROBIN)
    if kinds == {6}:
        return TargetPlan(("ipv6:" + ",".join(addresses),), _ROUND_ROBIN)
    return TargetPlan(tuple(addresses))


def channel_credentials(tls: TlsConfig) -> tuple[grpc.ChannelCredentials, Options]:
    material = tls.load()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=material.root_certificates,
        private_key=material.private_key,
        certificate_chain=material.certificate_chain,
    )
    options: Options = ()
    if tls.server_name is not None:
        options = (("grpc.ssl_target_name_override", tls.server_name),)
    return credentials, options


def _open(
    target: str, credentials: grpc.ChannelCredentials | None, options: Options
) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(target, options=list(options))
    return grpc.secure_channel(target, credentials, options=list(options))


class Transport:
    """The registry connection of one client: a channel (plain or failover) and its close.

    Args:
        channel: what calls go through.
        plan: the targets it was built from.
    """

    __slots__ = ("_channel", "_closed", "_lock", "plan")

    def __init__(self, channel: grpc.Channel, plan: TargetPlan) -> None:
        self._channel = channel
        self.plan = plan
        self._closed = False
        self._lock = threading.Lock()

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close every channel; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._channel.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Transport(targets={list(self.plan.targets)!r}, {state})"


def channel_options(
    config: Config, plan: TargetPlan
) -> tuple[grpc.ChannelCredentials | None, Options]:
    """The credentials (``None``: plaintext) and options of every registry channel.

    Raises:
        ConfigError: a TLS file cannot be read.
    """
    options: Options = config.keepalive.channel_options() + plan.options
    credentials: grpc.ChannelCredentials | None = None
    if config.tls is not None:
        credentials, tls_options = channel_credentials(config.tls)
        options += tls_options
    return credentials, options


def open_transport(config: Config) -> Transport:
    """Open the channels for ``config`` (TLS, keepalive, multi-address plan).

    Raises:
        ConfigError: a TLS file cannot be read.
    """
    plan = plan_target(config.addresses)
    credentials, options = channel_options(config, plan)
    channels = [_open(target, credentials, options) for target in plan.targets]
    if len(channels) == 1:
        return Transport(channels[0], plan)
    return Transport(FailoverChannel(channels, plan.targets), plan)
