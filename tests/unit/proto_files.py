"""The .proto files of proto/, compiled by grpc_tools' protoc into descriptors, for tests of the contract itself."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
PROTOS = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))


def compile_protos(out: Path) -> list[descriptor_pb2.FileDescriptorProto]:
    """Every file under proto/ as protoc reads it (options included), in PROTOS order."""
    target = out / "protos.binpb"
    well_known = resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto, as `python -m grpc_tools.protoc`
    assert protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--descriptor_set_out={target}", *PROTOS]) == 0
    files = {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(target.read_bytes()).file}
    return [files[name] for name in PROTOS]
