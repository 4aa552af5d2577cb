"""The AIO registry client SDK (sync; the asyncio twin is :mod:`sdk.aio`).

The public names are listed in ``__all__`` (a test keeps it exact). Test
helpers live in :mod:`sdk.testing`; the conversions between status codes and
exceptions in :mod:`sdk.errors`.
"""

from __future__ import annotations

from sdk.auth import Auth
from sdk.client import Client
from sdk.clock import Clock, SystemClock
from sdk.config import (
    Config,
    DiscoveryPolicy,
    HeartbeatPolicy,
    KeepalivePolicy,
    TlsConfig,
    TokenPolicy,
)
from sdk.discovery import Discovery, Pick
from sdk.errors import (
    AlreadyExists,
    Cancelled,
    ClientClosed,
    ConfigError,
    DeadlineExceeded,
    DiscoveryError,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NoHealthyInstances,
    NoInstances,
    NotFound,
    PermissionDenied,
    RegistryError,
    ResourceExhausted,
    ServiceNotFound,
    Unauthenticated,
    Unavailable,
    UnexpectedStatus,
    Unknown,
    is_retryable,
)
from sdk.models import Endpoint, Instance, Service, ServiceView
from sdk.registration import Registration
from sdk.registry import RegistryClient
from sdk.results import EnsuredService, RegisteredInstance

__all__ = [
    "AlreadyExists",
    "Auth",
    "Cancelled",
    "Client",
    "ClientClosed",
    "Clock",
    "Config",
    "ConfigError",
    "DeadlineExceeded",
    "Discovery",
    "DiscoveryError",
    "DiscoveryPolicy",
    "Endpoint",
    "EnsuredService",
    "FailedPrecondition",
    "HeartbeatPolicy",
    "Instance",
    "Internal",
    "InvalidArgument",
    "KeepalivePolicy",
    "NoHealthyInstances",
    "NoInstances",
    "NotFound",
    "PermissionDenied",
    "Pick",
    "RegisteredInstance",
    "Registration",
    "RegistryClient",
    "RegistryError",
    "ResourceExhausted",
    "Service",
    "ServiceNotFound",
    "ServiceView",
    "SystemClock",
    "TlsConfig",
    "TokenPolicy",
    "Unauthenticated",
    "Unavailable",
    "UnexpectedStatus",
    "Unknown",
    "is_retryable",
]
