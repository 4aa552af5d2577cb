"""The sans-IO core of the SDK: decisions without I/O, shared by the sync and asyncio shells.

Nothing here imports grpc, protos, threading, asyncio, time, random, socket or logging, or
any other part of ``sdk`` (``tests/sdk/core/test_no_io_imports.py`` checks it with ``ast``).
Every input carries ``now`` (local clock seconds) and, where jitter is needed, randomness
comes from the caller; every output is a value: a deadline, a delay, an action or an outcome.
Status codes are gRPC code names as plain strings (``"UNAVAILABLE"``).

Modules, one concept each:
    backoff      ``Backoff``: exponential delays with full/equal/no jitter
    token        ``TokenState``: refresh lead, renew-then-authenticate, single flight, holds
    cooldown     ``Cooldowns``: escalating per-instance cooldowns, pruned and bounded
    balancer     ``RoundRobin``: per-service round-robin that survives refreshes
    cache        ``DiscoveryCache``: fresh / stale-usable / missing, one refresh per key
    lease        ``Lease``: the registration state machine (values in ``lease_values``)
"""

from __future__ import annotations

from sdk._core.backoff import Backoff, Jitter
from sdk._core.balancer import NoPick, RoundRobin
from sdk._core.cache import CacheParams, DiscoveryCache, Freshness, Lookup, RefreshRole
from sdk._core.cooldown import CooldownParams, Cooldowns, FailureRecord
from sdk._core.lease import Lease
from sdk._core.lease_values import (
    DEFAULT_TTL,
    REOPEN_BACKOFF,
    Action,
    CloseStream,
    Deregister,
    Emit,
    LeaseEvent,
    LeaseParams,
    LeaseState,
    OpenStream,
    Reason,
    Register,
    SendBeat,
    effective_ttl,
)
from sdk._core.token import (
    FINAL_AUTH_CODES,
    RETRY_BACKOFF,
    AuthenticateCall,
    CachedToken,
    Grant,
    RefreshFailure,
    RefreshStep,
    Rejected,
    RenewCall,
    TokenAction,
    TokenParams,
    TokenState,
)

__all__ = [
    "DEFAULT_TTL",
    "FINAL_AUTH_CODES",
    "REOPEN_BACKOFF",
    "RETRY_BACKOFF",
    "Action",
    "AuthenticateCall",
    "Backoff",
    "CacheParams",
    "CachedToken",
    "CloseStream",
    "CooldownParams",
    "Cooldowns",
    "Deregister",
    "DiscoveryCache",
    "Emit",
    "FailureRecord",
    "Freshness",
    "Grant",
    "Jitter",
    "Lease",
    "LeaseEvent",
    "LeaseParams",
    "LeaseState",
    "Lookup",
    "NoPick",
    "OpenStream",
    "Reason",
    "RefreshFailure",
    "RefreshRole",
    "RefreshStep",
    "Register",
    "Rejected",
    "RenewCall",
    "RoundRobin",
    "SendBeat",
    "TokenAction",
    "TokenParams",
    "TokenState",
    "effective_ttl",
]
