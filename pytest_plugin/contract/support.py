"""Helpers of the contract suite: calls with a deadline, tokens, streams, cleanup.

Nothing here knows which registry it talks to; everything goes through the
generated stubs with a :data:`TIMEOUT` on every call.
"""

from __future__ import annotations

import base64
import json
import queue
from collections.abc import Callable
from typing import Any, cast

import grpc

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

__all__ = [
    "NO_SUCH_PROJECT",
    "TIMEOUT",
    "UNKNOWN_ID",
    "HeartbeatSession",
    "Instances",
    "Metadata",
    "OpenHeartbeat",
    "authenticate",
    "b64url",
    "bearer",
    "ensure",
    "get_service",
    "jwt_parts",
    "list_services",
    "online",
    "protected_status",
    "register_request",
    "renew",
    "status_of",
]

Metadata = tuple[tuple[str, str], ...]
AuthStub = user_pb2_grpc.ClientAuthServiceStub
RegistryStub = registry_pb2_grpc.RegistryServiceStub

#: Deadline of every RPC, in seconds.
TIMEOUT = 5.0
#: A service id no registry allocates (ids are auto-increment from 1).
UNKNOWN_ID = 2**62
#: A project no test creates: a cheap, always-empty ListServices.
NO_SUCH_PROJECT = "contract-suite-no-such-project"


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    """The status ``call`` ends with: OK, or the code of the ``RpcError`` it raises."""
    try:
        call()
    except grpc.RpcError as exc:
        return cast(grpc.Call, exc).code()
    return grpc.StatusCode.OK


def bearer(token: str) -> Metadata:
    """Metadata carrying ``token`` exactly as the SDK must send it (CONTRACT 2.4)."""
    return (("authorization", f"Bearer {token}"),)


# --- auth ----------------------------------------------------------------------


def authenticate(stub: AuthStub, key: str, secret: str) -> user_pb2.AuthenticateClientResponse:
    request = user_pb2.AuthenticateClientRequest(client_key=key, client_secret=secret)
    return stub.AuthenticateClient(request, timeout=TIMEOUT)


def renew(stub: AuthStub, metadata: Metadata | None) -> user_pb2.RenewTokenResponse:
    return stub.RenewToken(user_pb2.RenewTokenRequest(), metadata=metadata, timeout=TIMEOUT)


def protected_status(stub: RegistryStub, metadata: Metadata | None) -> grpc.StatusCode:
    """The status of a cheap protected RPC (ListServices of an empty project)."""
    request = registry_pb2.ListServicesRequest(project=NO_SUCH_PROJECT)
    return status_of(lambda: stub.ListServices(request, metadata=metadata, timeout=TIMEOUT))


def b64url(data: bytes) -> str:
    """Unpadded URL-safe base64, as in a compact JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_json(part: str) -> dict[str, Any]:
    decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert isinstance(decoded, dict), f"a JWT part is not a JSON object: {decoded!r}"
    return decoded


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWT, without verifying it."""
    header, claims, _signature = token.split(".")
    return _b64url_json(header), _b64url_json(claims)


# --- registry ------------------------------------------------------------------


def register_request(service_id: int, **fields: Any) -> registry_pb2.RegisterInstanceRequest:
    """A valid RegisterInstanceRequest for ``service_id``; ``fields`` override the defaults."""
    values: dict[str, Any] = {
        "env": "dev",
        "host": "192.0.2.1",
        "endpoint": "192.0.2.1:8080",
        "ttl_seconds": 300,
    }
    values.update(fields)
    return registry_pb2.RegisterInstanceRequest(service_id=service_id, **values)


def ensure(
    stub: RegistryStub, md: Metadata, project: str, name: str, **fields: str
) -> registry_pb2.EnsureServiceResponse:
    request = registry_pb2.EnsureServiceRequest(project=project, name=name, **fields)
    return stub.EnsureService(request, metadata=md, timeout=TIMEOUT)


def get_service(
    stub: RegistryStub, md: Metadata, service_id: int
) -> registry_pb2.ServiceWithInstances:
    request = registry_pb2.GetServiceByIDRequest(id=service_id)
    return stub.GetServiceByID(request, metadata=md, timeout=TIMEOUT).service


def list_services(
    stub: RegistryStub, md: Metadata, project: str, env: str = ""
) -> registry_pb2.ListServicesResponse:
    request = registry_pb2.ListServicesRequest(project=project, env=env)
    return stub.ListServices(request, metadata=md, timeout=TIMEOUT)


def online(stub: RegistryStub, md: Metadata, service_id: int) -> dict[str, registry_pb2.Instance]:
    """The service's online instances by key (GetServiceByID: every env)."""
    return {i.instance_key: i for i in get_service(stub, md, service_id).instances}


class Instances:
    """Registers instances and remembers them, so the suite can deregister them all.

    Against a shared registry every instance a test registers must go away
    again; :meth:`cleanup` (run by the ``instances`` fixture at teardown)
    deregisters each one, which is idempotent if the test already did.
    """

    def __init__(self, stub: RegistryStub, md: Metadata) -> None:
        self._stub = stub
        self._md = md
        self._registered: list[tuple[int, str]] = []

    def track(self, service_id: int, instance_key: str) -> None:
        """Deregister ``(service_id, instance_key)`` at cleanup (registered some other way)."""
        self._registered.append((service_id, instance_key))

    def register(
        self, service_id: int, instance_key: str, **fields: Any
    ) -> registry_pb2.RegisterInstanceResponse:
        """RegisterInstance with :func:`register_request` defaults; raises on failure."""
        return self.send(register_request(service_id, instance_key=instance_key, **fields))

    def send(
        self, request: registry_pb2.RegisterInstanceRequest
    ) -> registry_pb2.RegisterInstanceResponse:
        """RegisterInstance with this exact request; the instance is cleaned up later."""
        if request.service_id > 0 and request.instance_key:
            self._registered.append((request.service_id, request.instance_key))
        reply = self._stub.RegisterInstance(request, metadata=self._md, timeout=TIMEOUT)
        if not request.instance_key:  # a generated key
            self._registered.append((request.service_id, reply.instance_key))
        return reply

    def status(self, service_id: int, **fields: Any) -> grpc.StatusCode:
        """The status of RegisterInstance(:func:`register_request` ``(service_id, **fields)``)."""
        return status_of(lambda: self.send(register_request(service_id, **fields)))

    def deregister(self, service_id: int, instance_key: str) -> bool:
        request = registry_pb2.DeregisterInstanceRequest(
            service_id=service_id, instance_key=instance_key
        )
        return self._stub.DeregisterInstance(request, metadata=self._md, timeout=TIMEOUT).success

    def cleanup(self, md: Metadata) -> None:
        """Deregister everything registered through this object, with ``md``."""
        self._md = md
        while self._registered:
            self.deregister(*self._registered.pop())


class HeartbeatSession:
    """One open HeartbeatStream, driven one request at a time.

    Requests go through a queue, so a test interleaves writes and reads on one
    long-lived stream as a client does. Every read is bounded by the stream's
    deadline.
    """

    def __init__(self, stub: RegistryStub, metadata: Metadata | None, timeout: float) -> None:
        self._requests: queue.SimpleQueue[registry_pb2.HeartbeatRequest | None] = (
            queue.SimpleQueue()
        )
        self.call = stub.HeartbeatStream(
            iter(self._requests.get, None), metadata=metadata, timeout=timeout
        )

    def send(self, service_id: int, instance_key: str) -> None:
        self._requests.put(
            registry_pb2.HeartbeatRequest(service_id=service_id, instance_key=instance_key)
        )

    def read(self) -> int:
        """The next response's ``expires_at``; raises ``grpc.RpcError`` if the stream failed."""
        return next(self.call).expires_at

    def beat(self, service_id: int, instance_key: str) -> int:
        self.send(service_id, instance_key)
        return self.read()

    def close(self) -> grpc.StatusCode:
        """Half-close, check that no response is left over, return the final status."""
        self._requests.put(None)
        leftover = [r.expires_at for r in self.call]
        assert leftover == [], f"responses nobody asked for: {leftover}"
        return self.call.code()

    def cancel(self) -> None:
        self._requests.put(None)  # ends the request iterator grpc's thread is reading
        self.call.cancel()


#: The ``open_heartbeat`` fixture: opens a session with the given metadata.
OpenHeartbeat = Callable[[Metadata | None], HeartbeatSession]
