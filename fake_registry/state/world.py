"""The whole state of one fake: registry + auth, behind one lock.

``reset()`` restores the snapshot taken by :meth:`World.mark_initial` (the
configured clients and any seeded data). Records are immutable, so a reset
copies dicts and never rebuilds records: it stays well under a millisecond.
"""

from __future__ import annotations

import threading

from fake_registry.state.auth import AuthState
from fake_registry.state.registry import RegistryState

__all__ = ["World"]


class World:
    """Shared state. Hold ``lock`` around every read or change of ``registry``/``auth``."""

    def __init__(self, registry: RegistryState | None = None, auth: AuthState | None = None):
        self.lock = threading.RLock()
        self.registry = registry or RegistryState()
        self.auth = auth or AuthState()
        #: When False, protected RPCs need no token (the real ``enable_auth`` switch).
        self.auth_enabled = True
        self._initial = (self.registry.copy(), self.auth.copy())

    def mark_initial(self) -> None:
        """Make the current state the one :meth:`reset` returns to."""
        with self.lock:
            self._initial = (self.registry.copy(), self.auth.copy())

    def wipe(self) -> None:
        """Lose every service and instance, as after a registry data loss."""
        with self.lock:
            self.registry = self.registry.wiped()

    def reset(self) -> None:
        """Return to the initial state: data, credentials, token TTL, counters."""
        registry, auth = self._initial
        with self.lock:
            issued = self.auth.issued
            self.registry = registry.copy()
            self.auth = auth.copy()
            # Tokens handed out before the reset still verify under the
            # restored key: expire_tokens() must still reach them.
            self.auth.issued.update(issued)
            self.auth_enabled = True
