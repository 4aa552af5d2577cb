"""A unary multicallable whose plain call is its ``with_call``.

The SDK's channel-like objects (failover across registry nodes, discovery
across instances) retry an attempt in ``with_call``; the plain call only
drops the call object.
"""

from __future__ import annotations

from typing import Any

import grpc

__all__ = ["WithCallUnaryUnary"]


class WithCallUnaryUnary(grpc.UnaryUnaryMultiCallable):  # type: ignore[type-arg]
    """Subclasses implement ``with_call`` and ``future``."""

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        response, _call = self.with_call(
            request, timeout, metadata, credentials, wait_for_ready, compression
        )
        return response
