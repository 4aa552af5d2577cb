"""A narrated walk through the registry on the embedded fake, with raw generated stubs.

Run it with ``make demo``. It starts an in-process fake, then does what a
service does over the wire: authenticate, ensure its service definition,
register an instance, list services, renew the lease on the heartbeat stream,
and deregister. (Once the SDK lands, ``python -m sdk`` does the same through it.)
"""

from __future__ import annotations

import sys

import grpc

from fake_registry import FakeRegistry
from protos.registry.v1 import registry_pb2 as registry
from protos.registry.v1 import registry_pb2_grpc as registry_grpc
from protos.user.v1 import user_pb2 as user
from protos.user.v1 import user_pb2_grpc as user_grpc

KEY, SECRET = "demo-key", "demo-secret"


def step(number: int, text: str) -> None:
    print(f"\n[{number}] {text}")


def main() -> int:
    with FakeRegistry(clients={KEY: SECRET}) as fake, grpc.insecure_channel(fake.address) as ch:
        print(f"fake registry listening on {fake.address}")
        auth = user_grpc.ClientAuthServiceStub(ch)
        reg = registry_grpc.RegistryServiceStub(ch)

        step(1, "A call without a token is refused")
        try:
            reg.ListServices(registry.ListServicesRequest(), timeout=5)
        except grpc.RpcError as exc:
            print(f"    ListServices -> {exc.code().name}")

        step(2, f"AuthenticateClient with key {KEY!r}")
        token = auth.AuthenticateClient(
            user.AuthenticateClientRequest(client_key=KEY, client_secret=SECRET), timeout=5
        )
        print(f"    got a {token.token_type} token, expires_at={token.expires_at}")
        md = (("authorization", f"Bearer {token.access_token}"),)

        step(3, "EnsureService demo/echo (created on first call, unchanged after)")
        for _ in range(2):
            ensured = reg.EnsureService(
                registry.EnsureServiceRequest(
                    project="demo", name="echo", owner="team-demo", spec_json='{"proto":"echo"}'
                ),
                metadata=md,
                timeout=5,
            )
            print(f"    service id={ensured.service.id} created={ensured.created}")
        service_id = ensured.service.id

        step(4, "RegisterInstance with two endpoints and a 30 s lease")
        registered = reg.RegisterInstance(
            registry.RegisterInstanceRequest(
                service_id=service_id,
                instance_key="echo-1",
                env="dev",
                host="10.0.0.7",
                endpoints_json='[{"host":"10.0.0.7","network":"internal","priority":1},'
                '{"host":"echo.example.com","network":"external","priority":2}]',
                grpc_port=50051,
                meta_json='{"version":"1.4.2","zone":"a"}',
                ttl_seconds=30,
            ),
            metadata=md,
            timeout=5,
        )
        print(f"    instance_key={registered.instance_key} expires_at={registered.expires_at}")

        step(5, "ListServices project=demo env=dev")
        listed = reg.ListServices(
            registry.ListServicesRequest(project="demo", env="dev"), metadata=md, timeout=5
        )
        for entry in listed.services:
            for inst in entry.instances:
                print(
                    f"    {entry.service.project}/{entry.service.name}: {inst.instance_key} "
                    f"endpoints={inst.endpoints_json} meta={inst.meta_json}"
                )

        step(6, "Three beats on one long-lived HeartbeatStream (one answer per beat)")
        beats = [registry.HeartbeatRequest(service_id=service_id, instance_key="echo-1")] * 3
        for answer in reg.HeartbeatStream(iter(beats), metadata=md, timeout=5):
            print(f"    lease renewed until {answer.expires_at}")

        step(7, "DeregisterInstance, then a heartbeat answers expires_at=0 (lease lost)")
        done = reg.DeregisterInstance(
            registry.DeregisterInstanceRequest(service_id=service_id, instance_key="echo-1"),
            metadata=md,
            timeout=5,
        )
        print(f"    success={done.success}")
        beat = registry.HeartbeatRequest(service_id=service_id, instance_key="echo-1")
        for answer in reg.HeartbeatStream(iter([beat]), metadata=md, timeout=5):
            print(f"    heartbeat -> expires_at={answer.expires_at}")
    print("\ndone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
