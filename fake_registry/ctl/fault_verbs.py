"""``fake-registry ctl`` verbs for fault rules and heartbeat stream controls.

docs/control-faults.md and docs/control-streams.md describe them; each is one
:class:`~fake_registry.control_client.ControlClient` call.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from fake_registry import cli_arguments as parse
from fake_registry.command_line import PROG, UsageError
from fake_registry.control_client import ControlClient
from fake_registry.ctl.output import iso, short_method
from fake_registry.ctl.verb_table import Verb, arg, registrar

__all__ = ["VERBS"]

#: This module's verbs, in the order ``--help`` lists them.
VERBS: dict[str, Verb] = {}
verb = registrar(VERBS)

_INSTANCE_FILTER = arg("--instance", metavar="KEY", help="only streams carrying this instance")
_TIMES = arg("--times", metavar="N", type=parse.count, help="only the next N matching calls")

# fault rules


@verb(
    "add-fault",
    "add a fault rule and print its id",
    arg("method", metavar="METHOD", help="ListServices, RegistryService/ListServices, a path, *"),
    arg("--code", type=parse.status_code, help="abort matching calls with this status"),
    arg("--details", metavar="D", default="injected fault", help="the abort's message"),
    arg("--delay", metavar="S", type=parse.positive_seconds, help="hold matching calls S seconds"),
    arg("--real-time", action="store_true", help="the delay is real, not on the fake's clock"),
    arg("--drop", action="store_true", help="never answer matching calls"),
    _TIMES,
    arg("--probability", metavar="P", type=parse.probability, default=1.0, help="in (0, 1]"),
    arg("--seed", dest="fault_seed", metavar="S", type=int, help="seed for --probability"),
    arg(
        "--metadata",
        metavar="K=V",
        type=parse.key_value,
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


@verb(
    "fail-next",
    "the next call(s) to METHOD fail with CODE; prints the rule id",
    arg("method", metavar="METHOD"),
    arg(
        "code", metavar="CODE", type=parse.status_code, help="a status code name, e.g. UNAVAILABLE"
    ),
    arg("--times", metavar="N", type=parse.count, default=1, help="how many calls (default: 1)"),
    arg("--details", metavar="D", default="injected fault", help="the status message"),
)
def _fail_next(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield str(client.fail_next(args.method, args.code, args.times, args.details))


@verb("remove-fault", "remove a fault rule", arg("fault_id", metavar="ID", type=parse.positive_id))
def _remove_fault(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.remove_fault(args.fault_id)
    yield f"fault {args.fault_id} removed"


@verb("faults", "list the fault rules")
def _faults(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    for fault in client.faults():
        text = fault.description.removeprefix("FaultHandle(").removesuffix(")")
        yield f"{fault.id} {text}{'' if fault.active else ' [inactive]'}"


@verb("clear-faults", "remove every fault rule and stream control")
def _clear_faults(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.clear_faults()
    yield "faults cleared"


# heartbeat streams


@verb("streams", "list the open streams")
def _streams(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    for s in client.streams():
        keys = ",".join(s.instance_keys) or "-"
        yield (
            f"{s.id} {short_method(s.method)} instances={keys} in={s.frames_in} out={s.frames_out} "
            f"opened={iso(s.opened_at)}"
        )


@verb(
    "kill-streams",
    "end open streams with a status; prints how many",
    _INSTANCE_FILTER,
    arg("--code", type=parse.status_code, default="UNAVAILABLE", help="default: UNAVAILABLE"),
    arg("--details", metavar="D", default="stream killed by the fake"),
)
def _kill_streams(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    count = client.kill_streams(args.instance, args.code, args.details)
    yield f"killed {count} stream(s)"


@verb(
    "reject-streams",
    "new heartbeat streams fail with a status; prints the rule id",
    arg("--code", type=parse.status_code, default="UNAVAILABLE", help="default: UNAVAILABLE"),
    arg("--times", metavar="N", type=parse.count, help="only the next N streams"),
)
def _reject_streams(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    yield str(client.reject_streams(args.code, args.times))


@verb(
    "answer-zero",
    "heartbeats for KEY answer expires_at=0 without renewing",
    arg("instance_key", metavar="KEY"),
    arg("--off", action="store_true", help="answer normally again"),
)
def _answer_zero(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.answer_zero(args.instance_key, not args.off)
    yield f"heartbeats for {args.instance_key} {'renew' if args.off else 'answer 0'}"


@verb(
    "end-streams-after",
    "matching streams end (OK) after N answers",
    arg("messages", metavar="N", type=parse.count),
    _INSTANCE_FILTER,
)
def _end_streams_after(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.end_streams_after(args.messages, args.instance)
    yield f"streams end after {args.messages} answer(s)"


@verb(
    "delay-answers",
    "hold each answer on matching streams",
    arg("seconds", metavar="SECONDS", type=parse.positive_seconds),
    _INSTANCE_FILTER,
    arg("--real-time", action="store_true", help="real seconds, not on the fake's clock"),
)
def _delay_answers(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.delay_answers(args.seconds, args.instance, real_time=args.real_time)
    yield f"stream answers delayed {args.seconds:g} s"


@verb("withhold-answers", "matching streams stay open but never answer", _INSTANCE_FILTER)
def _withhold_answers(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.withhold_answers(args.instance)
    yield "stream answers withheld"


@verb("clear-stream-controls", "undo the stream verbs above (not kill or reject)")
def _clear_stream_controls(client: ControlClient, args: argparse.Namespace) -> Iterator[str]:
    client.clear_stream_controls()
    yield "stream controls cleared"
