"""``fake-registry ctl`` verbs for stored instances, whole-state resets and the journal.

docs/control-instances.md and docs/journal.md describe them; each is one
:class:`~fake_registry.control_client.ControlClient` call.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from fake_registry import cli_arguments as parse
from fake_registry.command_line import UsageError
from fake_registry.control_client import ControlClient
from fake_registry.ctl.output import calls_output, iso
from fake_registry.ctl.verb_table import Verb, arg, registrar
from protos.fakecontrol.v1 import control_pb2 as pb

__all__ = ["VERBS"]

#: This module's verbs, in the order ``--help`` lists them.
VERBS: dict[str, Verb] = {}
verb = registrar(VERBS)

_SERVICE_ID = arg("service_id", metavar="SERVICE_ID", type=parse.positive_id, help="the service id")
_INSTANCE_KEY = arg("instance_key", metavar="KEY", help="the instance key")
_JSON_ARGS = (
    arg("--json", action="store_true", help="one JSON object per call and line"),
    arg("--show-secrets", action="store_true", help="do not redact tokens and secrets"),
)

# instances


@verb("expire-instance", "the lease lapses now", _SERVICE_ID, _INSTANCE_KEY)
def _expire_instance(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.expire_instance(args.service_id, args.instance_key)
    yield f"instance {args.service_id}/{args.instance_key} expired"


@verb("force-offline", "the admin force-offline", _SERVICE_ID, _INSTANCE_KEY)
def _force_offline(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.force_offline(args.service_id, args.instance_key)
    yield f"instance {args.service_id}/{args.instance_key} offline"


@verb("delete-instance", "remove the instance row", _SERVICE_ID, _INSTANCE_KEY)
def _delete_instance(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.delete_instance(args.service_id, args.instance_key)
    yield f"instance {args.service_id}/{args.instance_key} deleted"


@verb(
    "instances",
    "list stored instances",
    arg("--service", metavar="ID", type=parse.positive_id, help="only this service's"),
    arg("--online", action="store_true", help="only online ones"),
    arg("--offline", action="store_true", help="only lapsed ones"),
)
def _instances(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    if args.online and args.offline:
        raise UsageError("ctl instances: give --online or --offline, not both")
    # One ListInstances call for the rows and their liveness (ControlClient.instances
    # filters on liveness but does not return it).
    reply = client._call("ListInstances", pb.ListInstancesRequest(service_id=args.service or 0))
    for inst, online in zip(reply.instances, reply.online, strict=True):
        if (args.online and not online) or (args.offline and online):
            continue
        yield (
            f"{inst.service_id} {inst.instance_key} {'online' if online else 'offline'} "
            f"env={inst.env} endpoint={inst.endpoint or '-'} ttl={inst.ttl_seconds}s "
            f"last_heartbeat={iso(inst.last_heartbeat_at)}"
        )


@verb("wipe", "lose every service and instance")
def _wipe(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.wipe()
    yield "registry wiped"


@verb(
    "reregister-quirk",
    "re-registering a deregistered key shows it for one TTL only (CONTRACT 3.10-1)",
    arg("enabled", metavar="on|off", type=parse.on_off),
)
def _reregister_quirk(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.set_reregister_quirk(args.enabled)
    yield f"reregister quirk {'on' if args.enabled else 'off'}"


@verb(
    "fail-ensure-service-race",
    "the next creating EnsureService call(s) answer INTERNAL (the service is created)",
    arg("--times", metavar="N", type=parse.int_in(0, 2**31 - 1, "an integer >= 0"), default=1),
)
def _fail_ensure_service_race(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.fail_ensure_service_race(args.times)
    yield f"next {args.times} creating EnsureService call(s) lose the race"


@verb("reset", "everything back to the initial state (data, clients, faults, journal)")
def _reset(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.reset()
    yield "reset to the initial state"


# journal


@verb(
    "calls",
    "list journaled calls, oldest first",
    arg("--method", metavar="M", help="only calls to this method"),
    arg("--after", metavar="SEQ", type=parse.int_in(0, None, "an integer >= 0"), default=0),
    *_JSON_ARGS,
)
def _calls(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield from calls_output(client.calls(args.method, args.after), args)


@verb(
    "wait-for",
    "wait until N calls to METHOD finished and list them",
    arg("method", metavar="METHOD"),
    arg("--count", metavar="N", type=parse.count, default=1, help="default: 1"),
    arg(
        "--timeout",
        dest="wait_timeout",
        metavar="S",
        type=parse.positive_seconds,
        default=5.0,
        help="give up after S real seconds (default: 5)",
    ),
    *_JSON_ARGS,
)
def _wait_for(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield from calls_output(client.wait_for(args.method, args.count, args.wait_timeout), args)
