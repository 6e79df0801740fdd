"""Server reflection, as grpc.reflection.v1 and v1alpha: every service described, with the proto comments.

Clients: grpcio-reflection's own v1alpha client (ProtoReflectionDescriptorDatabase under a DescriptorPool, as
grpcurl-like tools resolve services), and the same client pointed at grpc.reflection.v1's method path (its messages
are v1alpha's, field for field). Both engines share this front (server/app.py serve_dataplane).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
V1ALPHA = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
SERVICES = {"pynomaly.v1.TrainService", "pynomaly.v1.ModelService", "pynomaly.v1.DetectService",
            "pynomaly.v1.ExplainService", "inference.GRPCInferenceService", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
DETECT_DOC = " Scores rows: one anomaly score (higher = more anomalous) and one flag per row.\n"


class Stub:
    """ServerReflectionStub's one method, on the method path given."""

    def __init__(self, channel: grpc.Channel, path: str):
        self.ServerReflectionInfo = channel.stream_stream(  # noqa: N815 (the stub's method name)
            path, request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)


def database(channel: grpc.Channel, path: str) -> ProtoReflectionDescriptorDatabase:
    db = ProtoReflectionDescriptorDatabase(channel)
    db._stub = Stub(channel, path)  # the v1alpha client, asking on `path`
    return db


def ask(channel: grpc.Channel, path: str, **request: str) -> reflection_pb2.ServerReflectionResponse:
    responses: Iterator[reflection_pb2.ServerReflectionResponse] = Stub(channel, path).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10)
    return next(responses)


def comment(file: FileDescriptorProto, path: list[int]) -> str:
    """The leading comment at a source-info path, e.g. [6, 0, 2, 0]: service 0, method 0."""
    return next(loc.leading_comments for loc in file.source_code_info.location if list(loc.path) == path)


@pytest.mark.parametrize("path", [V1, V1ALPHA], ids=["v1", "v1alpha"])
def test_reflection_lists_and_describes_every_service(server, path):
    db = database(server.channel, path)
    assert set(db.get_services()) == SERVICES
    pool = DescriptorPool(db)
    for name in SERVICES:
        assert pool.FindServiceByName(name).methods
    v1 = pool.FindServiceByName("grpc.reflection.v1.ServerReflection").methods_by_name["ServerReflectionInfo"]
    assert (v1.input_type.full_name, v1.output_type.full_name) == (
        "grpc.reflection.v1.ServerReflectionRequest", "grpc.reflection.v1.ServerReflectionResponse")
    assert [f.name for f in v1.input_type.fields] == [
        f.name for f in reflection_pb2.ServerReflectionRequest.DESCRIPTOR.fields]
    detect = pool.FindMethodByName("pynomaly.v1.DetectService.Detect")
    assert (detect.input_type.full_name, detect.output_type.full_name) == (
        "pynomaly.v1.DetectRequest", "pynomaly.v1.DetectResponse")


@pytest.mark.parametrize("path", [V1, V1ALPHA], ids=["v1", "v1alpha"])
def test_reflection_serves_the_proto_comments(server, path):
    response = ask(server.channel, path, file_containing_symbol="pynomaly.v1.DetectService")
    files = {f.name: f for f in map(FileDescriptorProto.FromString,
                                    response.file_descriptor_response.file_descriptor_proto)}
    assert {"pynomaly/v1/detect.proto", "pynomaly/v1/common.proto", "google/protobuf/timestamp.proto"} <= set(files)
    detect = files["pynomaly/v1/detect.proto"]
    assert detect.service[0].method[0].name == "Detect"
    assert comment(detect, [6, 0, 2, 0]) == DETECT_DOC  # service 0, method 0
    assert comment(files["pynomaly/v1/common.proto"], [4, 0]).startswith(" A dense matrix of float32 or float64")
    assert detect.options.go_package == "github.com/pynomaly/pynomaly/gen/go/pynomaly/v1;pynomalyv1"
    by_name = ask(server.channel, path, file_by_filename="pynomaly/oip/v2/grpc_service.proto")
    oip = FileDescriptorProto.FromString(by_name.file_descriptor_response.file_descriptor_proto[0])
    assert comment(oip, [6, 0]).startswith(" The inference service")


@pytest.mark.parametrize("path", [V1, V1ALPHA], ids=["v1", "v1alpha"])
@pytest.mark.parametrize("request_", [{"file_containing_symbol": "pynomaly.v1.NoSuchService"},
                                      {"file_by_filename": "pynomaly/v1/nothing.proto"}], ids=["symbol", "file"])
def test_reflection_unknown_names_are_not_found(server, path, request_):
    response = ask(server.channel, path, **request_)
    assert response.WhichOneof("message_response") == "error_response"
    assert response.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert response.original_request == reflection_pb2.ServerReflectionRequest(**request_)
    assert server.alive()
