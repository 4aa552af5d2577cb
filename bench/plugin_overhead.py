"""1,000 tests using the ``fake_registry`` fixture against a plain session-scoped server fixture.

The benchmark writes three small pytest suites into a temporary directory,
each with its own ``pytest.ini`` (so nothing of this repository's pytest
configuration applies) and 1,000 parametrized tests that make ONE
AuthenticateClient call each, with the same call shape everywhere: a
session-scoped ``grpc`` channel, ``channel.unary_unary(METHOD)`` on the
pre-serialized request, the answer decoded with ``FromString``:

- ``ours``: each test takes ``fake_registry`` (reset, clock reset and error
  check per test) and ``registry_credentials``; the channel dials the
  session's in-process fake (``fake_registry_target.address``).
- ``baseline``: a plain session-scoped fixture starting ``bench._grpc``'s bare
  ``grpc.aio`` server (one catch-all generic handler, answers an empty
  message) on its own loop thread; same call, same bytes. The plugin is
  installed, so it loads here too, but no test uses it.
- ``fake, no fixture`` (diagnostic): the fake's session target and channel,
  but no per-test fixture; it splits ``ours - baseline`` into the per-test
  fixtures and the fake's own work on the call.

Each suite runs as ``sys.executable -m pytest -q -p no:cacheprovider -p
no:randomly`` in a fresh process, timed on the wall clock from spawn to exit
(and by the child's CPU time). Rounds alternate the suites (ours, baseline,
no-fixture, then reversed); the overhead per test is ``(ours - baseline) /
N`` of the medians, and the paired per-round differences are the noise check.
Before the timed rounds, one untimed run of each suite records pytest's own
per-phase durations (setup, call, teardown), per-fixture setup times and
``reset()`` times through a conftest hook that is off in the timed runs.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._grpc import AUTH_METHOD, CLIENT_KEY, CLIENT_SECRET, REPO_ROOT
from bench._stats import Result, Row, fmt_ms, median, ratio, verdict

NAME = "plugin_overhead"
TARGET_S = 0.005
TARGET = (
    "1,000 tests each using fake_registry and making one call: fixture overhead per test "
    "<= 5 ms on top of the call, vs the same tests on a plain session-scoped grpc.aio server"
)
TESTS = 1000
QUICK_TESTS = 200
SIDES = ("ours", "baseline", "nofixture")
LABELS = {"ours": "ours", "baseline": "baseline", "nofixture": "fake, no fixture"}
RUN_TIMEOUT = 600.0

PYTEST_INI = """\
[pytest]
# Written by bench.plugin_overhead: none of the repository's pytest config applies.
asyncio_default_fixture_loop_scope = function
"""

#: The start of every suite's conftest: hooks only when BENCH_PHASES names an output file.
PHASES_CONFTEST = """\
import json
import os
import time

import pytest

_OUT = os.environ.get("BENCH_PHASES")
_phases = {"setup": [], "call": [], "teardown": []}
_fixtures = {}
_resets = []

if _OUT:

    def pytest_runtest_logreport(report):
        _phases[report.when].append(report.duration)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(fixturedef, request):
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            if fixturedef.scope == "function":
                took = time.perf_counter() - start
                _fixtures.setdefault(fixturedef.argname, []).append(took)

    def pytest_sessionfinish(session):
        payload = {"phases": _phases, "fixtures": _fixtures, "resets": _resets}
        with open(_OUT, "w") as f:
            json.dump(payload, f)
"""

CONFTEST = {
    "ours": """\
import grpc


@pytest.fixture(scope="session")
def channel(fake_registry_target):
    with grpc.insecure_channel(fake_registry_target.address) as ch:
        yield ch


if _OUT:

    @pytest.fixture(scope="session", autouse=True)
    def _time_reset(fake_registry_target):
        handle = fake_registry_target.handle
        original = handle.reset

        def timed():
            start = time.perf_counter()
            original()
            _resets.append(time.perf_counter() - start)

        handle.reset = timed
        yield
        del handle.reset
""",
    "baseline": """\
import grpc

from bench._grpc import BareServerThread


@pytest.fixture(scope="session")
def bare_server():
    with BareServerThread() as server:
        yield server


@pytest.fixture(scope="session")
def channel(bare_server):
    with grpc.insecure_channel(bare_server.address) as ch:
        yield ch
""",
    "nofixture": """\
import grpc


@pytest.fixture(scope="session")
def channel(fake_registry_target):
    with grpc.insecure_channel(fake_registry_target.address) as ch:
        yield ch


@pytest.fixture(scope="session")
def credentials(fake_registry_target):
    return fake_registry_target.credentials
""",
}

TEST_TEMPLATE = """\
import pytest

from protos.user.v1 import user_pb2

METHOD = {method!r}
KEY, SECRET = {key!r}, {secret!r}


@pytest.mark.parametrize("i", range({n}))
def test_call(i, channel{fixtures}):
    request = user_pb2.AuthenticateClientRequest(client_key={key_expr}, client_secret={secret_expr})
    answer = channel.unary_unary(METHOD)(request.SerializeToString(), timeout=5.0)
    reply = user_pb2.AuthenticateClientResponse.FromString(answer)
    assert {check}
"""

SUITE_ARGS = {
    "ours": {
        "fixtures": ", fake_registry, registry_credentials",
        "key_expr": "registry_credentials.client_key",
        "secret_expr": "registry_credentials.client_secret",
        "check": "reply.access_token",
    },
    "baseline": {
        "fixtures": "",
        "key_expr": "KEY",
        "secret_expr": "SECRET",
        "check": 'reply.access_token == ""',
    },
    "nofixture": {
        "fixtures": ", credentials",
        "key_expr": "credentials.client_key",
        "secret_expr": "credentials.client_secret",
        "check": "reply.access_token",
    },
}

PASSED = re.compile(r"(\d+) passed")


def _write_suites(root: Path, n: int) -> dict[str, Path]:
    suites = {}
    for side in SIDES:
        d = root / side
        d.mkdir()
        (d / "pytest.ini").write_text(PYTEST_INI)
        (d / "conftest.py").write_text(PHASES_CONFTEST + "\n\n" + CONFTEST[side])
        (d / "test_calls.py").write_text(
            TEST_TEMPLATE.format(
                method=AUTH_METHOD, key=CLIENT_KEY, secret=CLIENT_SECRET, n=n, **SUITE_ARGS[side]
            )
        )
        suites[side] = d
    return suites


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_suite(suite: Path, n: int, phases_out: Path | None = None) -> dict[str, Any]:
    """One pytest process over ``suite``: wall seconds, child CPU seconds, pytest's own time."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(suite), str(REPO_ROOT), env.get("PYTHONPATH")])
    )
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("BENCH_PHASES", None)
    if phases_out is not None:
        env["BENCH_PHASES"] = str(phases_out)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-c",
        str(suite / "pytest.ini"),
        "--rootdir",
        str(suite),
        str(suite),
    ]
    load = os.getloadavg()[0]
    cpu0 = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=suite, env=env, timeout=RUN_TIMEOUT, check=False
    )
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu0
    tail = proc.stdout.strip().splitlines()[-1:] or [""]
    passed = PASSED.search(tail[0])
    if proc.returncode != 0 or passed is None or int(passed.group(1)) != n:
        raise RuntimeError(
            f"pytest in {suite.name} failed (exit {proc.returncode}):\n"
            f"{proc.stdout.strip()[-3000:]}\n{proc.stderr.strip()[-2000:]}"
        )
    session = re.search(r" in ([0-9.]+)s", tail[0])
    return {
        "wall": wall,
        "cpu": cpu,
        "pytest_s": float(session.group(1)) if session else float("nan"),
        "load": load,
    }


def _us(seconds: float) -> str:
    """Like ``fmt_ms``, signed: a difference of medians can come out negative."""
    return "-" + fmt_ms(-seconds) if seconds < 0 else fmt_ms(seconds)


def run(quick: bool = False, iterations: int | None = None) -> Result:
    n = QUICK_TESTS if quick else TESTS
    rounds = iterations or (1 if quick else 5)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    phases: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as tmp:
        root = Path(tmp)
        suites = _write_suites(root, n)
        # Untimed: per-phase and per-fixture durations (also warms caches and
        # writes the assertion-rewritten bytecode every timed run then reuses).
        for side in SIDES:
            out = root / f"phases-{side}.json"
            _run_suite(suites[side], n, phases_out=out)
            raw = json.loads(out.read_text())
            phases[side] = {  # medians only: the JSON output stays small
                "phases": {when: median(v) for when, v in raw["phases"].items()},
                "fixtures": {name: median(v) for name, v in raw["fixtures"].items()},
                "reset": median(raw["resets"]),
            }
        for r in range(rounds):
            for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                runs[side].append(_run_suite(suites[side], n))

    wall = {side: median([x["wall"] for x in runs[side]]) for side in SIDES}
    cpu = {side: median([x["cpu"] for x in runs[side]]) for side in SIDES}
    overhead = (wall["ours"] - wall["baseline"]) / n
    paired = median(
        [(o["wall"] - b["wall"]) / n for o, b in zip(runs["ours"], runs["baseline"], strict=True)]
    )
    cpu_overhead = (cpu["ours"] - cpu["baseline"]) / n
    r = ratio(wall["ours"], wall["baseline"])

    def phase(side: str, when: str) -> float:
        return phases[side]["phases"][when]

    rows: list[Row] = []
    for side in SIDES:
        walls = ", ".join(f"{x['wall']:.2f}" for x in runs[side])
        rows.append(
            Row(
                f"{LABELS[side]}: {n:,} tests, wall (median)",
                f"{wall[side]:.2f} s",
                f"CPU {cpu[side]:.2f} s; pytest's own 'in' time "
                f"{median([x['pytest_s'] for x in runs[side]]):.2f} s; rounds (s): {walls}",
            )
        )
    rows.append(
        Row(
            "overhead per test: (ours - baseline) / N",
            _us(overhead),
            f"target <= {fmt_ms(TARGET_S)}; median of paired rounds {_us(paired)}; "
            f"CPU per test {_us(cpu_overhead)}",
        )
    )
    rows.append(
        Row(
            "of which fixtures: (ours - no fixture) / N",
            _us((wall["ours"] - wall["nofixture"]) / n),
            f"CPU per test {_us((cpu['ours'] - cpu['nofixture']) / n)}",
        )
    )
    rows.append(
        Row(
            "of which the fake's call: (no fixture - baseline) / N",
            _us((wall["nofixture"] - wall["baseline"]) / n),
            f"CPU per test {_us((cpu['nofixture'] - cpu['baseline']) / n)}",
        )
    )
    rows.append(Row("ratio ours/baseline (wall medians)", f"{r:.2f}"))
    for side in ("ours", "baseline"):
        rows.append(
            Row(
                f"{LABELS[side]}: setup / call / teardown per test (median)",
                f"{_us(phase(side, 'setup'))} / {_us(phase(side, 'call'))} / "
                f"{_us(phase(side, 'teardown'))}",
                "pytest's report durations, one instrumented run",
            )
        )
    fixtures = phases["ours"]["fixtures"]
    nan = float("nan")
    rows.append(
        Row(
            "ours: fake_registry fixture setup (median)",
            _us(fixtures.get("fake_registry", nan)),
            f"of which reset() {_us(phases['ours']['reset'])} and registry_clock "
            f"{_us(fixtures.get('registry_clock', nan))}; registry_credentials "
            f"{_us(fixtures.get('registry_credentials', nan))}; each includes the timing "
            f"hook (the parametrize pseudo-fixture 'i' takes {_us(fixtures.get('i', nan))})",
        )
    )
    return Result(
        name=NAME,
        target=TARGET,
        verdict=verdict([overhead <= TARGET_S]),
        ratio=r,
        rows=rows,
        notes=[
            f"each suite: {n:,} parametrized tests, one AuthenticateClient call each over a "
            "session-scoped sync channel, run as a fresh `python -m pytest -q -p "
            f"no:cacheprovider -p no:randomly` process; {rounds} rounds alternating "
            "ours, baseline, no-fixture (reversed every other round), wall time spawn to exit; "
            f"load average during the runs {min(x['load'] for s in SIDES for x in runs[s]):.1f}"
            f" to {max(x['load'] for s in SIDES for x in runs[s]):.1f}"
        ],
        data={"tests": n, "runs": runs, "phases": phases},
    )
