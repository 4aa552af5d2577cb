"""Fixtures for the black-box contract tests of the fake (CONTRACT sections 1-3).

Everything here talks to the fake over loopback gRPC through the generated
stubs. The only private access is reading the fake's single configured
credential, so the tests need not repeat the root conftest's constants.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

import pytest

from fake_registry import FakeRegistry
from fake_registry.state.auth import Credential
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from pytest_plugin.contract.support import HeartbeatSession

Metadata = tuple[tuple[str, str], ...]


OpenHeartbeat = Callable[[Metadata | None], HeartbeatSession]


@pytest.fixture
def open_heartbeat(
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
) -> Iterator[OpenHeartbeat]:
    """Open heartbeat streams (with the given metadata); all are cancelled at teardown."""
    sessions: list[HeartbeatSession] = []

    def open_(metadata: Metadata | None) -> HeartbeatSession:
        session = HeartbeatSession(registry_stub, metadata, timeout=5)
        sessions.append(session)
        return session

    yield open_
    for session in sessions:
        session.cancel()


@pytest.fixture
def credential(fake: FakeRegistry) -> Credential:
    """The one credential the shared ``fake`` fixture is configured with."""
    with fake._world.lock:  # private: our own tests may read the fake's state
        (only,) = fake._world.auth.credentials.values()
    return only


@pytest.fixture
def service(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, md: Metadata
) -> registry_pb2.Service:
    """A service created through EnsureService."""
    reply = registry_stub.EnsureService(
        registry_pb2.EnsureServiceRequest(project="shop", name="cart"), metadata=md, timeout=5
    )
    assert reply.created
    return reply.service


# --- the standalone fake as a real process (python -m fake_registry ...) ----------
# Every wait is bounded: the first stdout line is read by a thread and fetched
# with a timeout, and exits are awaited with ``Popen.wait(timeout)``.

import re  # noqa: E402 - appended section
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from signal import Signals  # noqa: E402
from typing import IO  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 15.0  # generous: a loaded CI machine; a start normally takes ~0.3 s
EXIT_TIMEOUT = 10.0
LISTENING = re.compile(r"listening on (127\.0\.0\.1:\d+)")


@dataclass(frozen=True)
class Exited:
    code: int
    stdout: str
    stderr: str


def _collect(stream: IO[str], lines: queue.SimpleQueue[str | None], into: list[str]) -> None:
    with stream:
        for line in stream:
            into.append(line)
            lines.put(line)
    lines.put(None)  # EOF


class Standalone:
    """One ``python -m fake_registry`` process with its output read by threads."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "fake_registry", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._out: list[str] = []
        self._err: list[str] = []
        self._threads = [
            threading.Thread(target=_collect, args=(self.proc.stdout, self._lines, self._out)),
            threading.Thread(
                target=_collect, args=(self.proc.stderr, queue.SimpleQueue(), self._err)
            ),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def first_line(self) -> str:
        """The next stdout line (the first one, on the first call)."""
        try:
            line = self._lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no stdout line within {START_TIMEOUT} s")
        if line is None:
            exited = self.wait()
            pytest.fail(f"exited with {exited.code} before any output: {exited.stderr}")
        return line.rstrip("\n")

    def address(self) -> str:
        line = self.first_line()
        match = LISTENING.fullmatch(line)
        assert match, f"unexpected first line {line!r}"
        return match.group(1)

    def wait(self) -> Exited:
        code = self.proc.wait(EXIT_TIMEOUT)
        for thread in self._threads:
            thread.join(EXIT_TIMEOUT)
        return Exited(code, "".join(self._out), "".join(self._err))

    def stop(self, sig: Signals) -> Exited:
        self.proc.send_signal(sig)
        return self.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()


def _tracked_standalone() -> Iterator[type[Standalone]]:
    started: list[Standalone] = []

    class Tracked(Standalone):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Tracked
    for proc in started:
        proc.kill()


@pytest.fixture
def standalone() -> Iterator[type[Standalone]]:
    """Start processes with ``standalone(*args)``; any left running are killed."""
    yield from _tracked_standalone()


@pytest.fixture(scope="module")
def standalone_module() -> Iterator[type[Standalone]]:
    """As ``standalone``, for processes shared by a test module."""
    yield from _tracked_standalone()
