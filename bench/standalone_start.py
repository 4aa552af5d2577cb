"""Standalone start: a fresh process to its first answered call, against etcd.

Ours: ``python -m fake_registry --port 0`` (the interpreter running this
benchmark), wait for its first stdout line ``listening on HOST:PORT``, then a
fresh sync channel and one AuthenticateClient call. Baseline: a real
registry-like server started the way a test suite would start one, etcd from
Debian's ``etcd-server``: ``etcd --data-dir <fresh tmp dir>`` on free loopback
ports, polled every 5 ms on ``GET /health`` until it answers
``{"health":"true"}``. The etcd part is skipped, with the reason printed, when
the ``etcd`` binary is not on PATH (it is not part of CI).

Runs alternate (ours, etcd, ours, ...) after one untimed warm-up run of each
(page cache); the ratio is of medians.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from bench._grpc import CLIENT_KEY, CLIENT_SECRET, REPO_ROOT
from bench._stats import Result, Row, fmt_ms, median, ratio, verdict
from protos.user.v1 import user_pb2, user_pb2_grpc

NAME = "standalone_start"
TARGET_S = 0.5
TARGET_RATIO = 0.5
TARGET = (
    "median `python -m fake_registry --port 0` start -> first answered call <= 0.5 s, "
    "and <= 0.5x a real etcd's start -> healthy (at least 2x faster)"
)
START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _first_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no 'listening on' line in time")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the fake exited (code {proc.wait(5)}) before listening")
            buf += chunk
    return buf.split(b"\n", 1)[0].decode()


def _ours() -> tuple[float, float]:
    """(seconds to the 'listening on' line, seconds to the first answered call)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryFile() as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "fake_registry", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=REPO_ROOT,
            env=env,
        )
        try:
            try:
                line = _first_line(proc, time.monotonic() + START_TIMEOUT)
            except (TimeoutError, RuntimeError) as exc:
                stderr.seek(0)
                raise RuntimeError(f"{exc}: {stderr.read().decode()[-2000:]}") from exc
            t1 = time.perf_counter()
            prefix = "listening on "
            if not line.startswith(prefix):
                raise RuntimeError(f"unexpected first line from the fake: {line!r}")
            address = line[len(prefix) :].strip()
            with grpc.insecure_channel(address) as channel:
                reply = user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(
                    user_pb2.AuthenticateClientRequest(
                        client_key=CLIENT_KEY, client_secret=CLIENT_SECRET
                    ),
                    timeout=5,
                )
            t2 = time.perf_counter()
            assert reply.access_token
        finally:
            _stop(proc)
    return t1 - t0, t2 - t0


def _healthy(port: int) -> bool:
    """``GET /health`` on etcd's client port answers ``{"health":"true"}``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        return response.status == 200 and json.loads(response.read()).get("health") == "true"
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _etcd(binary: str) -> float:
    client, peer = _free_port(), _free_port()
    data_dir = tempfile.mkdtemp(prefix="bench-etcd-")
    client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [
                binary,
                "--name=bench",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=bench={peer_url}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _healthy(client):
                if proc.poll() is not None:
                    raise RuntimeError(f"etcd exited with code {proc.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError("etcd not healthy in time")
                time.sleep(0.005)
            return time.perf_counter() - t0
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _spread(values: list[float]) -> str:
    return f"n={len(values)}, min {fmt_ms(min(values))}, max {fmt_ms(max(values))}"


def run(quick: bool = False, iterations: int | None = None) -> Result:
    n = iterations or (3 if quick else 21)
    if importlib.util.find_spec("fake_registry.__main__") is None:
        return Result(
            name=NAME,
            target=TARGET,
            verdict="SKIP",
            notes=["fake_registry has no __main__ (the CLI is not there yet)"],
        )
    etcd = shutil.which("etcd")
    notes = [f"ours: {sys.executable} -m fake_registry --port 0"]
    if etcd is None:
        skip = "etcd part skipped: no `etcd` binary on PATH (apt-get install etcd-server)"
        print(f"   {skip}", flush=True)
        notes.append(skip)
    else:
        version = subprocess.run(
            [etcd, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.splitlines()
        notes.append(f"baseline: {Path(etcd)} ({version[0] if version else 'unknown version'})")

    _ours()  # warm-up, not counted
    if etcd:
        _etcd(etcd)
    ours_line: list[float] = []
    ours_total: list[float] = []
    base: list[float] = []
    for _ in range(n):
        line, total = _ours()
        ours_line.append(line)
        ours_total.append(total)
        if etcd:
            base.append(_etcd(etcd))
    ours_med, base_med = median(ours_total), median(base)
    r = ratio(ours_med, base_med)
    checks = [ours_med <= TARGET_S]
    if etcd:
        checks.append(r <= TARGET_RATIO)
    rows = [
        Row("ours: process start -> first call (median)", fmt_ms(ours_med), _spread(ours_total)),
        Row("ours: of which to 'listening on' (median)", fmt_ms(median(ours_line))),
    ]
    if etcd:
        rows += [
            Row("etcd: process start -> healthy (median)", fmt_ms(base_med), _spread(base)),
            Row("ratio ours/etcd (medians)", f"{r:.2f}", f"target <= {TARGET_RATIO}"),
        ]
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict(checks),
        ratio=r,
        rows=rows,
        notes=notes,
        data={"ours_total_s": ours_total, "ours_line_s": ours_line, "etcd_s": base},
    )
