"""``fake-registry ctl``: drive a running fake from the shell, through its control service.

Each verb is one :class:`~fake_registry.control_client.ControlClient` call,
named as the Python method in kebab-case (``advance_clock`` ->
``advance-clock``); docs/control-cli.md lists them with examples.

Output contract (as for ``serve``): results go to stdout, one item per line;
exit code 0 on success, 2 for a bad command line, 1 when the control call
fails or the target cannot be reached. Every error is one line on stderr,
``fake-registry: error: ctl VERB: CODE: details``. Tokens and secrets are
never printed, except the secret ``rotate-secret`` was asked to make, and
journaled calls show them redacted unless ``--show-secrets`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

from fake_registry.cli import (
    PROG,
    TOKEN_ENV,
    UsageError,
    _client,
    _fail,
    _int_in,
    _Parser,
    _say,
)
from fake_registry.control import code_name
from fake_registry.control_client import ControlClient
from fake_registry.errors import FakeRegistryError
from fake_registry.journal import _SECRET_FIELDS, redact_metadata
from protos.fakecontrol.v1 import control_pb2 as pb

__all__ = ["TOKEN_ENV", "VERBS", "add_ctl_command", "run_ctl"]

DEFAULT_TIMEOUT = 10.0


class _CtlParser(_Parser):
    """Usage errors name the verb: ``ctl advance-clock: argument SECONDS: ...``."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix(f"{PROG} ")
        raise UsageError(f"{where}: {message} (see {self.prog} --help)")


# --- argument types: messages never echo a secret ------------------------------


def _number(low: float, *, strict: bool = False) -> Callable[[str], float]:
    what = f"a number {'>' if strict else '>='} {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})")
        return value

    return parse


def _probability(text: str) -> float:
    value = _number(0.0, strict=True)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (got {text!r})")
    return value


def _code(text: str) -> str:
    try:
        return code_name(text)
    except FakeRegistryError:
        raise argparse.ArgumentTypeError(
            f"must be a non-OK gRPC status code name such as UNAVAILABLE (got {text!r})"
        ) from None


def _expiry(text: str) -> float | None:
    return None if text == "never" else _number(0.0, strict=True)(text)


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (got {text!r})")
    return key, value


def _target(text: str) -> str:
    if ":/" in text or text.startswith(("unix:", "unix-abstract:")):  # a gRPC target URI
        return text
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (got {text!r})")
    return text


def _on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"must be on or off (got {text!r})")
    return text == "on"


_seconds = _number(0.0)
_positive_seconds = _number(0.0, strict=True)
_count = _int_in(1, 2**31 - 1, "an integer >= 1")
_id = _int_in(1, 2**63 - 1, "a positive integer")


# --- output helpers --------------------------------------------------------------


def _iso(unix: float) -> str:
    moment = datetime.datetime.fromtimestamp(unix, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time_line(unix: float) -> str:
    return f"now {unix:.3f} ({_iso(unix)})"


def _short(method: str) -> str:
    """``/pkg.v1.RegistryService/ListServices`` -> ``RegistryService/ListServices``."""
    service, _, name = method.lstrip("/").rpartition("/")
    return f"{service.rpartition('.')[2]}/{name}" if service else name


_SECRET_TEXT = re.compile(r"\b(" + "|".join(_SECRET_FIELDS) + r')(: )"(?:[^"\\]|\\.)*"')


def _text(text: str, show: bool) -> str:
    return text if show else _SECRET_TEXT.sub(r'\1\2"<redacted>"', text)


def _call_json(call: pb.CallInfo, show: bool) -> str:
    metadata = [(m.key, m.value) for m in call.metadata]
    entry = {
        "seq": call.seq,
        "method": call.method,
        "code": call.code or None,
        "details": call.details,
        "metadata": [list(kv) for kv in (metadata if show else redact_metadata(metadata))],
        "request": _text(call.request, show),
        "response": _text(call.response, show),
        "started_at": call.started_at,
        "ended_at": call.ended_at or None,
        "started_real": call.started_real,
        "ended_real": call.ended_real or None,
        "frames": [
            {
                "direction": f.direction,
                "message": _text(f.message, show),
                "virtual_time": f.virtual_time,
                "real_time": f.real_time,
            }
            for f in call.frames
        ],
        "faults": [
            {"rule": e.rule, "action": e.action, "virtual_time": e.virtual_time}
            for e in call.faults
        ],
    }
    return json.dumps(entry, separators=(",", ":"))


def _call_line(call: pb.CallInfo) -> str:
    line = f"{call.seq} {_short(call.method)} {call.code or 'in-flight'}"
    if call.details and call.code != "OK":
        line += f" {call.details!r}"
    if call.frames:
        line += f" frames={len(call.frames)}"
    if call.faults:
        line += f" faults=[{', '.join(e.action for e in call.faults)}]"
    return line


def _calls_output(calls: list[pb.CallInfo], args: argparse.Namespace) -> Iterator[str]:
    for call in calls:
        yield _call_json(call, args.show_secrets) if args.json else _call_line(call)


# --- verbs -----------------------------------------------------------------------

Arg = tuple[tuple[str, ...], dict[str, Any]]
Run = Callable[[ControlClient, argparse.Namespace], Iterator[str]]


def _arg(*flags: str, **options: Any) -> Arg:
    return flags, options


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    arguments: tuple[Arg, ...]
    run: Run


#: Every verb, in the order ``--help`` lists them.
VERBS: dict[str, Verb] = {}


def _verb(name: str, help: str, *arguments: Arg) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        VERBS[name] = Verb(name, help, arguments, run)
        return run

    return register


_INSTANCE_FILTER = _arg("--instance", metavar="KEY", help="only streams carrying this instance")
_SERVICE_ID = _arg("service_id", metavar="SERVICE_ID", type=_id, help="the service id")
_INSTANCE_KEY = _arg("instance_key", metavar="KEY", help="the instance key")
_TIMES = _arg("--times", metavar="N", type=_count, help="only the next N matching calls")
_JSON_ARGS = (
    _arg("--json", action="store_true", help="one JSON object per call and line"),
    _arg("--show-secrets", action="store_true", help="do not redact tokens and secrets"),
)

# time


@_verb(
    "advance-clock",
    "move the fake's clock forward; tokens and leases that end on the way expire",
    _arg("seconds", metavar="SECONDS", type=_seconds, help="how far (fractions allowed)"),
)
def _advance_clock(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield _time_line(client.advance_clock(args.seconds))


@_verb(
    "set-time",
    "set the fake's Unix time (backwards too)",
    _arg("unix_seconds", metavar="UNIX_SECONDS", type=_seconds, help="the new time"),
)
def _set_time(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield _time_line(client.set_time(args.unix_seconds))


@_verb("now", "print the fake's current time")
def _now(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield _time_line(client.now())


# credentials


@_verb(
    "add-client",
    "accept a credential (an existing key gets the new secret)",
    _arg("credential", metavar="KEY:SECRET", type=_client, help="the credential"),
    _arg("--expires-at", metavar="T", type=_positive_seconds, help="expiry, Unix seconds"),
)
def _add_client(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    key, secret = args.credential
    client.add_client(key, secret, expires_at=args.expires_at)
    yield f"client {key} added (secret as given)"


@_verb("remove-client", "delete a credential", _arg("key", metavar="KEY"))
def _remove_client(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.remove_client(args.key)
    yield f"client {args.key} removed"


@_verb("disable-client", "authenticate with this key fails", _arg("key", metavar="KEY"))
def _disable_client(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.disable_client(args.key)
    yield f"client {args.key} disabled"


@_verb("enable-client", "undo disable-client", _arg("key", metavar="KEY"))
def _enable_client(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.enable_client(args.key)
    yield f"client {args.key} enabled"


@_verb(
    "set-client-expiry",
    "set when a credential expires",
    _arg("key", metavar="KEY"),
    _arg("expires_at", metavar="T|never", type=_expiry, help="Unix seconds, or never"),
)
def _set_client_expiry(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.set_client_expiry(args.key, args.expires_at)
    if args.expires_at is None:
        yield f"client {args.key} never expires"
    else:
        yield f"client {args.key} expires at {args.expires_at:.3f} ({_iso(args.expires_at)})"


@_verb(
    "rotate-secret",
    "give a credential a new secret and print it",
    _arg("key", metavar="KEY"),
    _arg("--secret", metavar="S", help="the new secret (default: a random one)"),
)
def _rotate_secret(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield client.rotate_secret(args.key, args.secret)  # printed: the user asked for it


@_verb("clients", "list the client keys")
def _clients(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield from client.clients()


# tokens


@_verb(
    "set-token-ttl",
    "lifetime of tokens issued from now on",
    _arg("seconds", metavar="SECONDS", type=_count, help="a positive integer"),
)
def _set_token_ttl(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.set_token_ttl(args.seconds)
    yield f"token ttl {args.seconds} s"


@_verb(
    "expire-tokens",
    "make outstanding tokens fail as expired now",
    _arg("--client", dest="key", metavar="KEY", help="only this client's tokens"),
)
def _expire_tokens(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield f"expired {client.expire_tokens(args.key)} token(s)"


@_verb(
    "revoke-token",
    "protected calls with this token fail from now on",
    _arg("token", metavar="TOKEN", help="the token; - reads it from stdin"),
)
def _revoke_token(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    token = sys.stdin.readline().strip() if args.token == "-" else args.token  # noqa: S105
    client.revoke_token(token)
    yield "token revoked"  # never echoed


@_verb("rotate-signing-key", "a new signing secret: every outstanding token stops verifying")
def _rotate_signing_key(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.rotate_signing_key()
    yield "signing key rotated"


@_verb("counters", "AuthenticateClient and RenewToken calls since the last reset")
def _counters(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield f"authentications {client.authentications}"
    yield f"renewals {client.renewals}"


@_verb(
    "auth",
    "turn token enforcement on or off",
    _arg("enabled", metavar="on|off", type=_on_off),
)
def _auth(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.set_auth_enabled(args.enabled)
    yield f"auth {'on' if args.enabled else 'off'}"


# fault rules


@_verb(
    "add-fault",
    "add a fault rule and print its id",
    _arg("method", metavar="METHOD", help="ListServices, RegistryService/ListServices, a path, *"),
    _arg("--code", type=_code, help="abort matching calls with this status"),
    _arg("--details", metavar="D", default="injected fault", help="the abort's message"),
    _arg("--delay", metavar="S", type=_positive_seconds, help="hold matching calls S seconds"),
    _arg("--real-time", action="store_true", help="the delay is real, not on the fake's clock"),
    _arg("--drop", action="store_true", help="never answer matching calls"),
    _TIMES,
    _arg("--probability", metavar="P", type=_probability, default=1.0, help="in (0, 1]"),
    _arg("--seed", dest="fault_seed", metavar="S", type=int, help="seed for --probability"),
    _arg(
        "--metadata",
        metavar="K=V",
        type=_pair,
        nargs="+",
        action="extend",
        default=[],
        help="header values a call must carry to match",
    ),
)
def _add_fault(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    if args.code is None and args.delay is None and not args.drop:
        raise UsageError(f"ctl add-fault: give --code, --delay or --drop (see {PROG} ctl --help)")
    fault_id = client.add_fault(
        args.method,
        code=args.code,
        details=args.details,
        delay=args.delay,
        real_time=args.real_time,
        drop=args.drop,
        times=args.times,
        probability=args.probability,
        seed=args.fault_seed,
        metadata=dict(args.metadata),
    )
    yield str(fault_id)


@_verb(
    "fail-next",
    "the next call(s) to METHOD fail with CODE; prints the rule id",
    _arg("method", metavar="METHOD"),
    _arg("code", metavar="CODE", type=_code, help="a status code name, e.g. UNAVAILABLE"),
    _arg("--times", metavar="N", type=_count, default=1, help="how many calls (default: 1)"),
    _arg("--details", metavar="D", default="injected fault", help="the status message"),
)
def _fail_next(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield str(client.fail_next(args.method, args.code, args.times, args.details))


@_verb("remove-fault", "remove a fault rule", _arg("fault_id", metavar="ID", type=_id))
def _remove_fault(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.remove_fault(args.fault_id)
    yield f"fault {args.fault_id} removed"


@_verb("faults", "list the fault rules")
def _faults(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    for fault in client.faults():
        text = fault.description.removeprefix("FaultHandle(").removesuffix(")")
        yield f"{fault.id} {text}{'' if fault.active else ' [inactive]'}"


@_verb("clear-faults", "remove every fault rule and stream control")
def _clear_faults(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.clear_faults()
    yield "faults cleared"


# heartbeat streams


@_verb("streams", "list the open streams")
def _streams(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    for s in client.streams():
        keys = ",".join(s.instance_keys) or "-"
        yield (
            f"{s.id} {_short(s.method)} instances={keys} in={s.frames_in} out={s.frames_out} "
            f"opened={_iso(s.opened_at)}"
        )


@_verb(
    "kill-streams",
    "end open streams with a status; prints how many",
    _INSTANCE_FILTER,
    _arg("--code", type=_code, default="UNAVAILABLE", help="default: UNAVAILABLE"),
    _arg("--details", metavar="D", default="stream killed by the fake"),
)
def _kill_streams(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    count = client.kill_streams(args.instance, args.code, args.details)
    yield f"killed {count} stream(s)"


@_verb(
    "reject-streams",
    "new heartbeat streams fail with a status; prints the rule id",
    _arg("--code", type=_code, default="UNAVAILABLE", help="default: UNAVAILABLE"),
    _arg("--times", metavar="N", type=_count, help="only the next N streams"),
)
def _reject_streams(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield str(client.reject_streams(args.code, args.times))


@_verb(
    "answer-zero",
    "heartbeats for KEY answer expires_at=0 without renewing",
    _arg("instance_key", metavar="KEY"),
    _arg("--off", action="store_true", help="answer normally again"),
)
def _answer_zero(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.answer_zero(args.instance_key, not args.off)
    yield f"heartbeats for {args.instance_key} {'renew' if args.off else 'answer 0'}"


@_verb(
    "end-streams-after",
    "matching streams end (OK) after N answers",
    _arg("messages", metavar="N", type=_count),
    _INSTANCE_FILTER,
)
def _end_streams_after(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.end_streams_after(args.messages, args.instance)
    yield f"streams end after {args.messages} answer(s)"


@_verb(
    "delay-answers",
    "hold each answer on matching streams",
    _arg("seconds", metavar="SECONDS", type=_positive_seconds),
    _INSTANCE_FILTER,
    _arg("--real-time", action="store_true", help="real seconds, not on the fake's clock"),
)
def _delay_answers(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.delay_answers(args.seconds, args.instance, real_time=args.real_time)
    yield f"stream answers delayed {args.seconds:g} s"


@_verb("withhold-answers", "matching streams stay open but never answer", _INSTANCE_FILTER)
def _withhold_answers(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.withhold_answers(args.instance)
    yield "stream answers withheld"


@_verb("clear-stream-controls", "undo the stream verbs above (not kill or reject)")
def _clear_stream_controls(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.clear_stream_controls()
    yield "stream controls cleared"


# instances


@_verb("expire-instance", "the lease lapses now", _SERVICE_ID, _INSTANCE_KEY)
def _expire_instance(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.expire_instance(args.service_id, args.instance_key)
    yield f"instance {args.service_id}/{args.instance_key} expired"


@_verb("force-offline", "the admin force-offline", _SERVICE_ID, _INSTANCE_KEY)
def _force_offline(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.force_offline(args.service_id, args.instance_key)
    yield f"instance {args.service_id}/{args.instance_key} offline"


@_verb("delete-instance", "remove the instance row", _SERVICE_ID, _INSTANCE_KEY)
def _delete_instance(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.delete_instance(args.service_id, args.instance_key)
    yield f"instance {args.service_id}/{args.instance_key} deleted"


@_verb(
    "instances",
    "list stored instances",
    _arg("--service", metavar="ID", type=_id, help="only this service's"),
    _arg("--online", action="store_true", help="only online ones"),
    _arg("--offline", action="store_true", help="only lapsed ones"),
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
            f"last_heartbeat={_iso(inst.last_heartbeat_at)}"
        )


@_verb("wipe", "lose every service and instance")
def _wipe(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.wipe()
    yield "registry wiped"


@_verb(
    "reregister-quirk",
    "re-registering a deregistered key shows it for one TTL only (CONTRACT 3.10-1)",
    _arg("enabled", metavar="on|off", type=_on_off),
)
def _reregister_quirk(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.set_reregister_quirk(args.enabled)
    yield f"reregister quirk {'on' if args.enabled else 'off'}"


@_verb(
    "fail-ensure-service-race",
    "the next creating EnsureService call(s) answer INTERNAL (the service is created)",
    _arg("--times", metavar="N", type=_int_in(0, 2**31 - 1, "an integer >= 0"), default=1),
)
def _fail_ensure_service_race(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.fail_ensure_service_race(args.times)
    yield f"next {args.times} creating EnsureService call(s) lose the race"


@_verb("reset", "everything back to the initial state (data, clients, faults, journal)")
def _reset(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.reset()
    yield "reset to the initial state"


# journal


@_verb(
    "calls",
    "list journaled calls, oldest first",
    _arg("--method", metavar="M", help="only calls to this method"),
    _arg("--after", metavar="SEQ", type=_int_in(0, None, "an integer >= 0"), default=0),
    *_JSON_ARGS,
)
def _calls(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield from _calls_output(client.calls(args.method, args.after), args)


@_verb(
    "wait-for",
    "wait until N calls to METHOD finished and list them",
    _arg("method", metavar="METHOD"),
    _arg("--count", metavar="N", type=_count, default=1, help="default: 1"),
    _arg(
        "--timeout",
        dest="wait_timeout",
        metavar="S",
        type=_positive_seconds,
        default=5.0,
        help="give up after S real seconds (default: 5)",
    ),
    *_JSON_ARGS,
)
def _wait_for(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield from _calls_output(client.wait_for(args.method, args.count, args.wait_timeout), args)


# --- the command -----------------------------------------------------------------


def _connection_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Accepted before the verb and after it; the verb's copies default to
    # SUPPRESS so they do not overwrite values given before it.
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target",
        metavar="HOST:PORT",
        type=_target,
        default=default(None),
        help="the fake (required), as printed on its first line",
    )
    group.add_argument(
        "--control-token",
        metavar="TOKEN",
        default=default(os.environ.get(TOKEN_ENV) or None),
        help=f"the fake's control token (default: ${TOKEN_ENV})",
    )
    group.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=default(None),
        help="the fake serves TLS: trust this CA bundle (e.g. from serve --tls)",
    )
    if "--timeout" not in parser._option_string_actions:  # wait-for has its own
        group.add_argument(
            "--timeout",
            metavar="SECONDS",
            type=_positive_seconds,
            default=default(DEFAULT_TIMEOUT),
            help=f"deadline of the control call (default: {DEFAULT_TIMEOUT:g})",
        )


def add_ctl_command(commands: Any) -> None:
    """Add ``ctl`` and its verbs to ``commands`` (the ``add_subparsers()`` object)."""
    ctl = commands.add_parser(
        "ctl",
        help="drive a running fake through its control service",
        description="Drive a running fake (time, clients, tokens, faults, streams, instances, "
        "the call journal) through its gRPC control service.",
        epilog=f"Every verb has --help. Exit codes: 0 done, 1 the call failed, 2 bad usage. "
        f"See docs/control-cli.md. Example: {PROG} ctl --target 127.0.0.1:50051 now",
    )
    _connection_options(ctl, defaults=True)
    ctl.set_defaults(handler=run_ctl)
    verbs = ctl.add_subparsers(
        title="verbs", dest="verb", metavar="VERB", required=True, parser_class=_CtlParser
    )
    for verb in VERBS.values():
        description = f"{verb.help[0].upper()}{verb.help[1:]}."
        parser = verbs.add_parser(verb.name, help=verb.help, description=description)
        for flags, options in verb.arguments:
            parser.add_argument(*flags, **options)
        _connection_options(parser, defaults=False)


def _credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    if args.tls_ca is None:
        return None
    try:
        with open(args.tls_ca, "rb") as file:
            ca = file.read()
    except OSError as exc:
        raise UsageError(f"ctl {args.verb}: --tls-ca {args.tls_ca}: {exc.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in ca:
        raise UsageError(f"ctl {args.verb}: --tls-ca {args.tls_ca} holds no PEM certificate")
    return grpc.ssl_channel_credentials(root_certificates=ca)


@contextlib.contextmanager
def _quiet_grpc_core(enabled: bool) -> Iterator[None]:
    """Silence gRPC C-core's own stderr lines (a failed TLS handshake logs one).

    The core reads ``GRPC_VERBOSITY`` only when grpc is imported, before this
    command runs; so file descriptor 2 points at devnull while the call runs,
    unless the user asked for gRPC's logs.
    """
    if not enabled or "GRPC_VERBOSITY" in os.environ or "GRPC_TRACE" in os.environ:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _hint(code: grpc.StatusCode, args: argparse.Namespace) -> str:
    if code == grpc.StatusCode.UNAVAILABLE:
        if args.tls_ca:
            return f" (is a fake serving TLS at {args.target}, with a certificate from --tls-ca?)"
        return f" (is a fake running at {args.target}? for a TLS fake, give --tls-ca)"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f" (give the fake's --control-token, or set {TOKEN_ENV})"
    return ""


def run_ctl(args: argparse.Namespace) -> int:
    """The ``ctl`` command: one control call, its result on stdout."""
    verb = VERBS[args.verb]
    label = f"ctl {verb.name}"
    if not args.target:
        raise UsageError(f"{label}: --target HOST:PORT is required (see {PROG} ctl --help)")
    credentials = _credentials(args)
    try:
        with (
            _quiet_grpc_core(credentials is not None),
            ControlClient(args.target, args.control_token, credentials, args.timeout) as client,
        ):
            lines = list(verb.run(client, args))
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details() or ""
        return _fail(f"{label}: {code.name}: {details}{_hint(code, args)}", 1)
    except FakeRegistryError as exc:  # a value the client refused before calling
        return _fail(f"{label}: {exc.message}", 2)
    except KeyboardInterrupt:
        return _fail(f"{label}: interrupted", 130)
    for line in lines:
        _say(line)
    return 0
