"""``FakeRegistry``: the in-process handle on one fake registry + auth server."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from fake_registry.clock import Clock, OffsetClock
from fake_registry.control import FakeControls
from fake_registry.errors import InvalidArgument
from fake_registry.faults import FaultSet
from fake_registry.interceptors import DEFAULT_EXEMPT_METHODS, CallPipeline
from fake_registry.journal import Journal
from fake_registry.server import ServerThread, join_host_port
from fake_registry.servicers.auth import ClientAuthServicer
from fake_registry.servicers.control import ControlServicer
from fake_registry.servicers.guard import ErrorSink
from fake_registry.servicers.registry import RegistryServicer
from fake_registry.state.auth import DEFAULT_TOKEN_TTL, AuthState
from fake_registry.state.model import InstanceRecord, ServiceRecord
from fake_registry.state.world import World
from fake_registry.streams import StreamRegistry
from protos.fakecontrol.v1 import control_pb2, control_pb2_grpc
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

if TYPE_CHECKING:
    from fake_registry.tls import TlsMaterial

__all__ = ["DEFAULT_CLIENTS", "FakeRegistry"]

#: The credential a fake accepts when none is configured.
DEFAULT_CLIENTS: Mapping[str, str] = {"demo-key": "demo-secret"}

JsonText = str | Mapping[str, Any] | Sequence[Any] | None


def _json_text(value: JsonText) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


class FakeRegistry(FakeControls):
    """An in-memory registry and auth server speaking the real wire contract.

    Args:
        clients: accepted credentials, ``{client_key: client_secret}``;
            ``None`` means :data:`DEFAULT_CLIENTS`, ``{}`` means none.
        token_ttl: token lifetime in seconds (the real server: whole hours).
        clock: where time comes from; ``None`` is real time plus an offset
            that :meth:`advance_clock` moves (an :class:`OffsetClock`). Pass a
            :class:`~fake_registry.clock.ManualClock` to cross expiry points
            without sleeping.
        host: interface to bind; loopback by default.
        port: ``0`` picks a free port; read the result from :attr:`address`.
        control_token: when set, calls to the gRPC control service must carry
            metadata ``control-token: <token>``.
        tls: serve TLS: ``True`` generates a CA and a server certificate for
            the loopback names (see :attr:`tls`), or pass
            :class:`~fake_registry.tls.TlsMaterial`; ``None`` serves plaintext.

    The seeding and reading methods are thread-safe and may be called before
    :meth:`start`. Everything seeded before ``start()`` (or before the last
    :meth:`mark_initial`) is what :meth:`reset` returns to.
    """

    def __init__(
        self,
        clients: Mapping[str, str] | None = None,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        control_token: str | None = None,
        tls: TlsMaterial | bool | None = None,
        *,
        _shared_world: World | None = None,
        _signing_key: str | None = None,
    ) -> None:
        if isinstance(token_ttl, bool) or not isinstance(token_ttl, int) or token_ttl <= 0:
            raise ValueError(f"token_ttl must be a positive number of seconds (got {token_ttl!r})")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535 (got {port!r})")
        self.clock: Clock = clock if clock is not None else OffsetClock()
        if _shared_world is None:
            auth = AuthState(token_ttl=token_ttl)
            for key, secret in (DEFAULT_CLIENTS if clients is None else clients).items():
                auth.add_client(key, secret)
            _shared_world = World(auth=auth)
        self._world = _shared_world
        self._signing_key = _signing_key
        #: Unexpected exceptions raised inside the fake (each answered INTERNAL).
        self.errors = ErrorSink()
        #: Every call, stream frame and injected fault.
        self.journal = Journal(self.clock.time)
        self._faults = FaultSet()
        self._streams = StreamRegistry()
        self._pipeline = CallPipeline(
            self._world,
            self.clock,
            self.journal,
            self._faults,
            self._streams,
            self.errors,
            signing_key=_signing_key,
        )
        #: The certificates served, when TLS is on; clients trust ``tls.ca_pem``.
        self.tls: TlsMaterial | None = None
        if tls is True:
            from fake_registry.tls import generate_tls  # cryptography loads only when used

            self.tls = generate_tls()
        elif tls:
            self.tls = tls
        self._server = ServerThread(
            self._add_services,
            wrap_handler=self._pipeline.wrap,
            host=host,
            port=port,
            credentials=self.tls.server_credentials() if self.tls else None,
        )
        self._control_token = control_token
        self._started_once = False

    # --- lifecycle --------------------------------------------------------

    def _add_services(self, server: aio.Server) -> list[str]:
        user_pb2_grpc.add_ClientAuthServiceServicer_to_server(
            ClientAuthServicer(self._world, self.clock, self.errors, self._signing_key), server
        )
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(
            RegistryServicer(self._world, self.clock, self.errors, self.journal), server
        )
        control_pb2_grpc.add_FakeControlServiceServicer_to_server(
            ControlServicer(self, self.errors, self._control_token), server
        )
        return [
            user_pb2.DESCRIPTOR.services_by_name["ClientAuthService"].full_name,
            registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name,
            control_pb2.DESCRIPTOR.services_by_name["FakeControlService"].full_name,
        ]

    def start(self) -> FakeRegistry:
        """Start serving; returns once calls are answered."""
        if not self._started_once:
            self._world.mark_initial()
            self._started_once = True
        self._pipeline.rearm()
        self._server.start()
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop serving. Open streams are cancelled after ``grace`` seconds.

        The state is kept, and :meth:`start` serves it again on the same port.
        """
        if self._server.running:
            self._server.run(self._pipeline.release_held_calls())
        self._server.stop(grace)

    def add_node(
        self, *, same_secret: bool = True, port: int = 0, tls: TlsMaterial | None = None
    ) -> FakeRegistry:
        """Another node of this registry: same state, clock and clients, own port.

        Start it (or use it as a context manager) like any fake. Nodes share
        services, instances, credentials and tokens' validity when
        ``same_secret`` is true; with ``same_secret=False`` the node signs and
        verifies tokens with its own secret, so a token from one node is
        UNAUTHENTICATED on the other (CONTRACT 2.7: every node must share the
        secret). Each node has its own journal, fault rules and stream controls.
        """
        return FakeRegistry(
            clock=self.clock,
            host=self.host,
            port=port,
            control_token=self._control_token,
            tls=tls if tls is not None else self.tls,
            _shared_world=self._world,
            _signing_key=None if same_secret else secrets.token_urlsafe(64),
        )

    def restart(self, keep_state: bool = True) -> FakeRegistry:
        """Stop and start again on the same port (clients see it down meanwhile).

        With ``keep_state=False`` every service and instance is lost, as
        after a registry restart without persistence.
        """
        self.stop()
        if not keep_state:
            self.wipe()
        return self.start()

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """Client credentials trusting this fake's CA; ``None`` when it serves plaintext."""
        return self.tls.channel_credentials() if self.tls else None

    @property
    def running(self) -> bool:
        return self._server.running

    def __enter__(self) -> FakeRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        """The bound port (the requested one until :meth:`start`)."""
        return self._server.port

    @property
    def address(self) -> str:
        """``"host:port"`` to dial; valid after :meth:`start`."""
        if not self._server.running:
            raise RuntimeError("the fake is not started; call start() first")
        return join_host_port(self._server.host, self._server.port)

    def __repr__(self) -> str:
        state = "running" if self._server.running else "stopped"
        return f"FakeRegistry({self._server.host}:{self._server.port}, {state})"

    # --- state ------------------------------------------------------------

    def mark_initial(self) -> None:
        """Make the current state the one :meth:`reset` restores."""
        self._world.mark_initial()

    def reset(self) -> None:
        """Restore the initial state: seeded data, clients, token TTL, counters;
        and drop fault rules, stream controls, the journal and recorded errors.

        Open streams stay open (a test's own client closes them).
        """
        self._world.reset()
        self._faults.clear()
        self._streams.reset()
        self.journal.clear()
        self._pipeline.exempt = DEFAULT_EXEMPT_METHODS
        self.errors.take()

    def ensure_service(
        self,
        project: str,
        name: str,
        owner: str = "",
        description: str = "",
        spec: JsonText = None,
    ) -> ServiceRecord:
        """Create the service unless ``(project, name)`` exists; return it.

        ``spec`` may be JSON text or a JSON-able mapping; it is normalised as
        the server normalises ``spec_json``.

        Raises:
            InvalidArgument: empty ``project`` or ``name``.
        """
        with self._world.lock:
            service, _ = self._world.registry.ensure_service(
                self.clock.time(), project, name, owner, description, _json_text(spec)
            )
        return service

    def register_instance(
        self,
        service_id: int,
        instance_key: str = "",
        *,
        env: str = "dev",
        host: str = "127.0.0.1",
        endpoint: str = "",
        endpoints: JsonText = None,
        meta: JsonText = None,
        ttl_seconds: int = 60,
        http_port: int = 0,
        grpc_port: int = 0,
    ) -> InstanceRecord:
        """Register (upsert) an instance exactly as RegisterInstance would.

        ``endpoint`` defaults to ``host:grpc_port`` (or ``host:http_port``, or
        ``host``) when neither it nor ``endpoints`` is given.

        Raises:
            InvalidArgument: a field fails the server's validation.
            NotFound: no service with ``service_id``.
        """
        endpoints_json = _json_text(endpoints)
        if not endpoint and not endpoints_json and host:
            port = grpc_port or http_port
            endpoint = f"{host}:{port}" if port else host
        with self._world.lock:
            return self._world.registry.register_instance(
                self.clock.time(),
                service_id,
                instance_key=instance_key,
                env=env,
                host=host,
                endpoint=endpoint,
                meta_json=_json_text(meta),
                ttl_seconds=ttl_seconds,
                endpoints_json=endpoints_json,
                http_port=http_port,
                grpc_port=grpc_port,
            )

    def seed(self, services: Sequence[Mapping[str, Any]], *, mark_initial: bool = False) -> int:
        """Create services and register their instances (the seed-file schema).

        Args:
            services: service mappings as in docs/seed-files.md.
            mark_initial: make the result the state :meth:`reset` returns to.

        Returns:
            How many instances were registered.

        Raises:
            InvalidArgument: the data is invalid; the message names the path
                of the bad field (``services[1].instances[0].env ...``).
        """
        from fake_registry.seed import SeedError, apply_seed

        try:
            counts = apply_seed(self, services, mark_initial=mark_initial)  # type: ignore[arg-type]
        except SeedError as exc:
            raise InvalidArgument(str(exc), "services") from None
        return counts.instances

    def services(self) -> list[ServiceRecord]:
        """Every service definition, by ascending id."""
        with self._world.lock:
            return self._world.registry.services()

    def instances(
        self, service_id: int | None = None, *, online: bool | None = None
    ) -> list[InstanceRecord]:
        """Stored instances (deregistered ones excluded), by ascending id.

        Args:
            service_id: only this service's instances; ``None`` means all.
            online: ``True`` keeps only online ones, ``False`` only lapsed
                ones, ``None`` both.
        """
        with self._world.lock:
            rows = self._world.registry.instances(service_id)
        if online is None:
            return rows
        now = self.clock.time()
        return [r for r in rows if r.is_online(now) is online]
