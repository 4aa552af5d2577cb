"""State records to protobuf messages."""

from __future__ import annotations

from fake_registry.state.model import InstanceRecord, ServiceRecord
from fake_registry.state.registry import ServiceView
from protos.registry.v1 import registry_pb2 as pb

__all__ = ["instance_pb", "service_pb", "view_pb"]


# Records are immutable, so each converts once: a record is replaced, never
# changed, when its row changes. Keyed by identity; cleared when it grows large.
_CACHE_LIMIT = 50_000
_services: dict[int, tuple[ServiceRecord, pb.Service]] = {}
_instances: dict[int, tuple[InstanceRecord, pb.Instance]] = {}


def service_pb(s: ServiceRecord) -> pb.Service:
    """The message for ``s`` (shared: copy it before changing it)."""
    hit = _services.get(id(s))
    if hit is not None and hit[0] is s:
        return hit[1]
    if len(_services) >= _CACHE_LIMIT:
        _services.clear()
    message = _service_message(s)
    _services[id(s)] = (s, message)
    return message


def instance_pb(i: InstanceRecord) -> pb.Instance:
    """The message for ``i`` (shared: copy it before changing it)."""
    hit = _instances.get(id(i))
    if hit is not None and hit[0] is i:
        return hit[1]
    if len(_instances) >= _CACHE_LIMIT:
        _instances.clear()
    message = _instance_message(i)
    _instances[id(i)] = (i, message)
    return message


def _service_message(s: ServiceRecord) -> pb.Service:
    return pb.Service(
        id=s.id,
        project=s.project,
        name=s.name,
        owner=s.owner,
        description=s.description,
        spec_json=s.spec_json,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _instance_message(i: InstanceRecord) -> pb.Instance:
    return pb.Instance(
        id=i.id,
        service_id=i.service_id,
        instance_key=i.instance_key,
        env=i.env,
        host=i.host,
        endpoint=i.endpoint,
        meta_json=i.meta_json,
        ttl_seconds=i.ttl_seconds,
        last_heartbeat_at=i.last_heartbeat_at,
        created_at=i.created_at,
        endpoints_json=i.endpoints_json,
        http_port=i.http_port,
        grpc_port=i.grpc_port,
        updated_at=i.updated_at,
    )


def view_pb(view: ServiceView) -> pb.ServiceWithInstances:
    return pb.ServiceWithInstances(
        service=service_pb(view.service),
        instances=[instance_pb(i) for i in view.instances],
    )
