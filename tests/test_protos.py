"""The committed generated code matches the .proto files and the wire contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from protos.registry.v1 import registry_pb2
from protos.user.v1 import user_pb2

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_not_stale() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_packages_and_services_carry_the_wire_names() -> None:
    assert user_pb2.DESCRIPTOR.package == "xiaozhizhang.user.v1"
    assert registry_pb2.DESCRIPTOR.package == "xiaozhizhang.registry.v1"
    auth = user_pb2.DESCRIPTOR.services_by_name["ClientAuthService"]
    assert [m.name for m in auth.methods] == ["AuthenticateClient", "RenewToken"]
    registry = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]
    assert [m.name for m in registry.methods] == [
        "RegisterInstance",
        "DeregisterInstance",
        "HeartbeatStream",
        "ListServices",
        "GetServiceByID",
        "EnsureService",
    ]
    heartbeat = registry.methods_by_name["HeartbeatStream"]
    assert heartbeat.client_streaming
    assert heartbeat.server_streaming


def test_instance_field_numbers_follow_the_current_revision() -> None:
    fields = {f.name: (f.number, f.type) for f in registry_pb2.Instance.DESCRIPTOR.fields}
    string, int64 = 9, 3  # FieldDescriptor.TYPE_STRING, TYPE_INT64
    assert fields["endpoints_json"] == (11, string)
    assert fields["updated_at"] == (14, int64)
    assert fields["last_heartbeat_at"] == (9, int64)


def test_register_request_reserves_8_to_10() -> None:
    file_proto = descriptor_pb2.FileDescriptorProto()
    registry_pb2.DESCRIPTOR.CopyToProto(file_proto)
    (message,) = [m for m in file_proto.message_type if m.name == "RegisterInstanceRequest"]
    assert {f.number for f in message.field} == {1, 2, 3, 4, 5, 6, 7, 11, 12, 13}
    reserved = {n for r in message.reserved_range for n in range(r.start, r.end)}
    assert reserved == {8, 9, 10}
