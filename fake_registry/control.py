"""The control API: every knob a test turns on the fake, in one place.

:class:`FakeRegistry` inherits these methods (the Python face); the gRPC
control service and the ``fake-registry ctl`` CLI call the same methods, so
the three faces always do the same thing. Every method is thread-safe.

Status codes may be given as ``grpc.StatusCode`` members or names
(``"UNAVAILABLE"``, case-insensitive).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fake_registry.clock import Clock
from fake_registry.errors import FailedPrecondition, InvalidArgument
from fake_registry.faults import Abort, Action, Delay, Drop, FaultRule, FaultSet, check_code
from fake_registry.interceptors import CallPipeline
from fake_registry.journal import Call, Journal
from fake_registry.state.model import InstanceRecord
from fake_registry.state.world import World
from fake_registry.streams import StreamControl, StreamInfo, StreamRegistry

__all__ = ["FakeControls", "FaultHandle", "code_name"]

HEARTBEAT_METHOD = "/xiaozhizhang.registry.v1.RegistryService/HeartbeatStream"


def code_name(code: Any, field_name: str = "code") -> str:
    """``grpc.StatusCode.UNAVAILABLE`` or ``"unavailable"`` -> ``"UNAVAILABLE"``."""
    return check_code(getattr(code, "name", code), field_name)


class _Movable(Protocol):
    def advance(self, seconds: float) -> None: ...
    def set_time(self, unix_seconds: float) -> None: ...


class FaultHandle:
    """A fault rule that was added; ``remove()`` it when done."""

    def __init__(self, rule: FaultRule, faults: FaultSet) -> None:
        self._rule = rule
        self._faults = faults

    @property
    def id(self) -> int:
        return self._rule.id

    @property
    def hits(self) -> int:
        """How many calls this rule acted on so far."""
        return self._rule.hits

    @property
    def active(self) -> bool:
        """False once its lifetime is over or it was removed."""
        return self._rule.active

    def remove(self) -> None:
        self._faults.remove(self._rule.id)

    def __repr__(self) -> str:
        return f"FaultHandle({self._rule.describe()})"


class FakeControls:
    """Mixin with the control API; the host class provides the attributes below."""

    clock: Clock
    journal: Journal
    _world: World
    _faults: FaultSet
    _streams: StreamRegistry
    _pipeline: CallPipeline

    # --- time ---------------------------------------------------------------

    def _movable_clock(self) -> _Movable:
        clock: Any = self.clock
        if not (hasattr(clock, "advance") and hasattr(clock, "set_time")):
            raise FailedPrecondition(
                f"{type(clock).__name__} cannot be moved; give the fake a ManualClock or "
                "OffsetClock (the default) to control time"
            )
        movable: _Movable = clock
        return movable

    def advance_clock(self, seconds: float) -> float:
        """Move the fake's time forward; returns the new Unix time.

        Tokens and leases that end on the way are expired at once; waits on
        the clock (virtual delays) that end on the way wake up.
        """
        if not seconds >= 0:
            raise InvalidArgument(f"seconds must be >= 0 (got {seconds!r})", "seconds")
        self._movable_clock().advance(seconds)
        return self.clock.time()

    def set_time(self, unix_seconds: float) -> float:
        """Set the fake's Unix time (backwards too); returns it."""
        if not unix_seconds >= 0:
            raise InvalidArgument(
                f"unix_seconds must be >= 0 (got {unix_seconds!r})", "unix_seconds"
            )
        self._movable_clock().set_time(unix_seconds)
        return self.clock.time()

    def now(self) -> float:
        """The fake's current Unix time."""
        return self.clock.time()

    # --- credentials --------------------------------------------------------

    def add_client(
        self, client_key: str, client_secret: str, *, expires_at: float | None = None
    ) -> None:
        """Accept a credential (an existing key gets the new secret, keeping its id)."""
        with self._world.lock:
            self._world.auth.add_client(client_key, client_secret, expires_at=expires_at)

    def remove_client(self, client_key: str) -> None:
        """Delete a credential. Its tokens still pass protected calls until they
        expire, but RenewToken answers UNAUTHENTICATED (CONTRACT 2.6, 2.7)."""
        with self._world.lock:
            self._world.auth.remove_client(client_key)

    def disable_client(self, client_key: str) -> None:
        """Authenticate answers UNAUTHENTICATED, Renew PERMISSION_DENIED; tokens still pass."""
        with self._world.lock:
            self._world.auth.update_client(client_key, enabled=False)

    def enable_client(self, client_key: str) -> None:
        with self._world.lock:
            self._world.auth.update_client(client_key, enabled=True)

    def set_client_expiry(self, client_key: str, expires_at: float | None) -> None:
        """The credential's expiry date (Unix seconds); ``None`` means never."""
        with self._world.lock:
            self._world.auth.update_client(client_key, expires_at=expires_at)

    def rotate_secret(self, client_key: str, new_secret: str | None = None) -> str:
        """Give the credential a new secret (random when ``None``); returns it."""
        secret = new_secret or secrets.token_urlsafe(33)
        with self._world.lock:
            self._world.auth.update_client(client_key, secret=secret)
        return secret

    def clients(self) -> list[str]:
        """The configured client keys."""
        with self._world.lock:
            return sorted(self._world.auth.credentials)

    # --- tokens -------------------------------------------------------------

    @property
    def token_ttl(self) -> int:
        with self._world.lock:
            return self._world.auth.token_ttl

    def set_token_ttl(self, seconds: int) -> None:
        """Lifetime of tokens issued from now on, in seconds (> 0)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise InvalidArgument(
                f"seconds must be a positive integer (got {seconds!r})", "seconds"
            )
        with self._world.lock:
            self._world.auth.token_ttl = seconds

    def expire_tokens(self, client_key: str | None = None) -> int:
        """Make outstanding tokens (of one client, or all) fail as expired now.

        Returns how many tokens this affected. Tokens issued later are fine.
        """
        with self._world.lock:
            return self._world.auth.expire_tokens(client_key)

    def revoke_token(self, token: str) -> None:
        """Protected calls presenting ``token`` get UNAUTHENTICATED from now on."""
        if not token:
            raise InvalidArgument("token must not be empty", "token")
        with self._world.lock:
            self._world.auth.revoke(token)

    def rotate_signing_key(self) -> None:
        """A new signing secret: every outstanding token stops verifying."""
        with self._world.lock:
            self._world.auth.rotate_signing_key()

    @property
    def authentications(self) -> int:
        """AuthenticateClient calls that reached the handler (since the last reset)."""
        with self._world.lock:
            return self._world.auth.authentications

    @property
    def renewals(self) -> int:
        """RenewToken calls that reached the handler (since the last reset)."""
        with self._world.lock:
            return self._world.auth.renewals

    def set_auth_enabled(self, enabled: bool) -> None:
        """Turn token enforcement off or on (the real ``enable_auth`` switch)."""
        with self._world.lock:
            self._world.auth_enabled = bool(enabled)

    @property
    def exempt_methods(self) -> tuple[str, ...]:
        return self._pipeline.exempt

    def set_exempt_methods(self, methods: Sequence[str]) -> None:
        """Method paths (exact or suffix) that need no token."""
        self._pipeline.exempt = tuple(methods)

    # --- fault rules --------------------------------------------------------

    def add_fault(
        self,
        method: str,
        *,
        code: Any = None,
        details: str = "injected fault",
        delay: float | None = None,
        real_time: bool = False,
        drop: bool = False,
        sequence: Sequence[Action] | None = None,
        times: int | None = None,
        probability: float = 1.0,
        seed: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> FaultHandle:
        """Add a fault rule; see :mod:`fake_registry.faults`.

        Args:
            method: which calls, e.g. ``"ListServices"``, ``"RegistryService/ListServices"``,
                a full path, or ``"*"``.
            code: abort matching calls with this status.
            details: the status message of the abort.
            delay: hold matching calls this many seconds, then serve them
                (with ``code``, the delay comes first, then the abort).
            real_time: the delay is in real seconds rather than on the fake's clock.
            drop: never answer matching calls (the client's deadline ends them).
            sequence: an ordered list of actions, one per matching call.
            times: how many matching calls the rule acts on; ``None`` = all.
            probability: chance (0, 1] that a matching call is affected.
            seed: seeds ``probability``, for repeatable runs.
            metadata: header values a call must carry to match.
        """
        actions: list[Action]
        if sequence is not None:
            if code is not None or delay is not None or drop:
                raise InvalidArgument("give either sequence or code/delay/drop", "sequence")
            actions = list(sequence)
        elif code is not None:
            actions = [Abort(code_name(code), details, float(delay or 0), virtual=not real_time)]
        elif drop:
            actions = [Drop()]
        elif delay is not None:
            actions = [Delay(float(delay), virtual=not real_time)]
        else:
            raise InvalidArgument("a fault needs code, delay, drop or sequence", "code")
        rule = self._faults.add(
            method,
            actions,
            times=times,
            sequence=sequence is not None,
            metadata=metadata,
            probability=probability,
            seed=seed,
        )
        return FaultHandle(rule, self._faults)

    def fail_next(
        self, method: str, code: Any, times: int = 1, details: str = "injected fault"
    ) -> FaultHandle:
        """The next ``times`` calls to ``method`` fail with ``code``."""
        return self.add_fault(method, code=code, details=details, times=times)

    def faults(self) -> list[FaultHandle]:
        return [FaultHandle(rule, self._faults) for rule in self._faults.rules()]

    def clear_faults(self) -> None:
        """Remove every fault rule and stream control (``answer_zero`` included)."""
        self._faults.clear()
        self.clear_stream_controls()

    # --- heartbeat streams --------------------------------------------------

    def streams(self) -> list[StreamInfo]:
        """Open bidi streams: id, instance keys seen, opened at, frames in and out."""
        return self._streams.snapshot()

    def kill_streams(
        self,
        instance_key: str | None = None,
        code: Any = "UNAVAILABLE",
        details: str = "stream killed by the fake",
    ) -> int:
        """End open streams (those carrying ``instance_key``, or all) with ``code``.

        The server keeps running and accepts new streams. Returns how many
        streams were killed.
        """
        return self._streams.kill(instance_key, code_name(code), details)

    def reject_streams(self, code: Any = "UNAVAILABLE", times: int | None = None) -> FaultHandle:
        """New HeartbeatStream opens fail with ``code`` (``times`` of them, or all)."""
        return self.add_fault(HEARTBEAT_METHOD, code=code, times=times, details="stream rejected")

    def answer_zero(self, instance_key: str, enabled: bool = True) -> None:
        """Heartbeats for ``instance_key`` answer ``expires_at = 0`` without renewing."""
        if not instance_key:
            raise InvalidArgument("instance_key must not be empty", "instance_key")
        with self._world.lock:
            keys = self._world.registry.zero_answer_keys
            keys.add(instance_key) if enabled else keys.discard(instance_key)

    def end_streams_after(self, messages: int, instance_key: str | None = None) -> None:
        """Matching streams end cleanly (OK) once they sent ``messages`` answers."""
        if isinstance(messages, bool) or not isinstance(messages, int) or messages < 1:
            raise InvalidArgument(f"messages must be >= 1 (got {messages!r})", "messages")
        self._streams.add_control(StreamControl(instance_key, end_after=messages))

    def delay_answers(
        self, seconds: float, instance_key: str | None = None, *, real_time: bool = False
    ) -> None:
        """Hold every answer on matching streams for ``seconds`` (fake clock by default)."""
        if not seconds > 0:
            raise InvalidArgument(f"seconds must be > 0 (got {seconds!r})", "seconds")
        self._streams.add_control(
            StreamControl(instance_key, delay=float(seconds), delay_virtual=not real_time)
        )

    def withhold_answers(self, instance_key: str | None = None) -> None:
        """Matching streams stay open but never answer again."""
        self._streams.add_control(StreamControl(instance_key, withhold=True))

    def clear_stream_controls(self) -> None:
        self._streams.clear_controls()
        with self._world.lock:
            self._world.registry.zero_answer_keys.clear()

    # --- instances and leases -----------------------------------------------

    def expire_instance(self, service_id: int, instance_key: str) -> InstanceRecord:
        """The lease lapses now; the next heartbeat revives it (as on the real server)."""
        with self._world.lock:
            return self._world.registry.expire_instance(self.clock.time(), service_id, instance_key)

    def force_offline(self, service_id: int, instance_key: str) -> InstanceRecord:
        """The admin force-offline: not sticky, the next heartbeat revives it."""
        with self._world.lock:
            return self._world.registry.force_offline(service_id, instance_key)

    def delete_instance(self, service_id: int, instance_key: str) -> None:
        """Remove the instance row: heartbeats answer 0 until it registers again."""
        with self._world.lock:
            self._world.registry.delete_instance(service_id, instance_key)

    def deregister_instance(self, service_id: int, instance_key: str) -> bool:
        """As the RPC: soft delete; returns whether a registered row existed."""
        with self._world.lock:
            return self._world.registry.deregister_instance(
                self.clock.time(), service_id, instance_key
            )

    def wipe(self) -> None:
        """Lose every service and instance, as after a registry data loss."""
        self._world.wipe()

    def set_reregister_quirk(self, enabled: bool = True) -> None:
        """CONTRACT 3.10-1: re-registering a deregistered key shows it for one
        TTL, then it vanishes and its heartbeats answer 0."""
        with self._world.lock:
            self._world.registry.reregister_quirk = bool(enabled)

    def fail_ensure_service_race(self, times: int = 1) -> None:
        """The next ``times`` EnsureService calls that create a service lose a
        simulated concurrent-create race: the service is created, the call
        answers INTERNAL (CONTRACT 3.8)."""
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            raise InvalidArgument(f"times must be >= 0 (got {times!r})", "times")
        with self._world.lock:
            self._world.registry.ensure_race_failures = times

    # --- journal ------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Journaled calls, oldest first (see :meth:`Journal.calls`)."""
        return self.journal.calls(method)

    def wait_for(
        self, method_or_predicate: Any, count: int = 1, timeout: float = 5.0
    ) -> list[Call]:
        """Block (real time, bounded) until ``count`` calls match; see :meth:`Journal.wait_for`."""
        return self.journal.wait_for(method_or_predicate, count=count, timeout=timeout)

    def assert_called(self, method: str, **expected: Any) -> list[Call]:
        """See :meth:`Journal.assert_called`; the failure lists near misses."""
        return self.journal.assert_called(method, **expected)
