"""Server reflection under both names clients ask for, grpc.reflection.v1 and v1alpha, with the proto comments.

grpcio-reflection implements v1alpha only; v1 is the same protocol, message for message and field for field, in
another package, so one servicer answers both (grpcurl and buf curl ask for v1 first, older clients for v1alpha).
grpcio-reflection also serves each file as a descriptor pool holds it, and a pool keeps no comments (Python's
generated stubs carry none, and CopyToProto drops source info). Our files are served instead as `make proto` wrote
them into pynomaly/v1/descriptors.binpb, with `--include_source_info`, so `grpcurl describe` shows the documentation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA = reflection.SERVICE_NAME
V1 = "grpc.reflection.v1.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"


def documented_files() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Our .proto files with their comments, by file name."""
    data = resources.files("pynomaly.v1").joinpath("descriptors.binpb").read_bytes()
    return {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(data).file}


def v1_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto: v1alpha's file under v1's name and package (the messages are the same)."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = f".{proto.package}.", ".grpc.reflection.v1."
    proto.name, proto.package = V1_FILE, "grpc.reflection.v1"
    proto.ClearField("options")
    for message in proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = field.type_name.replace(old, new)
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(old, new)
        method.output_type = method.output_type.replace(old, new)
    return proto


class ReflectionServicer(reflection.aio.ReflectionServicer):
    """grpcio-reflection's, over a pool of its own, answering every file as `files` holds it."""

    def __init__(self, service_names: Iterable[str], files: dict[str, bytes], pool: descriptor_pool.DescriptorPool):
        super().__init__(service_names, pool=pool)
        self._files = files

    async def ServerReflectionInfo(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        async for response in super().ServerReflectionInfo(request_iterator, context):
            protos = response.file_descriptor_response.file_descriptor_proto
            for i, raw in enumerate(protos):
                protos[i] = self._files.get(descriptor_pb2.FileDescriptorProto.FromString(raw).name, raw)
            yield response


def servicer(service_names: Iterable[str]) -> ReflectionServicer:
    """The servicer for `service_names` (both reflection services are added): a pool holding the files that define
    them and their imports, each file kept serialized, ours with comments."""
    documented = documented_files()
    files: dict[str, bytes] = {}
    pool = descriptor_pool.DescriptorPool()

    def add(proto: descriptor_pb2.FileDescriptorProto) -> None:
        pool.Add(proto)
        files[proto.name] = documented.get(proto.name, proto).SerializeToString()

    def add_file(file: FileDescriptor) -> None:
        if file.name not in files:
            for dependency in file.dependencies:
                add_file(dependency)
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            add(proto)

    names = (*service_names, V1ALPHA)
    for name in names:
        add_file(descriptor_pool.Default().FindFileContainingSymbol(name))
    add(v1_file())
    return ReflectionServicer((*names, V1), files, pool)


def enable(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection for `service_names` on `server`, as grpc.reflection.v1 and v1alpha."""
    reflecting = servicer(service_names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflecting, server)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            reflecting.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        ),
    }),))
