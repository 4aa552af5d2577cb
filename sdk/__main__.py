"""``python -m sdk``: a narrated walk through the SDK.

Without arguments it starts an embedded fake registry with three echo backends and
shows, step by step: authentication, listing, discovery (resolve, pick, a discovery-aware
channel with failover), self-registration with heartbeats, a heartbeat stream that is
killed and reopened, a token re-obtained after expiry, and deregistration. The fake is
part of the ``testing`` extra (``pip install 'aio-registry-sdk[testing]'``); it is imported
lazily, only here, so the SDK itself never depends on it.

With ``--registry HOST:PORT`` (and ``--client-key``/``--client-secret``, or the variables
``REGISTRY_ADDR``, ``CLIENT_KEY``, ``CLIENT_SECRET``, ``ENV`` read by
:meth:`sdk.Config.from_env`) it runs the plain workflow against that registry instead:
authenticate, list, ensure a demo service, register itself, a few beats, stop.

With ``--async`` the same walk-through runs on the asyncio SDK (:class:`sdk.aio.AsyncClient`).
The script is written once: every SDK call goes through ``_r``, which awaits what the
asyncio SDK returns and passes the sync SDK's results through, so both flavours take
exactly the same steps.

Exit status 0 on success, 1 with a one-line error on stderr otherwise. Tokens are never
printed.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sdk.client import Client
from sdk.config import Config, HeartbeatPolicy
from sdk.errors import ConfigError, RegistryError
from sdk.models import Endpoint, ServiceView
from sdk.registration import LeaseState, Reason, Registration

PROJECT = "demo"
KEY, SECRET = "demo-key", "demo-secret"
_WAIT = 5.0  # real seconds: the bound on every wait of the demo


class DemoError(Exception):
    """A step did not do what the demo expected; the message is the one-line error."""


async def _r(value: Any) -> Any:
    """The result of an SDK call of either flavour: awaited if the asyncio SDK made it."""
    return await value if inspect.isawaitable(value) else value


def _client(config: Config, flavour: str) -> Any:
    """A ``Client`` or (inside the running loop) an ``AsyncClient``."""
    if flavour == "async":
        from sdk.aio import AsyncClient

        return AsyncClient(config)
    return Client(config)


def step(number: int, text: str) -> None:
    print(f"\n[{number}] {text}", flush=True)


def say(text: str) -> None:
    print(f"    {text}", flush=True)


def _show_views(views: Sequence[ServiceView]) -> None:
    if not views:
        say("(no services)")
    for view in views:
        keys = ", ".join(i.instance_key for i in view.instances) or "no instances"
        say(f"{view.service.project}/{view.service.name} (id {view.service.id}): {keys}")


async def _beats(registration: Registration, count: int) -> None:
    """Wait for ``count`` more beat answers, printing the lease after each."""
    start = registration.answers
    for n in range(start + 1, start + count + 1):
        if not await _r(registration.wait_answers(n, timeout=_WAIT)):
            raise DemoError(f"no heartbeat answer within {_WAIT:g} s")
        say(f"beat answered: lease renewed until {registration.expires_at}")


async def _stop(client: Client, registration: Registration, name: str) -> None:
    key = registration.instance_key
    if not await _r(registration.stop(timeout=_WAIT)):
        raise DemoError(f"the registration did not stop within {_WAIT:g} s")
    say(f"state={registration.state.name}")
    views = await _r(client.registry.list_services(PROJECT))
    view = next((v for v in views if v.service.name == name), None)
    if view is not None and view.find(key) is not None:
        raise DemoError(f"{key} is still listed after stop()")
    say(f"{key} deregistered: {PROJECT}/{name} no longer lists it")


# --- the embedded fake ---------------------------------------------------------------------


async def run_embedded(flavour: str = "sync") -> int:
    # Imported here only (DESIGN 2: the SDK never depends on its test harness).
    try:
        import grpc

        from fake_registry import FakeRegistry
        from fake_registry.backends import start_backends
        from protos.fakecontrol.v1 import echo_pb2, echo_pb2_grpc
    except ImportError as exc:
        raise DemoError(
            f"the embedded demo needs the fake registry ({exc}); install the 'testing' "
            "extra: pip install 'aio-registry-sdk[testing]', or give --registry HOST:PORT"
        ) from None

    with (
        FakeRegistry(clients={KEY: SECRET}) as fake,
        start_backends(fake, 3, project=PROJECT, name="echo") as pool,
    ):
        print(f"fake registry listening on {fake.address}; backends:")
        for backend in pool:
            print(f"    {backend.instance_key} at {backend.address}")
        # Short backoff so the reconnect in step 7 is quick (defaults: 1 s, x2, 30 s cap).
        config = Config(
            fake.address,
            KEY,
            SECRET,
            heartbeat=HeartbeatPolicy(backoff_initial=0.2, backoff_max=1.0),
        )
        client = _client(config, flavour)
        try:
            step(1, f"Authenticate with client key {KEY!r} (the token itself is never shown)")
            await _r(client.auth.token())
            expires_at = client.auth.expires_at or 0
            left = expires_at - fake.clock.time()
            say(f"token expires_at={expires_at} (in {left:.0f} s)")
            say(f"authentications={fake.authentications} renewals={fake.renewals}")

            step(2, f"List the services of project {PROJECT!r}")
            _show_views(await _r(client.registry.list_services(PROJECT)))

            step(3, "Resolve demo/echo and pick an instance")
            view = await _r(client.discovery.resolve(PROJECT, "echo"))
            say(f"resolved {len(view.instances)} instances")
            pick = await _r(client.discovery.pick(PROJECT, "echo"))
            say(f"picked {pick.instance.instance_key} at {pick.instance.grpc_address()}")
            pick.succeeded()

            step(4, 'Six Echo calls through client.discovery.channel("demo", "echo")')
            stub = echo_pb2_grpc.EchoServiceStub(client.discovery.channel(PROJECT, "echo"))

            async def calls(count: int) -> Counter[str]:
                answered: Counter[str] = Counter()
                for i in range(count):
                    request = echo_pb2.EchoRequest(message=f"hello {i}")
                    reply = await _r(stub.Echo(request, timeout=5))
                    say(f"{reply.message!r} answered by {reply.instance_key}")
                    answered[reply.instance_key] += 1
                return answered

            answered = await calls(6)
            say(f"round-robin: {dict(sorted(answered.items()))}")

            step(5, "echo-1 fails with UNAVAILABLE: calls fail over to the others")
            pool["echo-1"].fail(grpc.StatusCode.UNAVAILABLE, "echo-1 is down (demo)")
            answered = await calls(6)
            if "echo-1" in answered:
                raise DemoError("echo-1 answered while failing")
            say(f"failover: every call succeeded, answered by {sorted(answered)}")
            echo_1 = view.find("echo-1")
            if echo_1 is not None and client.discovery.is_cooling(PROJECT, "echo", echo_1):
                say("echo-1 cools down: picks skip it for a while")
            pool["echo-1"].recover()

            step(6, "Self-registration: register_self demo/demo-app with a 3 s lease")
            registration = await _r(
                client.registry.register_self(
                    PROJECT,
                    "demo-app",
                    host="127.0.0.1",
                    instance_key="demo-app-1",
                    endpoints=[Endpoint("127.0.0.1", "local")],
                    grpc_port=50099,
                    ttl_seconds=3,
                )
            )
            if not await _r(registration.wait_registered(timeout=_WAIT)):
                raise DemoError(f"not registered: state={registration.state.name}")
            say(
                f"registered {registration.instance_key}, one beat every "
                f"{registration.interval:g} s on one long-lived HeartbeatStream"
            )
            await _beats(registration, 2)

            step(7, "The fake kills the heartbeat stream; the SDK reopens it")
            seen = len(registration.events)
            killed = fake.kill_streams("demo-app-1")
            say(f"streams killed: {killed}")
            await _beats(registration, 1)
            if not await _r(registration.wait_state(LeaseState.BEATING, timeout=_WAIT)):
                raise DemoError(f"no reconnect: state={registration.state.name}")
            for event in registration.events[seen:]:
                if event.reason is not Reason.BEAT_OK:
                    detail = f" ({event.detail})" if event.detail else ""
                    say(f"event {event.reason.value}: {event.state.name}{detail}")
            say(f"reconnected: state={registration.state.name}")

            step(8, "The fake expires every token; the next call gets a new one")
            before = (fake.authentications, fake.renewals)
            say(f"tokens expired: {fake.expire_tokens()}")
            _show_views(await _r(client.registry.list_services(PROJECT)))
            after = (fake.authentications, fake.renewals)
            if after == before:
                raise DemoError("the SDK did not obtain a new token")
            say(
                f"authentications {before[0]} -> {after[0]}, renewals {before[1]} -> {after[1]}; "
                f"new token expires_at={client.auth.expires_at}"
            )

            step(9, "Stop the registration: it deregisters")
            await _stop(client, registration, "demo-app")
        finally:
            await _r(client.close())
    print("\ndone")
    return 0


# --- a real registry -------------------------------------------------------------------------


async def run_remote(config: Config, flavour: str = "sync") -> int:
    name = "sdk-demo"
    client = _client(config, flavour)
    try:
        print(f"registry {config.registry_addr}, env {config.env!r}")
        step(1, f"Authenticate with client key {config.client_key!r}")
        await _r(client.auth.token())
        say(f"token expires_at={client.auth.expires_at}")

        step(2, f"List the services of project {PROJECT!r}")
        _show_views(await _r(client.registry.list_services(PROJECT)))

        step(3, f"Ensure the service {PROJECT}/{name}")
        ensured = await _r(
            client.registry.ensure_service(
                PROJECT, name, owner="sdk-demo", description="created by python -m sdk"
            )
        )
        say(f"service id={ensured.service.id} created={ensured.created}")

        step(4, "register_self with a 3 s lease, then three beats")
        host = socket.gethostname() or "localhost"
        registration = await _r(
            client.registry.register_self(
                PROJECT,
                name,
                host=host,
                instance_key=f"sdk-demo-{host}-{os.getpid()}",
                endpoints=[Endpoint(host)],
                grpc_port=50051,
                ttl_seconds=3,
            )
        )
        if not await _r(registration.wait_registered(timeout=_WAIT)):
            raise DemoError(f"not registered: state={registration.state.name}")
        say(f"registered {registration.instance_key}")
        await _beats(registration, 3)

        step(5, "Stop the registration: it deregisters")
        await _stop(client, registration, name)
    finally:
        await _r(client.close())
    print("\ndone")
    return 0


# --- the command line ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sdk",
        description="A narrated SDK demo: on an embedded fake registry (default) or, "
        "with --registry, the plain workflow against a real one.",
    )
    parser.add_argument(
        "--registry",
        metavar="HOST:PORT",
        nargs="?",
        const="",
        help="run against this registry instead of the embedded fake; without a value, "
        "REGISTRY_ADDR is used (CLIENT_KEY, CLIENT_SECRET, ENV are read as well)",
    )
    parser.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="run the same walk-through on the asyncio SDK (sdk.aio.AsyncClient)",
    )
    parser.add_argument("--client-key", help="the client key (default: $CLIENT_KEY)")
    parser.add_argument("--client-secret", help="the client secret (default: $CLIENT_SECRET)")
    return parser


def _remote_config(args: argparse.Namespace) -> Config:
    environ = dict(os.environ)
    if args.registry:
        environ["REGISTRY_ADDR"] = args.registry
    if args.client_key is not None:
        environ["CLIENT_KEY"] = args.client_key
    if args.client_secret is not None:
        environ["CLIENT_SECRET"] = args.client_secret
    return Config.from_env(environ)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    sdk_log = logging.getLogger("sdk")
    sdk_log.setLevel(logging.WARNING)
    sdk_log.addHandler(handler)
    started = time.monotonic()
    flavour = "async" if args.use_async else "sync"
    try:
        if args.registry is None:
            if args.client_key is not None or args.client_secret is not None:
                raise DemoError("--client-key and --client-secret need --registry")
            code = asyncio.run(run_embedded(flavour))
        else:
            code = asyncio.run(run_remote(_remote_config(args), flavour))
    except (DemoError, ConfigError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # one line, no traceback: this is a command, not a library
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 1
    print(f"({time.monotonic() - started:.1f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
