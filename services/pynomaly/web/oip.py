"""The Open Inference Protocol's REST binding (the KServe v2 HTTP/JSON API): routes that read JSON, and the binary
tensor data extension, into pynomaly.oip.inference's requests and write its answers back.

    GET  /v2                                            server metadata
    GET  /v2/health/live | /v2/health/ready             {"live": true} | {"ready": true} (503 when not ready)
    GET  /v2/models/{name}[/versions/{version}]         model metadata
    GET  /v2/models/{name}[/versions/{version}]/ready   {"name": ..., "ready": true} (404: no such model)
    POST /v2/models/{name}[/versions/{version}]/infer   inference

{version}: a version number or an alias; without it, the latest version (pynomaly.oip.inference).

The binary tensor data extension (Triton's; tritonclient uses it by default): the body is the JSON request followed
by raw tensors, and the Inference-Header-Content-Length header gives the JSON's length. An input whose parameters
have "binary_data_size" takes that many bytes from there (little-endian, row-major). Outputs are returned the same
way when asked for with the output parameter "binary_data": true, or the request parameter
"binary_data_output": true for every output not saying otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pynomaly.errors import InvalidArgument, PayloadTooLarge
from pynomaly.oip.inference import Inference, InferRequest, InferResponse, InputTensor, infer_request
from pynomaly.refs import is_digits
from pynomaly.web.status import UnsupportedMediaType, http_errors, json_response

EXTENSIONS = ("binary_tensor_data", "parameters")
HEADER_LENGTH = "Inference-Header-Content-Length"
MEDIA_TYPES = ("application/json", "application/octet-stream")
DRAIN = 4  # read (and drop) up to this many times the limit of a body too large, so that the client gets the 413


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: must be a JSON object")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}: required, a string")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{where}: must be true or false")
    return value


def _shape(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        raise InvalidArgument(f"{where}: required, a list of integers")
    return value


def _inputs(document: dict[str, Any], binary: bytes) -> list[InputTensor]:
    inputs = document.get("inputs")
    if not isinstance(inputs, list):
        raise InvalidArgument("inputs: required, a list of input tensors")
    tensors, offset = [], 0
    for i, t in enumerate(inputs):
        t = _object(t, f"inputs[{i}]")
        header = (_string(t.get("name"), f"inputs[{i}].name"), _string(t.get("datatype"), f"inputs[{i}].datatype"),
                  _shape(t.get("shape"), f"inputs[{i}].shape"))
        size = _object(t.get("parameters", {}), f"inputs[{i}].parameters").get("binary_data_size")
        if size is None:
            if "data" not in t:
                raise InvalidArgument(f"inputs[{i}].data: required (or parameters.binary_data_size, with the binary "
                                      "tensor data extension)")
            tensors.append(InputTensor(*header, values=t["data"], where=f"inputs[{i}].data"))
            continue
        if "data" in t:
            raise InvalidArgument(f"inputs[{i}]: has both data and parameters.binary_data_size; send one")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= len(binary) - offset:
            raise InvalidArgument(f"inputs[{i}].parameters.binary_data_size: {size!r} is not a size within the "
                                  f"{len(binary) - offset} bytes of binary data left")
        raw = binary[offset : offset + size]
        tensors.append(InputTensor(*header, raw=raw, where=f"the binary data of inputs[{i}]"))
        offset += size
    if offset != len(binary):
        raise InvalidArgument(f"binary data: {len(binary)} bytes follow the JSON, but the inputs' binary_data_size "
                              f"add up to {offset}")
    return tensors


def request_from_json(name: str, version: str, document: Any, binary: bytes) -> tuple[InferRequest, dict[str, bool]]:
    """The inference request, and for each output whether it is returned as binary data."""
    document = _object(document, "request body")
    parameters = _object(document.get("parameters", {}), "parameters")
    every = _flag(parameters.get("binary_data_output", False), "parameters.binary_data_output")
    outputs, binary_outputs = [], {}
    requested = document.get("outputs", [])
    if not isinstance(requested, list):
        raise InvalidArgument("outputs: must be a list of requested outputs")
    for i, o in enumerate(requested):
        o = _object(o, f"outputs[{i}]")
        outputs.append(_string(o.get("name"), f"outputs[{i}].name"))
        flag = _object(o.get("parameters", {}), f"outputs[{i}].parameters").get("binary_data", every)
        binary_outputs[outputs[-1]] = _flag(flag, f"outputs[{i}].parameters.binary_data")
    request = infer_request(name, version, _inputs(document, binary), outputs, parameters.get("threshold"),
                            _string(document.get("id", ""), "id"))
    return request, {o: binary_outputs.get(o, every) for o in request.outputs}


def response_to_json(r: InferResponse, binary: dict[str, bool]) -> Response:
    outputs, blobs = [], []
    for t in r.outputs:
        out: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": t.shape}
        if binary[t.name]:
            blobs.append(t.to_bytes())
            out["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            out["data"] = t.data.tolist()
        outputs.append(out)
    document: dict[str, Any] = {"model_name": r.model_name, "model_version": r.model_version}
    if r.id:
        document["id"] = r.id
    document.update(parameters={"threshold": r.threshold}, outputs=outputs)
    header = json.dumps(document, separators=(",", ":")).encode()
    if not blobs:
        return Response(header, media_type="application/json")
    return Response(header + b"".join(blobs), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(header))})


async def read_body(request: Request, limit: int) -> tuple[Any, bytes]:
    """The JSON document and the binary data after it, from a body of at most `limit` bytes."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type not in MEDIA_TYPES:
        raise UnsupportedMediaType(f"Content-Type {media_type!r} is not read here; send application/json (or "
                                   "application/octet-stream with the binary tensor data extension)")
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding != "identity":
        raise UnsupportedMediaType(f"Content-Encoding {coding!r} is not supported; send the body uncompressed")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DRAIN * limit:
            break
    if size > limit:
        raise PayloadTooLarge(f"request body: more than the server's limit of {limit:,} bytes (--max-message-mb)")
    body = b"".join(chunks)
    split = request.headers.get(HEADER_LENGTH)
    if split is not None and not (is_digits(split) and len(split) <= len(str(len(body))) and int(split) <= len(body)):
        raise InvalidArgument(f"{HEADER_LENGTH}: {split!r} is not a length within the body's {len(body)} bytes")
    n = int(split) if split is not None else len(body)
    try:
        document = json.loads(body[:n])
    except ValueError as e:  # json.JSONDecodeError and UnicodeDecodeError both are
        raise InvalidArgument(f"request body: not valid JSON ({e})") from None
    return document, body[n:]


class OipRoutes:
    """The routes over one `Inference`, reading request bodies of at most `max_body_bytes`."""

    def __init__(self, inference: Inference, max_body_bytes: int):
        self.oip = inference
        self.max_body_bytes = max_body_bytes

    def routes(self) -> list[Route]:
        model, version = "/v2/models/{name}", "/v2/models/{name}/versions/{version}"
        return [
            Route("/v2", self.server_metadata, methods=["GET"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            *(Route(p, self.model_metadata, methods=["GET"]) for p in (model, version)),
            *(Route(f"{p}/ready", self.model_ready, methods=["GET"]) for p in (model, version)),
            *(Route(f"{p}/infer", self.infer, methods=["POST"]) for p in (model, version)),
        ]

    @http_errors
    async def server_metadata(self, request: Request) -> Response:
        return json_response(self.oip.server_metadata(EXTENSIONS))

    @http_errors
    async def live(self, request: Request) -> Response:
        return json_response({"live": self.oip.server_live()})

    @http_errors
    async def ready(self, request: Request) -> Response:
        ready = self.oip.server_ready()
        return json_response({"ready": ready}, 200 if ready else 503)

    @http_errors
    async def model_metadata(self, request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params.get("version", "")
        return json_response(self.oip.model_metadata(name, version, ("model_name", "model_version")))

    @http_errors
    async def model_ready(self, request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params.get("version", "")
        ready = self.oip.model_ready(name, version, ("model_name", "model_version"))
        return json_response({"name": name, "ready": ready})

    @http_errors
    async def infer(self, request: Request) -> Response:
        document, binary = await read_body(request, self.max_body_bytes)
        name, version = request.path_params["name"], request.path_params.get("version", "")
        call, binary_outputs = request_from_json(name, version, document, binary)
        return response_to_json(await self.oip.infer(call), binary_outputs)
