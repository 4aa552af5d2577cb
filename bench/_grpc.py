"""gRPC helpers shared by the benchmarks: the bare baseline server, auth, clients.

The baseline is a bare ``grpc.aio`` server with one catch-all generic handler
and no interceptors, started on a dedicated event-loop thread exactly as
``fake_registry.server.ServerThread`` starts the fake. It passes bytes through
untouched (no protobuf work): unary methods answer an empty message, methods
whose name ends in ``Stream`` echo every request back.

Load generators run in a child process (``python -m bench._client``) so the
client never shares the server's GIL; :func:`run_client` starts one and reads
its JSON report.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from bench._stats import percentile
from protos.user.v1 import user_pb2, user_pb2_grpc

__all__ = [
    "AUTH_METHOD",
    "CLIENT_KEY",
    "CLIENT_SECRET",
    "HEARTBEAT_METHOD",
    "LIST_METHOD",
    "REGISTER_METHOD",
    "BareServerThread",
    "ServerProbe",
    "authenticate",
    "run_client",
]

CLIENT_KEY = "demo-key"
CLIENT_SECRET = "demo-secret"

AUTH_METHOD = "/xiaozhizhang.user.v1.ClientAuthService/AuthenticateClient"
REGISTER_METHOD = "/xiaozhizhang.registry.v1.RegistryService/RegisterInstance"
LIST_METHOD = "/xiaozhizhang.registry.v1.RegistryService/ListServices"
HEARTBEAT_METHOD = "/xiaozhizhang.registry.v1.RegistryService/HeartbeatStream"

REPO_ROOT = Path(__file__).resolve().parent.parent


async def _empty_unary(_request: bytes, _context: Any) -> bytes:
    return b""


async def _echo_stream(requests: AsyncIterator[bytes], _context: Any) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


_UNARY = grpc.unary_unary_rpc_method_handler(_empty_unary)
_STREAM = grpc.stream_stream_rpc_method_handler(_echo_stream)


class _CatchAll(grpc.GenericRpcHandler):
    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        return _STREAM if handler_call_details.method.endswith("Stream") else _UNARY


class BareServerThread:
    """The baseline: a bare grpc.aio server on its own loop thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: aio.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def start(self) -> BareServerThread:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._run_loop, args=(loop,), daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        self.port = asyncio.run_coroutine_threadsafe(self._start(), loop).result(10)
        return self

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
        loop.close()

    async def _start(self) -> int:
        server = aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers((_CatchAll(),))
        port = server.add_insecure_port(f"{self.host}:{self.port}")
        await server.start()
        self._server = server
        return port

    def stop(self) -> None:
        server, loop, thread = self._server, self._loop, self._thread
        self._server = self._loop = self._thread = None
        if server is not None and loop is not None:
            asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(10)
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(10)

    def __enter__(self) -> BareServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def authenticate(address: str, timeout: float = 5.0) -> str:
    """A bearer token from the fake at ``address`` (default credential)."""
    with grpc.insecure_channel(address) as channel:
        reply = user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(
            user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET),
            timeout=timeout,
        )
    return reply.access_token


def run_client(args: Sequence[str], timeout: float, tokens: Sequence[str] = ()) -> dict[str, Any]:
    """Run ``python -m bench._client ARGS`` and return the JSON it prints last.

    ``tokens`` travel in the environment (``BENCH_TOKENS``, one per line),
    never on the command line, where any user could read them. The child is
    killed if it outlives ``timeout`` seconds.
    """
    env = dict(os.environ)
    env["BENCH_TOKENS"] = "\n".join(tokens)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "bench._client", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"load client failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}"
        )
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"load client printed nothing:\n{proc.stderr.strip()[-2000:]}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


class ServerProbe:
    """Watches an in-process server while a load runs: loop lag and GC pauses.

    Loop lag: a coroutine on the server's loop sleeps 10 ms at a time and
    records how late it wakes (time the loop was busy or starved of CPU).
    GC pauses: ``gc.callbacks`` time every collection in this process, which
    blocks the server's loop thread as it blocks every thread. Both are the
    same instruments for ours and the baseline.
    """

    TICK = 0.010

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._lags: list[float] = []
        self._gc: list[tuple[int, float]] = []
        self._gc_start = 0.0
        #: Wall-clock times of notable events, to line up with slow answers.
        self.gc_events: list[tuple[float, int, float]] = []  # (time, generation, seconds)
        self.lag_spikes: list[tuple[float, float]] = []  # (time, seconds late)
        self._stop = threading.Event()
        self._future: Any = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            took = time.perf_counter() - self._gc_start
            self._gc.append((info["generation"], took))
            if took > 0.005 and len(self.gc_events) < 1000:
                self.gc_events.append((time.time() - took, info["generation"], took))

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3600
        while not self._stop.is_set() and loop.time() < deadline:
            before = loop.time()
            await asyncio.sleep(self.TICK)
            lag = max(0.0, loop.time() - before - self.TICK)
            self._lags.append(lag)
            if lag > 0.020 and len(self.lag_spikes) < 10_000:
                self.lag_spikes.append((time.time() - lag, lag))

    def __enter__(self) -> ServerProbe:
        gc.callbacks.append(self._on_gc)
        if self._loop is not None:
            self._future = asyncio.run_coroutine_threadsafe(self._watch(), self._loop)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)
        self._stop.set()
        if self._future is not None:
            self._future.result(5)

    def report(self) -> dict[str, Any]:
        gen2 = [d for g, d in self._gc if g == 2]
        return {
            "loop_lag_p99": percentile(self._lags, 99) if self._lags else float("nan"),
            "loop_lag_max": max(self._lags, default=float("nan")),
            "gc_collections": len(self._gc),
            "gc_total_s": sum(d for _, d in self._gc),
            "gc_max_s": max((d for _, d in self._gc), default=0.0),
            "gc_gen2": len(gen2),
            "gc_gen2_max_s": max(gen2, default=0.0),
            "gc_events": self.gc_events,
            "lag_spikes": self.lag_spikes,
        }
