"""``FakeRegistryContainer``: the fake's image (``./Dockerfile``) as a testcontainers container.

::

    from fake_registry.container import FakeRegistryContainer

    with FakeRegistryContainer(clients={"ci-key": "ci-secret"}, token_ttl=60) as fake:
        channel = grpc.insecure_channel(fake.address)  # the published port
        fake.control.advance_clock(3600)  # a ControlClient, with the control token

``start()`` returns once the fake answers a gRPC call through the published
port (``grpc.health.v1.Health/Check`` answering ``SERVING``), not when a log
line appears; a fake that exits while starting (a bad flag, a bad seed file)
raises with its one-line error. Every container gets a fresh random control
token, passed in the environment, so only this handle drives its control
service even though the port is published.

Requires the ``docker`` extra (testcontainers) and a Docker engine; the image
is ``$FAKE_REGISTRY_IMAGE``, else :data:`DEFAULT_IMAGE`, built with
``docker build -t aio-registry-fake .`` (docs/containers.md).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import grpc
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from fake_registry.control_client import ControlClient
from fake_registry.tls import DEFAULT_HOSTS, TlsMaterial, generate_tls

__all__ = [
    "CONTAINER_PORT",
    "DEFAULT_IMAGE",
    "IMAGE_ENV",
    "START_TIMEOUT",
    "FakeRegistryContainer",
    "default_image",
    "unavailable_reason",
]

#: The image a container runs unless told otherwise (``docker build -t aio-registry-fake .``).
DEFAULT_IMAGE = "aio-registry-fake:latest"
#: Environment variable naming the image to run instead of :data:`DEFAULT_IMAGE`.
IMAGE_ENV = "FAKE_REGISTRY_IMAGE"
#: The port the fake listens on inside the container (the image's ``EXPOSE``).
CONTAINER_PORT = 50051
#: Real seconds ``start()`` waits for the fake to answer.
START_TIMEOUT = 60.0
#: Where a seed file is copied inside the container (its name is kept: it gives the format).
SEED_DIR = "/seed"
#: Where a TLS container's certificate, key and CA bundle are copied.
TLS_DIR = "/fake-registry-tls"
#: The name the certificate of a TLS container is always valid for, whatever address
#: Docker publishes the port on: clients verify it with this name (``server_name``).
TLS_SERVER_NAME = "localhost"
_TOKEN_ENV = "FAKE_REGISTRY_CONTROL_TOKEN"  # noqa: S105 - a variable name
# The docker-proxy behind a published port accepts connections before the fake
# listens and drops them; short reconnect backoffs notice the fake within ~0.1 s.
_FAST_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 200),
)
_ATTEMPT = 0.5  # real seconds per readiness call


def default_image() -> str:
    """``$FAKE_REGISTRY_IMAGE`` if set, else :data:`DEFAULT_IMAGE`."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def unavailable_reason(image: str | None = None, *, local_image: bool = True) -> str | None:
    """Why a container of ``image`` cannot start here, or ``None`` if it can.

    Checks that testcontainers is importable, a Docker engine answers, and
    (unless ``local_image`` is false) that ``image`` (default:
    :func:`default_image`) is in the engine's image store. It never pulls: with
    ``local_image``, an image that must come from a registry counts as missing.
    """
    image = image or default_image()
    try:
        import docker
        import docker.errors
    except ImportError:
        return "testcontainers is not installed: pip install 'aio-registry-sdk[docker]'"
    problem = _socket_problem()
    if problem:
        return problem
    try:
        client = docker.from_env(timeout=10)
    except docker.errors.DockerException as exc:
        return f"no Docker engine answers ({_first_line(exc)})"
    try:
        client.ping()
        if local_image:
            client.images.get(image)
    except docker.errors.ImageNotFound:
        return f"image {image} is not built: docker build -t {image} . (docs/containers.md)"
    except docker.errors.DockerException as exc:
        return f"no Docker engine answers ({_first_line(exc)})"
    finally:
        client.close()
    return None


def _socket_problem() -> str | None:
    """Whether the engine's Unix socket accepts a connection (other transports: not checked).

    Checked by hand first because docker-py leaks its socket when the connect
    fails (a ResourceWarning later, an error under ``-W error``).
    """
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        try:
            probe.connect(host.removeprefix("unix://"))
        except OSError as exc:
            return f"no Docker engine answers at {host} ({exc.strerror or exc})"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class FakeRegistryContainer(DockerContainer):
    """The standalone fake in a container, with the CLI's options.

    Args:
        image: the image; ``None`` means ``$FAKE_REGISTRY_IMAGE``, else
            :data:`DEFAULT_IMAGE`.
        clients: ``{client_key: client_secret}`` the fake accepts (``--client``);
            ``None`` means the fake's default ``demo-key:demo-secret``. The
            secrets are on the container's command line: use test credentials.
        token_ttl: token lifetime in seconds (``--token-ttl``); ``None`` means
            the fake's default, 86,400.
        seed: a ``.toml`` or ``.json`` seed file on this machine (``--seed``),
            copied into the container before it starts (a copy rather than a
            bind mount, so it also works with a remote Docker engine).
        fake_services: preload this many generated services (``--fake-services``).
        faker_seed: seed of the generated services (``--faker-seed``).
        control_token: the control service's token; ``None`` makes a random one.
            Read it back from :attr:`control_token`.
        log_level: the fake's log level (``--log-level``): its logs are the
            container's stderr.
        tls: serve TLS with a throw-away CA and server certificate generated here and
            copied in (:attr:`tls`, :meth:`channel_credentials`); clients verify the
            server as :data:`TLS_SERVER_NAME`. Docker's health check trusts the same CA.
        extra_args: more ``fake-registry`` flags, appended as given.
        start_timeout: real seconds ``start()`` waits for the fake to answer.
        **kwargs: passed to :class:`~testcontainers.core.container.DockerContainer`
            (``docker_client_kw``, ``name``, ``network``, ...).
    """

    def __init__(
        self,
        image: str | None = None,
        *,
        clients: Mapping[str, str] | None = None,
        token_ttl: int | None = None,
        seed: str | os.PathLike[str] | None = None,
        fake_services: int = 0,
        faker_seed: int | None = None,
        control_token: str | None = None,
        log_level: str | None = None,
        tls: bool = False,
        extra_args: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(image or default_image(), **kwargs)
        self._clients = dict(clients) if clients is not None else None
        self._control_token = control_token or secrets.token_urlsafe(24)
        self._start_timeout = start_timeout
        self._control: ControlClient | None = None
        self._address: str | None = None
        command: list[str] = []
        for key, secret in (self._clients or {}).items():
            command += ["--client", f"{key}:{secret}"]
        if token_ttl is not None:
            command += ["--token-ttl", str(token_ttl)]
        if seed is not None:
            source = Path(seed).resolve()
            if not source.is_file():
                raise FileNotFoundError(f"seed file {seed} does not exist")
            inside = f"{SEED_DIR}/{source.name}"
            self.with_copy_into_container(source, inside, 0o644)
            command += ["--seed", inside]
        if fake_services:
            command += ["--fake-services", str(fake_services)]
        if faker_seed is not None:
            command += ["--faker-seed", str(faker_seed)]
        if log_level is not None:
            command += ["--log-level", log_level]
        self._tls = self._with_tls() if tls else None
        if self._tls is not None:
            command += ["--tls-cert", f"{TLS_DIR}/server.pem", "--tls-key", f"{TLS_DIR}/server.key"]
        command += list(extra_args)
        self.with_command(command)
        self.with_env(_TOKEN_ENV, self._control_token)
        self.with_exposed_ports(CONTAINER_PORT)

    def _with_tls(self) -> TlsMaterial:
        """A throw-away CA and server certificate, copied in; Docker's health check uses it."""
        hosts = [*DEFAULT_HOSTS]
        with contextlib.suppress(Exception):  # the published host, when known before start
            host = self.get_docker_client().host()
            if host not in hosts:
                hosts.append(host)
        material = generate_tls(hosts)
        # World-readable: the fake runs as a non-root user, and this key protects nothing
        # but a test's throw-away certificate.
        self.with_copy_into_container(material.cert_pem, f"{TLS_DIR}/server.pem", 0o644)
        self.with_copy_into_container(material.key_pem, f"{TLS_DIR}/server.key", 0o644)
        self.with_copy_into_container(material.ca_pem, f"{TLS_DIR}/ca.pem", 0o644)
        health = ["fake-registry", "health", "--target", f"127.0.0.1:{CONTAINER_PORT}"]
        self.with_kwargs(
            healthcheck={
                "test": ["CMD", *health, "--tls-ca", f"{TLS_DIR}/ca.pem"],
                "interval": 5_000_000_000,  # nanoseconds, as the Docker API wants them
                "timeout": 5_000_000_000,
                "start_period": 10_000_000_000,
                "retries": 3,
            }
        )
        return material

    # --- what a test uses ---------------------------------------------------

    @property
    def tls(self) -> TlsMaterial | None:
        """The certificate material of a ``tls=True`` container (``ca_pem`` to trust)."""
        return self._tls

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """Client credentials trusting this fake's CA; ``None`` when it serves plaintext.

        Verify the server as :data:`TLS_SERVER_NAME` (the ``grpc.ssl_target_name_override``
        channel option, ``sdk.TlsConfig(server_name=...)``): the published address
        depends on the Docker setup, the name in the certificate does not.
        """
        return self._tls.channel_credentials() if self._tls is not None else None

    def channel_options(self) -> list[tuple[str, Any]]:
        """Channel options a client of this fake needs (the TLS name override, if any)."""
        return [] if self._tls is None else [("grpc.ssl_target_name_override", TLS_SERVER_NAME)]

    @property
    def address(self) -> str:
        """``host:port`` of the fake on this machine (the published port)."""
        if self._address is None:
            host = self.get_container_host_ip()
            host = "127.0.0.1" if host == "localhost" else host
            host = f"[{host}]" if ":" in host else host
            self._address = f"{host}:{self.get_exposed_port(CONTAINER_PORT)}"
        return self._address

    @property
    def control_token(self) -> str:
        """The control service's token (``fake-registry ctl --control-token``)."""
        return self._control_token

    @property
    def clients(self) -> dict[str, str] | None:
        """The credentials given to the fake; ``None`` when it runs with its default."""
        return dict(self._clients) if self._clients is not None else None

    @property
    def control(self) -> ControlClient:
        """A :class:`~fake_registry.control_client.ControlClient` of this fake, with its token.

        It has the method names of the in-process control API; closed by ``stop()``.
        """
        if self._control is None:
            self._control = ControlClient(
                self.address,
                control_token=self._control_token,
                credentials=self.channel_credentials(),
                options=self.channel_options(),
            )
        return self._control

    def logs(self) -> str:
        """What the fake wrote so far, stdout then stderr."""
        stdout, stderr = self.get_logs()
        return (stdout + stderr).decode(errors="replace")

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> Self:
        """Create and start the container, then wait until the fake answers.

        Raises:
            RuntimeError: the image cannot be found or pulled, the fake exited
                while starting (its error line is in the message), or it did
                not answer within ``start_timeout``. The container is removed.
        """
        import docker.errors

        try:
            super().start()
        except docker.errors.APIError as exc:
            reaper = testcontainers_config.ryuk_image
            name = reaper.rsplit(":", 1)[0]
            if name in str(exc) or quote(name, safe="") in str(exc):  # pulled before ours
                problem = (
                    f"testcontainers cannot start its reaper container {reaper}: "
                    f"{_first_line(exc)} (where Docker Hub is out of reach, set "
                    "TESTCONTAINERS_RYUK_DISABLED=true: stop() still removes the container)"
                )
            else:
                problem = f"cannot start a container of {self.image}: {_first_line(exc)}"
                if not self._image_is_local():
                    problem += f" (not built here? docker build -t {self.image} .)"
            self._remove()
            raise RuntimeError(problem) from None
        try:
            self._wait_until_answering()
        except BaseException:
            self._remove()
            raise
        return self

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        """Close the control client and remove the container (again: nothing happens)."""
        import docker.errors

        if self._control is not None:
            self._control.close()
            self._control = None
        self._address = None
        if self._container is None:
            return
        try:
            super().stop(force=force, delete_volume=delete_volume)
        except docker.errors.NotFound:  # removed behind our back: what stop() wanted
            self.get_docker_client().client.close()
        finally:
            self._container = None

    def __repr__(self) -> str:
        where = self._address or "not started"
        return f"FakeRegistryContainer(image={self.image!r}, address={where!r})"

    def _image_is_local(self) -> bool:
        import docker.errors

        try:
            self.get_docker_client().client.images.get(self.image)
        except docker.errors.DockerException:
            return False
        return True

    def _remove(self) -> None:
        with contextlib.suppress(Exception):  # already failing: keep the first error
            self.stop()

    def _exited(self) -> str | None:
        """The fake's own error if the container stopped, else ``None``."""
        container = self.get_wrapped_container()
        container.reload()
        if container.status not in ("exited", "dead"):
            return None
        code = container.attrs.get("State", {}).get("ExitCode")
        lines = self.get_logs()[1].decode(errors="replace").strip().splitlines()
        return f"exit code {code}: {lines[-1] if lines else 'no output on stderr'}"

    def _wait_until_answering(self) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + self._start_timeout
        pause = threading.Event()  # never set: a bounded wait between fast failures
        last = "no answer yet"
        credentials = self.channel_credentials()
        options = [*_FAST_RECONNECT, *self.channel_options()]
        channel = (
            grpc.insecure_channel(self.address, options=options)
            if credentials is None
            else grpc.secure_channel(self.address, credentials, options=options)
        )
        with channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # grpc_health ships no hints
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(
                        f"the fake in {self.image} did not answer at {self.address} within "
                        f"{self._start_timeout:g} s (last: {last}); its output:\n{self.logs()}"
                    )
                began = time.monotonic()
                try:
                    reply = stub.Check(
                        health_pb2.HealthCheckRequest(),
                        timeout=min(_ATTEMPT, remaining),
                        wait_for_ready=True,
                    )
                except grpc.RpcError as exc:
                    last = exc.code().name
                else:
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                    last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                exited = self._exited()
                if exited is not None:
                    raise RuntimeError(f"the fake in {self.image} exited while starting, {exited}")
                pause.wait(max(0.0, 0.05 - (time.monotonic() - began)))
