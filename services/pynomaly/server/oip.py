"""The Open Inference Protocol's gRPC binding, `inference.GRPCInferenceService`: converters between its messages
and pynomaly.oip.inference, and the servicer (each RPC converts, calls `Inference`, converts back)."""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import json_format

from pynomaly.errors import InvalidArgument
from pynomaly.oip.inference import FLOAT_TYPES, Inference, InferRequest, InferResponse, InputTensor, infer_request
from pynomaly.oip.v2 import grpc_service_pb2 as pb
from pynomaly.oip.v2 import grpc_service_pb2_grpc
from pynomaly.server.status import grpc_errors

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
EXTENSIONS = ("parameters",)  # the request parameter "threshold"
# The contents field of each datatype served, and the field the outputs use for each datatype returned.
CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "BOOL": "bool_contents"}


def parameter_value(p: pb.InferParameter) -> Any:
    """The Python value of whichever field of the oneof is set (None when none is)."""
    field = p.WhichOneof("parameter_choice")
    return getattr(p, field) if field else None


def _input(t: pb.ModelInferRequest.InferInputTensor, i: int, raw: list[bytes]) -> InputTensor:
    set_fields = [f.name for f, _ in t.contents.ListFields()]
    if raw:
        if set_fields:
            raise InvalidArgument(f"inputs[{i}].contents: the request has raw_input_contents, so no input may set "
                                  f"contents (set: {', '.join(set_fields)})")
        return InputTensor(t.name, t.datatype, t.shape, raw=raw[i], where=f"raw_input_contents[{i}]")
    if t.datatype not in FLOAT_TYPES:
        return InputTensor(t.name, t.datatype, t.shape)  # refused for its datatype by decode_rows
    field = CONTENTS[t.datatype]
    wrong = [f for f in set_fields if f != field]
    if wrong:
        raise InvalidArgument(f"inputs[{i}].contents.{wrong[0]}: a {t.datatype} tensor's values go in "
                              f"contents.{field}")
    values = np.array(getattr(t.contents, field), dtype=FLOAT_TYPES[t.datatype])
    return InputTensor(t.name, t.datatype, t.shape, values=values, where=f"inputs[{i}].contents.{field}")


def request_from_proto(request: pb.ModelInferRequest) -> InferRequest:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} input(s); give "
                              "one per input, in the order of inputs")
    inputs = [_input(t, i, raw) for i, t in enumerate(request.inputs)]
    threshold = request.parameters["threshold"] if "threshold" in request.parameters else None
    return infer_request(request.model_name, request.model_version, inputs, [o.name for o in request.outputs],
                         parameter_value(threshold) if threshold is not None else None, request.id)


def response_to_proto(r: InferResponse, raw: bool) -> pb.ModelInferResponse:
    """Typed contents, or raw_output_contents when the request sent raw inputs (as Triton answers)."""
    response = pb.ModelInferResponse(model_name=r.model_name, model_version=r.model_version, id=r.id)
    response.parameters["threshold"].double_param = r.threshold
    for t in r.outputs:
        out = response.outputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
        if raw:
            response.raw_output_contents.append(t.to_bytes())
        else:
            getattr(out.contents, CONTENTS[t.datatype]).extend(t.data.tolist())
    return response


class InferenceServicer(grpc_service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, inference: Inference):
        self.oip = inference

    @grpc_errors
    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.oip.server_live())

    @grpc_errors
    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.oip.server_ready())

    @grpc_errors
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self.oip.model_ready(request.name, request.version))

    @grpc_errors
    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Any) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**self.oip.server_metadata(EXTENSIONS))

    @grpc_errors
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        metadata = self.oip.model_metadata(request.name, request.version)
        return json_format.ParseDict(metadata, pb.ModelMetadataResponse())

    @grpc_errors
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        result = await self.oip.infer(request_from_proto(request))
        return response_to_proto(result, raw=bool(request.raw_input_contents))


__all__ = ["SERVICE_NAME", "InferenceServicer", "request_from_proto", "response_to_proto"]
