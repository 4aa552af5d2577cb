"""Load generators, run as a child process: ``python -m bench._client {unary,heartbeat} ...``.

They speak raw bytes (pre-serialized requests, no response serializer) so the
client does the same work whichever server it drives: the fake or the bare
baseline. Every loop is bounded by a call count and a deadline; the report is
one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import grpc
from grpc import aio

from bench._grpc import HEARTBEAT_METHOD, LIST_METHOD, REGISTER_METHOD
from bench._stats import median, percentile
from protos.registry.v1 import registry_pb2

CALL_TIMEOUT = 5.0
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]


def _tokens() -> list[str]:
    """Tokens from BENCH_TOKENS (one per line, one per --target): not on the command line."""
    return [t for t in os.environ.get("BENCH_TOKENS", "").split("\n") if t] or []


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": median(values),
        "p99": percentile(values, 99),
        "p999": percentile(values, 99.9),
        "max": max(values) if values else float("nan"),
    }


# --- unary throughput ------------------------------------------------------


async def _window(
    call: Any, request: bytes, md: Any, args: argparse.Namespace, errors: dict[str, int]
) -> dict[str, Any]:
    """``args.concurrency`` workers calling for ``args.seconds``; calls done in time count."""
    latencies: list[float] = []
    started = 0
    wall0, t0 = time.time(), time.perf_counter()
    end = t0 + args.seconds

    async def worker() -> None:
        nonlocal started
        while started < args.max_calls:
            start = time.perf_counter()
            if start >= end:
                return
            started += 1
            try:
                await call(request, metadata=md, timeout=CALL_TIMEOUT)
            except aio.AioRpcError as exc:
                errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
                continue
            done = time.perf_counter()
            if done <= end:
                latencies.append(done - start)

    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(args.concurrency))),
        timeout=args.seconds + 30,
    )
    return {
        "calls": len(latencies),
        "calls_started": started,
        "calls_per_s": len(latencies) / args.seconds,
        "start": wall0,
        "end": time.time(),
        "latency": _summary(latencies),
    }


async def unary(args: argparse.Namespace) -> dict[str, Any]:
    """Alternate fixed-length windows over the targets: A B, B A, A B, ...

    Short interleaved windows expose every target to the same machine noise.
    """
    request = bytes.fromhex(args.request_hex)
    tokens = _tokens() or [""]
    errors: dict[str, int] = {}
    channels = [aio.insecure_channel(t, options=CHANNEL_OPTIONS) for t in args.target]
    windows: list[dict[str, Any]] = []
    try:
        calls = [ch.unary_unary(args.method) for ch in channels]
        mds = [_metadata(tokens[i % len(tokens)]) for i in range(len(channels))]
        warm = argparse.Namespace(**{**vars(args), "seconds": args.warmup})
        for call, md in zip(calls, mds, strict=True):
            await call(request, metadata=md, timeout=CALL_TIMEOUT)  # connect before timing
            await _window(call, request, md, warm, errors)
        order = list(range(len(channels)))
        for w in range(args.windows):
            for i in order if w % 2 == 0 else order[::-1]:
                result = await _window(calls[i], request, mds[i], args, errors)
                result["target"] = i
                result["window"] = w
                windows.append(result)
    finally:
        for ch in channels:
            await ch.close()
    return {"windows": windows, "errors": errors, "seconds": args.seconds}


# --- heartbeat streams -----------------------------------------------------


async def _register_all(channel: aio.Channel, args: argparse.Namespace, md: Any) -> list[int]:
    """RegisterInstance for every stream's instance; the leases' expires_at (0 on echo)."""
    register = channel.unary_unary(REGISTER_METHOD)
    gate = asyncio.Semaphore(64)

    async def one(i: int) -> int:
        request = registry_pb2.RegisterInstanceRequest(
            service_id=args.service_id,
            instance_key=f"{args.prefix}{i}",
            env=args.env,
            host="10.0.0.1",
            endpoint=f"10.0.0.1:{10000 + i}",
            grpc_port=10000 + i,
            ttl_seconds=args.ttl,
        ).SerializeToString()
        async with gate:
            answer = await register(request, metadata=md, timeout=CALL_TIMEOUT)
        return registry_pb2.RegisterInstanceResponse.FromString(answer).expires_at

    return await asyncio.wait_for(
        asyncio.gather(*(one(i) for i in range(args.streams))), timeout=60
    )


async def heartbeat(args: argparse.Namespace) -> dict[str, Any]:
    md = _metadata((_tokens() or [""])[0])
    beats = max(1, round(args.seconds / args.interval))
    latencies: list[float] = []
    lags: list[float] = []
    slow: list[tuple[float, float]] = []  # (wall time, latency) of answers over --slow
    zero_answers = 0
    lapsed = 0
    missing_answers = 0
    stream_errors: dict[str, int] = {}
    channels = [
        aio.insecure_channel(args.target, options=[*CHANNEL_OPTIONS, ("grpc.channel_id", i)])
        for i in range(args.channels)
    ]
    try:
        for ch in channels:
            await asyncio.wait_for(ch.channel_ready(), CALL_TIMEOUT)
        leases = await _register_all(channels[0], args, md)
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.5  # every stream is open before the first beat

        async def stream(i: int) -> Any:
            nonlocal zero_answers, missing_answers, lapsed
            request = registry_pb2.HeartbeatRequest(
                service_id=args.service_id, instance_key=f"{args.prefix}{i}"
            ).SerializeToString()
            call = channels[i % len(channels)].stream_stream(HEARTBEAT_METHOD)(metadata=md)
            first = t0 + args.interval * i / args.streams  # spread evenly over one interval
            expires_at = leases[i]
            try:
                for k in range(beats):
                    due = first + k * args.interval
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    lags.append(max(0.0, loop.time() - due))
                    start = time.perf_counter()
                    await asyncio.wait_for(call.write(request), CALL_TIMEOUT)
                    answer = await asyncio.wait_for(call.read(), CALL_TIMEOUT)
                    latency = time.perf_counter() - start
                    latencies.append(latency)
                    if latency > args.slow and len(slow) < 10_000:
                        slow.append((time.time(), latency))
                    if answer is aio.EOF:
                        missing_answers += beats - k
                        break
                    reply = registry_pb2.HeartbeatResponse.FromString(answer)
                    if args.mode == "fake":
                        if reply.expires_at == 0:
                            zero_answers += 1
                        elif reply.expires_at - args.ttl > expires_at:
                            lapsed += 1  # renewed after the previous lease had ended
                        expires_at = reply.expires_at
            except (aio.AioRpcError, TimeoutError) as exc:
                name = exc.code().name if isinstance(exc, aio.AioRpcError) else "CLIENT_TIMEOUT"
                stream_errors[name] = stream_errors.get(name, 0) + 1
                call.cancel()
                return None
            return call

        calls = await asyncio.wait_for(
            asyncio.gather(*(stream(i) for i in range(args.streams))),
            timeout=args.seconds + 60,
        )
        online = -1
        if args.mode == "fake":
            # Streams are still open and the last beat of each is under one
            # interval old: every instance must be listed as online.
            reply_bytes = await channels[0].unary_unary(LIST_METHOD)(
                registry_pb2.ListServicesRequest(
                    project=args.project, env=args.env
                ).SerializeToString(),
                metadata=md,
                timeout=CALL_TIMEOUT,
            )
            reply = registry_pb2.ListServicesResponse.FromString(reply_bytes)
            online = sum(
                1
                for svc in reply.services
                if svc.service.id == args.service_id
                for inst in svc.instances
                if inst.instance_key.startswith(args.prefix)
            )
        for call in calls:
            if call is not None:
                await asyncio.wait_for(call.done_writing(), CALL_TIMEOUT)
        for call in calls:
            if call is not None:
                try:
                    code = await asyncio.wait_for(call.code(), CALL_TIMEOUT)
                except TimeoutError:
                    code = None
                if code != grpc.StatusCode.OK:
                    name = f"CLOSE_{code.name if code else 'TIMEOUT'}"
                    stream_errors[name] = stream_errors.get(name, 0) + 1
    finally:
        for ch in channels:
            await ch.close()
    return {
        "streams": args.streams,
        "channels": args.channels,
        "beats_per_stream": beats,
        "expected_answers": beats * args.streams,
        "answers": len(latencies),
        "zero_answers": zero_answers,
        "lapsed_leases": lapsed,
        "missing_answers": missing_answers,
        "stream_errors": stream_errors,
        "online_at_end": online,
        "latency": _summary(latencies),
        "send_lag": _summary(lags),
        "slow_answers": slow,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._client")
    sub = parser.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("unary")
    u.add_argument("--target", action="append", required=True, help="repeat to alternate")
    u.add_argument("--method", required=True)
    u.add_argument("--request-hex", default="")
    u.add_argument("--concurrency", type=int, default=32)
    u.add_argument("--seconds", type=float, default=2.0, help="length of one window")
    u.add_argument("--windows", type=int, default=10, help="windows per target")
    u.add_argument("--warmup", type=float, default=0.5)
    u.add_argument("--max-calls", type=int, default=1_000_000, help="per window")
    h = sub.add_parser("heartbeat")
    h.add_argument("--target", required=True)
    h.add_argument("--mode", choices=["fake", "echo"], required=True)
    h.add_argument("--service-id", type=int, default=1)
    h.add_argument("--prefix", default="hb-")
    h.add_argument("--project", default="bench")
    h.add_argument("--env", default="dev")
    h.add_argument("--streams", type=int, default=1000)
    h.add_argument("--channels", type=int, default=4)
    h.add_argument("--seconds", type=float, default=60.0)
    h.add_argument("--interval", type=float, default=1.0)
    h.add_argument("--ttl", type=int, default=3)
    h.add_argument("--slow", type=float, default=0.05, help="list answers slower than this")
    args = parser.parse_args(argv)
    grpc_runner = unary if args.cmd == "unary" else heartbeat
    report = asyncio.run(grpc_runner(args))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
