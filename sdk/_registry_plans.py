"""The registry RPCs as plans: validation, defaults and reply parsing, without IO.

One planner serves both SDK flavours: :class:`sdk.registry.RegistryClient` and
``sdk.aio.AsyncRegistryClient`` each plan a call here, send it (blocking or awaited) and
hand the reply back to the plan's parser. The rules (G12, G14, G16, G17) are documented on
:mod:`sdk.registry`; the JSON encoders are also used by self-registration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from protos.registry.v1 import registry_pb2
from sdk.config import Config
from sdk.errors import InvalidArgument, Unknown
from sdk.models import Endpoint, Service, ServiceView
from sdk.results import EnsuredService, RegisteredInstance

__all__ = [
    "SERVICE",
    "Plan",
    "RegistryRequests",
    "check_timeout",
    "endpoints_json_text",
    "json_object_text",
]

SERVICE = "/xiaozhizhang.registry.v1.RegistryService/"


def check_timeout(timeout: float | None, method: str) -> None:
    if timeout is None:
        return
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise InvalidArgument(
            f"timeout: must be a number of seconds > 0, not {timeout!r}", method=method
        )


def _check_id(name: str, value: object, method: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidArgument(f"{name}: must be an integer > 0, not {value!r}", method=method)
    return value


def _check_text(name: str, value: object, method: str, *, required: bool) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(
            f"{name}: must be a string, not {type(value).__name__}", method=method
        )
    if required and not value.strip():
        raise InvalidArgument(f"{name}: must not be empty", method=method)
    return value


def _check_port(name: str, value: object, method: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise InvalidArgument(f"{name}: must be a port in 0..65535, not {value!r}", method=method)
    return value


def _plain(value: Any) -> Any:
    """A JSON-encodable copy: mappings to dicts, sequences to lists (the input is not touched)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def json_object_text(name: str, value: Mapping[str, Any] | None, method: str) -> str:
    """``value`` as compact JSON text (``""`` for ``None``); a typed error names ``name``."""
    if value is None:
        return ""
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"{name}: must be a mapping or None, not {type(value).__name__}", method=method
        )
    try:
        return json.dumps(_plain(value), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{name}: not JSON-encodable: {exc}", method=method) from None


def endpoints_json_text(value: Iterable[Endpoint | Mapping[str, Any]], method: str) -> str:
    """Validated ``endpoints_json`` text (``""`` for none); errors name the bad item."""
    items = []
    for index, item in enumerate(value):
        where = f"endpoints[{index}]"
        if isinstance(item, Endpoint):
            host, network, priority = item.host, item.network, item.priority
        elif isinstance(item, Mapping):
            host = item.get("host", "")
            network = item.get("network", "") or ""
            priority = item.get("priority", 0) or 0
        else:
            raise InvalidArgument(
                f"{where}: must be an Endpoint or a mapping, not {type(item).__name__}",
                method=method,
            )
        _check_text(f"{where}.host", host, method, required=True)
        _check_text(f"{where}.network", network, method, required=False)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise InvalidArgument(f"{where}.priority: must be an integer", method=method)
        items.append({"host": host, "network": network, "priority": priority})
    return json.dumps(items, separators=(",", ":")) if items else ""


class Plan(NamedTuple):
    """One registry RPC, decided before any IO: its name, request, and how to read the reply."""

    name: str
    request: Any
    parse: Callable[[Any], Any]

    @property
    def method(self) -> str:
        return SERVICE + self.name


class RegistryRequests:
    """The registry RPCs as plans: validation, defaults and parsing, no IO.

    The sync :class:`RegistryClient` and ``sdk.aio.AsyncRegistryClient`` run the same plans;
    each public method of theirs is "plan, send, parse". Obviously invalid arguments raise
    :class:`~sdk.errors.InvalidArgument` naming the field while planning, before any call.
    """

    def __init__(self, config: Config) -> None:
        self._config = config

    @property
    def env(self) -> str:
        """The default environment: ``config.env``."""
        return self._config.env

    def _env(self, env: str | None, method: str) -> str:
        if env is None:
            return self._config.env
        _check_text("env", env, method, required=False)
        return env.strip() or self._config.env

    def _plan_list_services(self, project: str | None, env: str | None) -> Plan:
        method = SERVICE + "ListServices"
        project = _check_text("project", project or "", method, required=False)
        request = registry_pb2.ListServicesRequest(project=project, env=self._env(env, method))
        return Plan("ListServices", request, _views)

    def _plan_get_service(self, service_id: int, env: str | None) -> Plan:
        method = SERVICE + "GetServiceByID"
        _check_id("service_id", service_id, method)
        if env is not None:
            _check_text("env", env, method, required=True)

        def parse(reply: registry_pb2.GetServiceByIDResponse) -> ServiceView:
            if not reply.HasField("service"):
                raise Unknown("the server answered without a service", method=method)
            view = ServiceView.from_pb(reply.service)
            return view if env is None else view.in_env(env)

        return Plan("GetServiceByID", registry_pb2.GetServiceByIDRequest(id=service_id), parse)

    def _plan_ensure_service(
        self,
        project: str,
        name: str,
        owner: str,
        description: str,
        spec: Mapping[str, Any] | None,
    ) -> Plan:
        method = SERVICE + "EnsureService"
        request = registry_pb2.EnsureServiceRequest(
            project=_check_text("project", project, method, required=True),
            name=_check_text("name", name, method, required=True),
            owner=_check_text("owner", owner, method, required=False),
            description=_check_text("description", description, method, required=False),
            spec_json=json_object_text("spec", spec, method),
        )
        return Plan("EnsureService", request, _ensured)

    def _plan_register_instance(
        self,
        service_id: int,
        *,
        host: str,
        instance_key: str,
        env: str | None,
        endpoint: str,
        endpoints: Iterable[Endpoint | Mapping[str, Any]],
        meta: Mapping[str, Any] | None,
        ttl_seconds: int,
        http_port: int,
        grpc_port: int,
    ) -> Plan:
        method = SERVICE + "RegisterInstance"
        _check_id("service_id", service_id, method)
        _check_text("host", host, method, required=True)
        _check_text("instance_key", instance_key, method, required=False)
        _check_text("endpoint", endpoint, method, required=False)
        env = self._env(env, method)
        raw: object = endpoints  # a str is iterable: refuse it rather than split it
        if isinstance(raw, str | bytes):
            raise InvalidArgument("endpoints: must be a sequence of endpoints", method=method)
        endpoints_json = endpoints_json_text(endpoints, method)
        if not endpoint and not endpoints_json:
            raise InvalidArgument("endpoint: give endpoint or endpoints", method=method)
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
            raise InvalidArgument(
                f"ttl_seconds: must be an integer, not {ttl_seconds!r}", method=method
            )
        request = registry_pb2.RegisterInstanceRequest(
            service_id=service_id,
            instance_key=instance_key,
            env=env,
            host=host,
            endpoint=endpoint,
            meta_json=json_object_text("meta", meta, method),
            ttl_seconds=ttl_seconds,
            endpoints_json=endpoints_json,
            http_port=_check_port("http_port", http_port, method),
            grpc_port=_check_port("grpc_port", grpc_port, method),
        )

        def parse(reply: registry_pb2.RegisterInstanceResponse) -> RegisteredInstance:
            return RegisteredInstance(
                service_id=service_id,
                instance_key=reply.instance_key or instance_key,
                env=env,
                expires_at=int(reply.expires_at),
            )

        return Plan("RegisterInstance", request, parse)

    def _plan_deregister_instance(self, service_id: int, instance_key: str) -> Plan:
        method = SERVICE + "DeregisterInstance"
        _check_id("service_id", service_id, method)
        _check_text("instance_key", instance_key, method, required=True)
        request = registry_pb2.DeregisterInstanceRequest(
            service_id=service_id, instance_key=instance_key
        )
        return Plan("DeregisterInstance", request, _success)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self._config.env!r})"


def _views(reply: registry_pb2.ListServicesResponse) -> tuple[ServiceView, ...]:
    return tuple(ServiceView.from_pb(view) for view in reply.services)


def _ensured(reply: registry_pb2.EnsureServiceResponse) -> EnsuredService:
    return EnsuredService(Service.from_pb(reply.service), bool(reply.created))


def _success(reply: registry_pb2.DeregisterInstanceResponse) -> bool:
    return bool(reply.success)
