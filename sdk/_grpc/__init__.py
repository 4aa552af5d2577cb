"""The SDK's one seam to grpcio (DESIGN 2): channels, interceptors and auth RPCs.

Nothing else in ``sdk`` opens channels or makes calls. ``sdk._core`` never imports
this package; the sync (and later asyncio) shells do.
"""

from __future__ import annotations

from sdk._grpc.auth_calls import AuthCalls, TokenReply
from sdk._grpc.channel import Transport, open_transport, plan_target
from sdk._grpc.failover import FailoverChannel
from sdk._grpc.interceptors import CallInterceptor, TokenSource

__all__ = [
    "AuthCalls",
    "CallInterceptor",
    "FailoverChannel",
    "TokenReply",
    "TokenSource",
    "Transport",
    "open_transport",
    "plan_target",
]
