"""A bare OIP v2 gRPC echo server: the ceiling of `make bench-peers`.

It answers ModelInfer with a response shaped like Pynomaly's (outputs "anomaly_score" FP32 [N] and "is_anomaly"
BOOL [N], raw contents when the request's are raw, the model's name and version, a threshold parameter), all zeros,
computing nothing: what the same client on the same machine costs with no model, no validation, no store, on
grpc.aio in one Python process as Pynomaly serves. MLServer's figure divided by this server's is the best ratio any
server on this gRPC stack could show against MLServer here; the bench prints it beside Pynomaly's.

    python -m benchmarks.oip_echo PORT    (listens on 127.0.0.1:PORT; prints "serving on 127.0.0.1:PORT")
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import grpc

from pynomaly.oip.v2 import grpc_service_pb2 as pb
from pynomaly.oip.v2 import grpc_service_pb2_grpc


class Echo(grpc_service_pb2_grpc.GRPCInferenceServiceServicer):
    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=True)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        n = int(request.inputs[0].shape[0]) if request.inputs and request.inputs[0].shape else 0
        response = pb.ModelInferResponse(model_name=request.model_name, model_version="1", id=request.id)
        response.parameters["threshold"].double_param = 0.0
        response.outputs.add(name="anomaly_score", datatype="FP32", shape=[n])
        response.outputs.add(name="is_anomaly", datatype="BOOL", shape=[n])
        if request.raw_input_contents:
            response.raw_output_contents.extend([bytes(4 * n), bytes(n)])
        else:
            response.outputs[0].contents.fp32_contents.extend([0.0] * n)
            response.outputs[1].contents.bool_contents.extend([False] * n)
        return response


async def serve(port: int) -> None:
    server = grpc.aio.server()
    grpc_service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Echo(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"serving on 127.0.0.1:{bound}", flush=True)
    await stop.wait()
    await server.stop(grace=0)


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python -m benchmarks.oip_echo PORT")
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
