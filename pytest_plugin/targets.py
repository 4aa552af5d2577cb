"""Where the plugin's registry lives: in this process, in a subprocess, or elsewhere.

A :class:`Target` owns (or connects to) one registry for a test session (one
per xdist worker) and knows how to bring it back to a clean state between
tests:

    inprocess     a :class:`~fake_registry.FakeRegistry` on this process's
                  thread, sharing a :class:`~fake_registry.ManualClock` with
                  the test; its handle *is* the fake
    subprocess    ``python -m fake_registry`` started for the session; the
                  handle is a :class:`~fake_registry.control_client.ControlClient`
    docker        the fake's image started for the session as a
                  :class:`~fake_registry.container.FakeRegistryContainer`
                  (testcontainers); the handle is its ControlClient
    HOST:PORT     an already running registry. If it answers the control
                  service (a standalone or containerised fake), the handle is
                  a ControlClient; otherwise (a real registry) there is no
                  handle, and tests that need one are skipped

This module imports the harness (``fake_registry``) only when a target is
built, so the plugin loads without the ``testing`` extra.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Credentials", "HarnessMissing", "Target", "build_target"]

#: Credentials of the fakes the plugin starts itself.
DEFAULT_KEY, DEFAULT_SECRET = "pytest-key", "pytest-secret"
#: Real seconds a subprocess fake gets to print its first line.
STARTUP_TIMEOUT = 30.0
#: Real seconds a container gets to answer (a cold engine can be slow).
CONTAINER_TIMEOUT = 120.0


class HarnessMissing(RuntimeError):
    """The ``testing`` extra is not installed; the message says what to install."""


#: Modules the ``testing`` extra brings (looked up, not imported: faker is slow to import).
HARNESS_MODULES = ("jwt", "faker", "grpc_health", "grpc_reflection")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_harness(*extra: str) -> None:
    """Check the fake's dependencies (and ``extra`` modules) are installed, or name the extra."""
    missing = [module for module in (*HARNESS_MODULES, *extra) if not _installed(module)]
    if missing:
        raise HarnessMissing(
            f"the fake registry fixtures need the 'testing' extra: "
            f"pip install 'aio-registry-sdk[testing]' "
            f"(missing module{'s' if len(missing) > 1 else ''}: {', '.join(missing)})"
        )


@dataclass(frozen=True, slots=True)
class Credentials:
    """A client key and secret the registry accepts. The secret is not in the repr."""

    client_key: str
    client_secret: str = field(repr=False)


@dataclass(eq=False)
class Target:
    """One registry for the session, and how to reset it between tests.

    Attributes:
        kind: ``"inprocess"``, ``"subprocess"``, ``"docker"`` or ``"external"``.
        address: ``host:port`` to dial.
        credentials: what the registry accepts.
        handle: the control API (a FakeRegistry or a ControlClient), or
            ``None`` for a registry without the fake's control service.
        clock: the ManualClock shared with the in-process fake; ``None`` elsewhere.
    """

    kind: str
    address: str
    credentials: Credentials
    handle: Any = None
    clock: Any = None
    #: Why there is no control plane, when that may be a configuration mistake.
    note: str = ""
    _closers: list[Any] = field(default_factory=list)

    @property
    def has_control(self) -> bool:
        return self.handle is not None

    def describe(self) -> str:
        """E.g. ``external registry at 10.0.0.5:50051 without control plane``."""
        control = "with control plane" if self.has_control else "without control plane"
        note = f" ({self.note})" if self.note else ""
        return f"{self.kind} registry at {self.address} {control}{note}"

    def close(self) -> None:
        """Run every closer (last added first), then raise the first failure, if any."""
        failures: list[BaseException] = []
        while self._closers:
            try:
                self._closers.pop()()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


def build_target(
    spec: str,
    *,
    client_key: str | None = None,
    client_secret: str | None = None,
    control_token: str | None = None,
    log_level: str | None = None,
    image: str | None = None,
) -> Target:
    """Start or connect to the registry that ``spec`` names.

    Args:
        spec: ``"inprocess"``, ``"subprocess"``, ``"docker"`` or ``"HOST:PORT"``.
        client_key, client_secret: credentials; required for ``HOST:PORT``.
        control_token: the external fake's control token, if it requires one.
        log_level: the fake's log level (its logs go to stderr; in a container,
            to the container's log).
        image: the image of the ``docker`` target; ``None`` means
            ``$FAKE_REGISTRY_IMAGE``, else ``aio-registry-fake:latest``.

    Raises:
        HarnessMissing: the ``testing`` extra is not installed.
        ValueError: a bad ``spec`` or missing credentials (the message says which).
        RuntimeError: the ``docker`` target cannot start its container (the
            message says why: no engine, no image, the fake exited).
    """
    if spec == "docker":
        require_harness("testcontainers")
        return _docker(log_level, image)
    require_harness()
    if spec == "inprocess":
        return _inprocess(log_level)
    if spec == "subprocess":
        return _subprocess(log_level)
    if spec.count(":") >= 1 and spec.rsplit(":", 1)[1].isdigit():
        if not client_key or not client_secret:
            raise ValueError(
                f"--fake-registry-target {spec} needs credentials: set "
                "--fake-registry-client-key and --fake-registry-client-secret "
                "(or the ini options / FAKE_REGISTRY_CLIENT_KEY and FAKE_REGISTRY_CLIENT_SECRET)"
            )
        return _external(spec, Credentials(client_key, client_secret), control_token)
    raise ValueError(
        f"--fake-registry-target must be inprocess, subprocess, docker or HOST:PORT (got {spec!r})"
    )


def _inprocess(log_level: str | None) -> Target:
    import logging

    from fake_registry import FakeRegistry, ManualClock

    logger = logging.getLogger("fake_registry")
    previous_level = logger.level
    if log_level:
        logger.setLevel(log_level.upper())
    clock = ManualClock()
    try:
        fake = FakeRegistry(clients={DEFAULT_KEY: DEFAULT_SECRET}, clock=clock).start()
    except BaseException:
        logger.setLevel(previous_level)
        raise
    target = Target(
        "inprocess", fake.address, Credentials(DEFAULT_KEY, DEFAULT_SECRET), fake, clock
    )
    # Closers run last-in first-out: stop the fake, then give the logger back its level.
    target._closers.append(lambda: logger.setLevel(previous_level))
    target._closers.append(fake.stop)
    return target


def _subprocess(log_level: str | None) -> Target:
    from fake_registry.control_client import ControlClient

    token = secrets.token_urlsafe(16)
    command = [
        sys.executable,
        "-m",
        "fake_registry",
        "--port",
        "0",
        "--client",
        f"{DEFAULT_KEY}:{DEFAULT_SECRET}",
        "--log-level",
        (log_level or "WARNING").upper(),
    ]
    env = {**os.environ, "FAKE_REGISTRY_CONTROL_TOKEN": token}  # not on the command line
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        command, stdout=subprocess.PIPE, stderr=None, text=True, env=env
    )
    address = _first_line_address(process)
    control = ControlClient(address, control_token=token)
    target = Target(
        "subprocess",
        address,
        Credentials(DEFAULT_KEY, DEFAULT_SECRET),
        control,
        _RemoteClock(control),
    )
    target._closers.append(lambda: _stop_process(process))
    target._closers.append(control.close)
    return target


def _docker(log_level: str | None, image: str | None) -> Target:
    from fake_registry.container import FakeRegistryContainer, unavailable_reason

    problem = unavailable_reason(image, local_image=False)  # the image may be pulled
    if problem:
        raise RuntimeError(f"--fake-registry-target docker: {problem}")
    container = FakeRegistryContainer(
        image,
        clients={DEFAULT_KEY: DEFAULT_SECRET},
        log_level=(log_level or "WARNING").upper(),
        start_timeout=CONTAINER_TIMEOUT,
    )
    try:
        container.start()  # removes the container if the fake does not answer
    except RuntimeError as exc:
        raise RuntimeError(f"--fake-registry-target docker: {exc}") from None
    control = container.control
    target = Target(
        "docker",
        container.address,
        Credentials(DEFAULT_KEY, DEFAULT_SECRET),
        control,
        _RemoteClock(control),
    )
    target._closers.append(container.stop)  # closes the control client too
    return target


def _first_line_address(process: subprocess.Popen[str]) -> str:
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        lines.append(process.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT)
    first = lines[0].strip() if lines else ""
    if not first.startswith("listening on "):
        _stop_process(process)
        raise RuntimeError(f"the fake subprocess did not start (first line: {first!r})")
    # Keep draining stdout so the fake never blocks on a full pipe.
    threading.Thread(target=_drain, args=(process,), daemon=True).start()
    return first.removeprefix("listening on ")


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for _ in process.stdout:
        pass


def _stop_process(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def _external(address: str, credentials: Credentials, control_token: str | None) -> Target:
    import grpc

    from fake_registry.control_client import ControlClient

    control = ControlClient(address, control_token=control_token)
    try:
        control.now()
    except grpc.RpcError as exc:
        control.close()
        if exc.code() not in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAUTHENTICATED):
            raise RuntimeError(
                f"cannot reach the registry at {address}: {exc.code().name}"
            ) from None
        if exc.code() is grpc.StatusCode.UNAUTHENTICATED:
            # A fake whose control token we lack: say how to give it.
            note = (
                "its control service refused the control token: pass "
                "--fake-registry-control-token or FAKE_REGISTRY_CONTROL_TOKEN"
            )
            return Target("external", address, credentials, note=note)
        # A real registry: no control service.
        return Target("external", address, credentials)
    target = Target("external", address, credentials, control, _RemoteClock(control))
    target._closers.append(control.close)
    return target


class _RemoteClock:
    """The test's view of a fake's time in another process.

    ``time()`` asks the fake; ``advance()`` and ``set_time()`` move it there.
    An SDK client in this process cannot share it the way it shares an
    in-process ManualClock: remote fakes run on real time plus an offset.
    """

    def __init__(self, control: Any) -> None:
        self._control = control

    def time(self) -> float:
        return float(self._control.now())

    def monotonic(self) -> float:
        return self.time()

    def advance(self, seconds: float) -> None:
        self._control.advance_clock(seconds)

    def set_time(self, unix_seconds: float) -> None:
        self._control.set_time(unix_seconds)

    def __repr__(self) -> str:
        return "RemoteClock()"
