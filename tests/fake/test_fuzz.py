"""Property-based fuzzing of the fake over real loopback gRPC.

Every RPC gets requests built from arbitrary field values, with and without a
usable token, and must answer a status CONTRACT allows for that input (never
UNKNOWN), record no unexpected error, and keep serving. Raw garbage bytes sent
to every method path must be answered INTERNAL (unparsable), UNAUTHENTICATED
(no token) or as the parsed request deserves.

Hypothesis runs many examples per test, so each test shares one module-scoped
fake (function-scoped fixtures would not be reset between examples).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fake_registry import FakeRegistry, ManualClock
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc
from protos.user.v1 import user_pb2 as upb
from protos.user.v1 import user_pb2_grpc

KEY = "fuzz-key"
SECRET = "fuzz-secret-0123456789"
TOKEN_TTL = 10**6  # the clock never moves: tokens outlive the module
RPC_TIMEOUT = 10
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HB_KEY = "fixed-heartbeat-key"  # pre-registered, so heartbeats also hit a live row
HB_TTL = 45
HUGE_KEY = "huge-ttl-key"  # pre-registered with a TTL near the lease store's limit
# Leases are kept in int64 milliseconds: a lease ending later is a storage error.
LEASE_LIMIT = INT64_MAX // 1000

Code = grpc.StatusCode
OK, INVALID, NOT_FOUND = Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND
UNAUTH, DENIED, INTERNAL = Code.UNAUTHENTICATED, Code.PERMISSION_DENIED, Code.INTERNAL
Metadata = tuple[tuple[str, str], ...]

# Derandomized and database-free, so CI sees the same examples on every run.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RAW = settings(FUZZ, max_examples=25)


# --- the shared fake ------------------------------------------------------------


class Target:
    """The module's fake and everything needed to call it.

    A plain class with a short repr: hypothesis prints it in failure reports,
    and the token should not be in them.
    """

    def __init__(
        self, fake: FakeRegistry, clock: ManualClock, channel: grpc.Channel, hb_service_id: int
    ) -> None:
        self.fake = fake
        self.clock = clock
        self.channel = channel
        self.auth = user_pb2_grpc.ClientAuthServiceStub(channel)
        self.registry = registry_pb2_grpc.RegistryServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)
        self.token = self.auth.AuthenticateClient(
            upb.AuthenticateClientRequest(client_key=KEY, client_secret=SECRET),
            timeout=RPC_TIMEOUT,
        ).access_token
        self.hb_service_id = hb_service_id

    def metadata(self, mode: str) -> Metadata:
        """Call metadata for an auth ``mode`` (see :data:`AUTH_MODES`)."""
        return {
            "none": (),
            "bearer": (("authorization", f"Bearer {self.token}"),),
            "lowercase": (("authorization", f"bearer {self.token}"),),
            "bare": (("authorization", self.token),),
            "token-key": (("token", self.token),),
            "garbage": (("authorization", "Bearer not.a.token"),),
            "empty": (("authorization", "Bearer "),),
        }[mode]

    def __repr__(self) -> str:  # keeps the token out of failure reports
        return f"Target({self.fake!r})"

    def check_serving(self) -> None:
        """The fake still answers, and nothing unexpected was raised inside it."""
        reply = self.health.Check(health_pb2.HealthCheckRequest(), timeout=RPC_TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        errors = self.fake.errors.take()
        assert not errors, f"unexpected errors inside the fake: {errors!r}"

    def service_ids(self) -> set[int]:
        return {s.id for s in self.fake.services()}


#: Auth modes that the lenient interceptor accepts (CONTRACT 2.4).
ACCEPTED_BY_INTERCEPTOR = {"bearer", "lowercase", "bare", "token-key"}
ALL_AUTH_MODES = st.sampled_from(
    ["none", "bearer", "lowercase", "bare", "token-key", "garbage", "empty"]
)


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    clock = ManualClock()
    fake = FakeRegistry(clients={KEY: SECRET}, token_ttl=TOKEN_TTL, clock=clock)
    fake.ensure_service("fuzz", "a")
    fake.ensure_service("fuzz", "b")
    hb = fake.ensure_service("fuzz", "heartbeat")
    fake.register_instance(hb.id, HB_KEY, ttl_seconds=HB_TTL)
    fake.register_instance(hb.id, HUGE_KEY, ttl_seconds=LEASE_LIMIT - int(clock.time()) - 10**6)
    with fake, grpc.insecure_channel(fake.address) as channel:
        target = Target(fake, clock, channel, hb.id)
        yield target
        # the fake still serves a full listing after everything it was fed
        listing = target.registry.ListServices(
            rpb.ListServicesRequest(), metadata=target.metadata("bearer"), timeout=RPC_TIMEOUT
        )
        assert listing.total == len(listing.services) == len(fake.services())
    errors = fake.errors.take()
    assert not errors, f"unexpected errors inside the fake: {errors!r}"


def status_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, Any]:
    """Run one RPC; return its status code and reply (``None`` unless OK)."""
    try:
        return OK, call()
    except grpc.RpcError as error:
        failure: Any = error  # the raised object is also a grpc.Call
    code: grpc.StatusCode = failure.code()
    assert code is not Code.UNKNOWN, f"UNKNOWN: {failure.details()}"
    return code, None


# --- strategies -------------------------------------------------------------------


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` three times in four, else ``other``: keeps the OK paths well visited."""
    return st.integers(min_value=0, max_value=3).flatmap(lambda n: other if n == 0 else usual)


AUTH_MODES = mostly(st.just("bearer"), ALL_AUTH_MODES)

int64s = st.one_of(
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.integers(min_value=-3, max_value=6),
    st.sampled_from([INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX - 1, 2**31, 2**53 + 1]),
)
texts = st.one_of(
    st.text(),
    st.sampled_from(["", "dev", "prod", "fuzz", "a", "b", "127.0.0.1", "h:80"]),
    st.text(min_size=25, max_size=600),  # around the storage limits
)

_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond int64 and float64 too
    st.floats(),  # json.dumps writes NaN / Infinity for the non-finite ones
    st.text(),
)
json_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=10,
)
endpoint_objects = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["host", "network", "priority", "HOST", "Priority", "port", "x"]),
        st.one_of(st.text(max_size=20), int64s, json_values),
        max_size=4,
    ),
    json_values,
)
endpoint_arrays = st.lists(
    st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {},
            optional={
                "host": st.text(max_size=20),
                "network": st.text(max_size=10),
                "priority": int64s,
            },
        ),
    ),
    max_size=3,
).map(json.dumps)
json_texts = st.one_of(
    st.text(),
    st.sampled_from(["", "{}", "[]", "null", "[null]", "[{}]", "{", "NaN", "[1]"]),
    json_values.map(json.dumps),
    st.dictionaries(st.text(max_size=6), json_values, max_size=4).map(
        lambda d: json.dumps(d, ensure_ascii=False)
    ),
    st.lists(endpoint_objects, max_size=3).map(json.dumps),
)


# --- ClientAuthService -------------------------------------------------------------


@FUZZ
@given(
    key=st.one_of(texts, st.just(KEY)),
    secret=st.one_of(texts, st.just(SECRET)),
    mode=AUTH_MODES,
)
def test_authenticate_client(target: Target, key: str, secret: str, mode: str) -> None:
    request = upb.AuthenticateClientRequest(client_key=key, client_secret=secret)
    code, reply = status_of(
        lambda: target.auth.AuthenticateClient(
            request, metadata=target.metadata(mode), timeout=RPC_TIMEOUT
        )
    )
    # exempt from the token check: the metadata never matters
    if not key or not secret:
        assert code is INVALID
    elif (key, secret) == (KEY, SECRET):
        assert code is OK
        assert reply.token_type == "Bearer"
        assert reply.expires_at == int(target.clock.time()) + TOKEN_TTL
    else:
        assert code is UNAUTH
    target.check_serving()


@FUZZ
@given(mode=AUTH_MODES, extra=st.text(alphabet="abcXYZ019-_.", max_size=30))
def test_renew_token(target: Target, mode: str, extra: str) -> None:
    metadata = target.metadata(mode)
    if extra:  # a garbled token: valid prefix, extra characters
        metadata = (("authorization", f"Bearer {target.token}{extra}"),)
    code, reply = status_of(
        lambda: target.auth.RenewToken(
            upb.RenewTokenRequest(), metadata=metadata, timeout=RPC_TIMEOUT
        )
    )
    # the handler reads only "authorization" and strips only an exact "Bearer "
    if not extra and mode in ("bearer", "bare"):
        assert code is OK
        assert reply.expires_at == int(target.clock.time()) + TOKEN_TTL
    else:
        assert code in (UNAUTH, DENIED)
    target.check_serving()


# --- RegistryService ------------------------------------------------------------------


def _over_limit(limits: dict[str, int], values: dict[str, str]) -> bool:
    return any(len(values[name]) > limit for name, limit in limits.items())


_REGISTER_EXAMPLE = {
    "service_id": 1,
    "instance_key": "",
    "env": "dev",
    "host": "h",
    "endpoint": "h:1",
    "meta_json": "",
    "ttl_seconds": 0,
    "endpoints_json": "",
    "http_port": 0,
    "grpc_port": 0,
    "mode": "bearer",
}


@FUZZ
@given(
    service_id=mostly(st.sampled_from([1, 2, 3]), int64s),
    instance_key=texts,
    env=mostly(st.sampled_from(["dev", "prod"]), texts),
    host=mostly(st.sampled_from(["h", "10.0.0.1"]), texts),
    endpoint=texts,
    meta_json=json_texts,
    ttl_seconds=st.one_of(int64s, st.sampled_from([1, 30, INT64_MAX - 10**9])),
    endpoints_json=st.one_of(st.just(""), endpoint_arrays, json_texts),
    http_port=int64s,
    grpc_port=int64s,
    mode=AUTH_MODES,
)
@example(**_REGISTER_EXAMPLE)  # a generated key
@example(**{**_REGISTER_EXAMPLE, "instance_key": "max-ttl", "ttl_seconds": INT64_MAX})
def test_register_instance(
    target: Target,
    service_id: int,
    instance_key: str,
    env: str,
    host: str,
    endpoint: str,
    meta_json: str,
    ttl_seconds: int,
    endpoints_json: str,
    http_port: int,
    grpc_port: int,
    mode: str,
) -> None:
    request = rpb.RegisterInstanceRequest(
        service_id=service_id,
        instance_key=instance_key,
        env=env,
        host=host,
        endpoint=endpoint,
        meta_json=meta_json,
        ttl_seconds=ttl_seconds,
        endpoints_json=endpoints_json,
        http_port=http_port,
        grpc_port=grpc_port,
    )
    known = target.service_ids()
    code, reply = status_of(
        lambda: target.registry.RegisterInstance(
            request, metadata=target.metadata(mode), timeout=RPC_TIMEOUT
        )
    )
    target.check_serving()
    if mode not in ACCEPTED_BY_INTERCEPTOR:
        assert code is UNAUTH
        return
    assert code in (OK, INVALID, NOT_FOUND, INTERNAL)
    if service_id <= 0 or not host or (not endpoint and not endpoints_json):
        assert code is INVALID
    if code is NOT_FOUND:
        assert service_id not in known
    now = int(target.clock.time())
    ttl = ttl_seconds if ttl_seconds > 0 else 60
    if code is INTERNAL:  # only a storage limit (or a lease past the store's range) may
        assert now + ttl > LEASE_LIMIT or _over_limit(
            {"instance_key": 128, "env": 32, "host": 128, "endpoint": 255},
            {"instance_key": instance_key, "env": env, "host": host, "endpoint": endpoint},
        )
    if code is OK:
        assert service_id in known
        assert env
        if instance_key:
            assert reply.instance_key == instance_key
        else:
            assert UUID4.match(reply.instance_key)
        assert reply.expires_at == now + ttl
        stored = {r.instance_key: r for r in target.fake.instances(service_id)}
        record = stored[reply.instance_key]
        assert (record.env, record.host, record.ttl_seconds) == (env, host, ttl)
        assert (record.http_port, record.grpc_port) == (http_port, grpc_port)


@FUZZ
@given(
    service_id=mostly(st.sampled_from([1, 2, 3]), int64s),
    instance_key=st.one_of(texts, st.just(HB_KEY)),
    mode=AUTH_MODES,
)
def test_deregister_instance(target: Target, service_id: int, instance_key: str, mode: str) -> None:
    if (service_id, instance_key) == (target.hb_service_id, HB_KEY):
        instance_key += "-not-the-heartbeat-fixture"
    request = rpb.DeregisterInstanceRequest(service_id=service_id, instance_key=instance_key)
    code, reply = status_of(
        lambda: target.registry.DeregisterInstance(
            request, metadata=target.metadata(mode), timeout=RPC_TIMEOUT
        )
    )
    target.check_serving()
    if mode not in ACCEPTED_BY_INTERCEPTOR:
        assert code is UNAUTH
    elif service_id <= 0 or not instance_key:
        assert code is INVALID
    else:  # idempotent: unknown instances and services are fine
        assert code is OK
        assert reply.success is True
        assert instance_key not in {r.instance_key for r in target.fake.instances(service_id)}


@FUZZ
@given(
    beats=st.lists(
        st.one_of(
            st.tuples(st.one_of(int64s, st.sampled_from([1, 2, 3])), texts),
            st.tuples(st.just(-1), st.sampled_from([HB_KEY, HUGE_KEY])),  # -1: the live rows
        ),
        max_size=6,
    ),
    mode=AUTH_MODES,
)
def test_heartbeat_stream(target: Target, beats: list[tuple[int, str]], mode: str) -> None:
    beats = [(target.hb_service_id, k) if sid == -1 else (sid, k) for sid, k in beats]
    requests = [rpb.HeartbeatRequest(service_id=s, instance_key=k) for s, k in beats]
    responses: list[int] = []

    def run() -> None:
        call = target.registry.HeartbeatStream(
            iter(requests), metadata=target.metadata(mode), timeout=RPC_TIMEOUT
        )
        for response in call:
            responses.append(response.expires_at)

    code, _ = status_of(run)
    target.check_serving()
    if mode not in ACCEPTED_BY_INTERCEPTOR:
        assert code is UNAUTH
        assert responses == []
        return
    # per-message failures never end the stream: one answer per request, in order
    assert code is OK
    assert len(responses) == len(beats)
    live = {(r.service_id, r.instance_key): r.ttl_seconds for r in target.fake.instances()}
    now = int(target.clock.time())
    for (service_id, key), expires_at in zip(beats, responses, strict=True):
        if service_id <= 0 or not key or (service_id, key) not in live:
            assert expires_at == 0, (service_id, key)
        elif now + live[(service_id, key)] <= INT64_MAX:
            assert expires_at == now + live[(service_id, key)], (service_id, key)
        # else: a lease beyond int64 cannot be answered exactly; any value will do
    assert {(target.hb_service_id, HB_KEY), (target.hb_service_id, HUGE_KEY)} <= live.keys()


@FUZZ
@given(project=texts, env=texts, mode=AUTH_MODES)
def test_list_services(target: Target, project: str, env: str, mode: str) -> None:
    request = rpb.ListServicesRequest(project=project, env=env)
    code, reply = status_of(
        lambda: target.registry.ListServices(
            request, metadata=target.metadata(mode), timeout=RPC_TIMEOUT
        )
    )
    target.check_serving()
    if mode not in ACCEPTED_BY_INTERCEPTOR:
        assert code is UNAUTH
        return
    assert code is OK  # no validation at all
    assert reply.total == len(reply.services)
    ids = [s.service.id for s in reply.services]
    assert ids == sorted(ids, reverse=True)
    for view in reply.services:
        assert not project or view.service.project == project
        assert all(not env or i.env == env for i in view.instances)
        assert all(i.service_id == view.service.id for i in view.instances)


@FUZZ
@given(service_id=mostly(st.sampled_from([1, 2, 3, 4]), int64s), mode=AUTH_MODES)
def test_get_service_by_id(target: Target, service_id: int, mode: str) -> None:
    known = target.service_ids()
    code, reply = status_of(
        lambda: target.registry.GetServiceByID(
            rpb.GetServiceByIDRequest(id=service_id),
            metadata=target.metadata(mode),
            timeout=RPC_TIMEOUT,
        )
    )
    target.check_serving()
    if mode not in ACCEPTED_BY_INTERCEPTOR:
        assert code is UNAUTH
    elif service_id <= 0:
        assert code is INVALID
    elif service_id in known:
        assert code is OK
        assert reply.service.service.id == service_id
    else:
        assert code is NOT_FOUND


@FUZZ
@given(
    project=st.one_of(texts, st.just("fuzz")),
    name=st.one_of(texts, st.sampled_from(["a", "b"])),
    owner=texts,
    description=texts,
    spec_json=json_texts,
    mode=AUTH_MODES,
)
def test_ensure_service(
    target: Target,
    project: str,
    name: str,
    owner: str,
    description: str,
    spec_json: str,
    mode: str,
) -> None:
    existing = {(s.project, s.name): s for s in target.fake.services()}
    request = rpb.EnsureServiceRequest(
        project=project, name=name, owner=owner, description=description, spec_json=spec_json
    )
    code, reply = status_of(
        lambda: target.registry.EnsureService(
            request, metadata=target.metadata(mode), timeout=RPC_TIMEOUT
        )
    )
    target.check_serving()
    if mode not in ACCEPTED_BY_INTERCEPTOR:
        assert code is UNAUTH
    elif not project or not name:
        assert code is INVALID
    elif (project, name) in existing:
        assert code is OK
        assert reply.created is False
        assert reply.service.id == existing[(project, name)].id
        assert reply.service.owner == existing[(project, name)].owner  # unchanged
    elif _over_limit(
        {"project": 64, "name": 64, "owner": 128, "description": 500},
        {"project": project, "name": name, "owner": owner, "description": description},
    ):
        assert code is INTERNAL
    else:
        assert code is OK
        assert reply.created is True
        assert (reply.service.project, reply.service.name) == (project, name)
        if reply.service.spec_json:
            assert isinstance(json.loads(reply.service.spec_json), dict)


# --- raw bytes to every method path ------------------------------------------------------


@dataclass(frozen=True)
class Method:
    path: str
    request: type[Message]
    streaming: bool
    protected: bool
    # codes a well-formed request may get with a usable token
    codes: frozenset[grpc.StatusCode]


_REGISTRY = "/xiaozhizhang.registry.v1.RegistryService/"
_AUTH = "/xiaozhizhang.user.v1.ClientAuthService/"
METHODS = [
    Method(
        _AUTH + "AuthenticateClient",
        upb.AuthenticateClientRequest,
        False,
        False,
        frozenset({OK, INVALID, UNAUTH}),
    ),
    Method(_AUTH + "RenewToken", upb.RenewTokenRequest, False, True, frozenset({OK})),
    Method(
        _REGISTRY + "RegisterInstance",
        rpb.RegisterInstanceRequest,
        False,
        True,
        frozenset({OK, INVALID, NOT_FOUND, INTERNAL}),
    ),
    Method(
        _REGISTRY + "DeregisterInstance",
        rpb.DeregisterInstanceRequest,
        False,
        True,
        frozenset({OK, INVALID}),
    ),
    Method(_REGISTRY + "HeartbeatStream", rpb.HeartbeatRequest, True, True, frozenset({OK})),
    Method(_REGISTRY + "ListServices", rpb.ListServicesRequest, False, True, frozenset({OK})),
    Method(
        _REGISTRY + "GetServiceByID",
        rpb.GetServiceByIDRequest,
        False,
        True,
        frozenset({OK, INVALID, NOT_FOUND}),
    ),
    Method(
        _REGISTRY + "EnsureService",
        rpb.EnsureServiceRequest,
        False,
        True,
        frozenset({OK, INVALID, INTERNAL}),
    ),
]


def test_every_method_is_fuzzed() -> None:
    paths = {
        f"/{service.full_name}/{method.name}"
        for descriptor in (upb.DESCRIPTOR, rpb.DESCRIPTOR)
        for service in descriptor.services_by_name.values()
        for method in service.methods
    }
    assert paths == {m.path for m in METHODS}
    for m in METHODS:
        (service_name, method_name) = m.path.strip("/").rsplit("/", 1)
        package, _, short = service_name.rpartition(".")
        descriptor = upb.DESCRIPTOR if package.endswith("user.v1") else rpb.DESCRIPTOR
        method = descriptor.services_by_name[short].methods_by_name[method_name]
        assert method.input_type.full_name == m.request.DESCRIPTOR.full_name
        assert method.client_streaming is method.server_streaming is m.streaming


def _parses(request: type[Message], data: bytes) -> bool:
    try:
        request.FromString(data)
    except DecodeError:
        return False
    return True


# Garbage, plus bytes that are valid encodings of the right message.
_garbage = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b"\x00", b"\xff" * 8, b"\x08\x01", b"\x0a\x02\xc3\x28", b"\x0a\x80"]),
)


@pytest.mark.parametrize("method", METHODS, ids=[m.path.rsplit("/", 1)[1] for m in METHODS])
@RAW
@given(chunks=st.lists(_garbage, min_size=1, max_size=3), with_token=st.booleans())
def test_raw_bytes(target: Target, method: Method, chunks: list[bytes], with_token: bool) -> None:
    metadata = target.metadata("bearer" if with_token else "none")
    parsable = [_parses(method.request, chunk) for chunk in chunks]
    replies: list[bytes] = []

    def run() -> None:
        # no serializers: bytes go out as they are and come back as bytes
        if method.streaming:
            stream: grpc.StreamStreamMultiCallable[bytes, bytes]
            stream = target.channel.stream_stream(method.path)
            replies.extend(stream(iter(chunks), metadata=metadata, timeout=RPC_TIMEOUT))
        else:
            unary: grpc.UnaryUnaryMultiCallable[bytes, bytes]
            unary = target.channel.unary_unary(method.path)
            replies.append(unary(chunks[0], metadata=metadata, timeout=RPC_TIMEOUT))

    code, _ = status_of(run)
    target.check_serving()
    if method.streaming:
        # checked once when the stream opens, before any message is read
        if not with_token:
            assert code is UNAUTH
            assert replies == []
        elif all(parsable):
            assert code is OK
            assert len(replies) == len(chunks)
        else:
            assert code is INTERNAL
            assert len(replies) == parsable.index(False)
    elif not parsable[0]:
        # grpc-go decodes before any interceptor sees the call: INTERNAL either way
        assert code is INTERNAL
    elif method.protected and not with_token:
        assert code is UNAUTH
    else:
        assert code in method.codes
        if code is OK:
            assert isinstance(replies[0], bytes)
