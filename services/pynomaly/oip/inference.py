"""The Open Inference Protocol v2, transport-neutral: an infer request decoded into a float matrix and options,
the data plane's answer turned into output tensors, and the metadata documents. No gRPC or HTTP here.

Both bindings use it, gRPC (`inference.GRPCInferenceService`, pynomaly.server.oip) and HTTP/JSON (the REST routes,
pynomaly.web.oip): each decodes its wire format into `InputTensor`s, calls `Inference`, and encodes what it gets.

How the protocol maps onto the model registry:
- model name = the model's name; model version "" = its latest version, digits = that version number, anything
  else = an alias ("production"): the references `name`, `name@3` and `name:production`.
- input: one tensor, "rows", FP32 or FP64, shape [N, F], passed to the data plane in its own precision (as Detect's
  float32 and float64 matrices are), so both datatypes score exactly as Detect does; values must be finite and
  within float32's range, as everywhere.
- outputs: "anomaly_score" [N] in the input's datatype and "is_anomaly" BOOL [N] (score > threshold).
- the request parameter "threshold" (a number) overrides the model's threshold; other parameters are ignored, as
  the protocol lets servers define their own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pynomaly import __version__
from pynomaly.dataplane import DataPlane
from pynomaly.errors import InvalidArgument, describe_value
from pynomaly.refs import MAX_VERSION_DIGITS, check_name, is_digits
from pynomaly.rows import check_rows

INPUT = "rows"
SCORE, FLAG = "anomaly_score", "is_anomaly"
OUTPUTS = (SCORE, FLAG)
PLATFORM = "onnx_onnxv1"  # the protocol's name for an ONNX graph run by onnxruntime
FLOAT_TYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
# Every datatype the protocol defines: a name outside this set is a typo, not merely unsupported.
DATATYPES = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
                       "BF16", "FP32", "FP64", "BYTES"})


@dataclass(frozen=True)
class InputTensor:
    """An input tensor as a binding read it: the header, and the values either as `values` (typed contents or
    JSON data: an array, a flat sequence or nested lists) or as `raw` little-endian bytes. `where` names the field
    that holds the values, for messages ("inputs[0].data", "raw_input_contents[0]")."""

    name: str
    datatype: str
    shape: Sequence[int]
    values: Any = None
    raw: bytes | None = None
    where: str = "the values"


@dataclass(frozen=True)
class InferRequest:
    model: str  # a model reference: name, name@3 or name:alias
    rows: np.ndarray  # float32 or float64 [N, F], as sent; finite
    datatype: str  # the input's, "FP32" or "FP64": the scores are returned in it
    outputs: tuple[str, ...]
    threshold: float | None
    id: str = ""


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    data: np.ndarray  # one element per row

    @property
    def shape(self) -> list[int]:
        return list(self.data.shape)

    def to_bytes(self) -> bytes:
        """Row-major, little-endian, no padding; BOOL one byte per element."""
        return np.ascontiguousarray(self.data, dtype=self.data.dtype.newbyteorder("<")).tobytes()


@dataclass(frozen=True)
class InferResponse:
    model_name: str
    model_version: str
    id: str
    threshold: float  # the one the flags were computed with
    outputs: list[OutputTensor]


def model_ref(name: str, version: str, fields: tuple[str, str] = ("model_name", "model_version")) -> str:
    """The registry reference of a protocol (name, version): "" = latest, digits = a version, else an alias."""
    check_name(name, fields[0])
    if not version:
        return name
    if is_digits(version):
        if len(version) > MAX_VERSION_DIGITS:
            raise InvalidArgument(f"{fields[1]}: version numbers have at most {MAX_VERSION_DIGITS} digits, got "
                                  f"{len(version)}")
        if int(version) < 1:
            raise InvalidArgument(f"{fields[1]}: version numbers start at 1, got {version!r}")
        return f"{name}@{int(version)}"
    check_name(version, fields[1])  # an alias, by the rules aliases are set with
    return f"{name}:{version}"


def _from_values(values: Any, dtype: np.dtype, shape: tuple[int, ...], where: str) -> np.ndarray:
    """The values as a [rows, features] array: flat in row-major order, or nested as the shape says."""
    if values is None:
        raise InvalidArgument(f"{INPUT}: no values; set {where}")
    if isinstance(values, np.ndarray):
        arr = values
    else:
        try:
            arr = np.asarray(values)
        except ValueError:
            raise InvalidArgument(f"{INPUT}: {where} is nested unevenly: give a flat list, or rows of equal "
                                  "length") from None
        if arr.size and arr.dtype.kind not in "fiu":
            raise InvalidArgument(f"{INPUT}: {where} must hold numbers only")
    n = shape[0] * shape[1]
    if arr.ndim > 1 and arr.shape != shape:
        raise InvalidArgument(f"{INPUT}: {where} is nested as {list(arr.shape)}, but the shape is {list(shape)}")
    if arr.size != n:
        raise InvalidArgument(f"{INPUT}: {where} holds {arr.size} values; shape {list(shape)} takes {n}")
    return arr.astype(dtype, copy=False).reshape(shape)


def decode_rows(t: InputTensor, index: int = 0) -> np.ndarray:
    """The input's rows as a finite float32 or float64 matrix (the tensor's datatype); InvalidArgument naming the
    tensor and field otherwise."""
    if t.name != INPUT:
        raise InvalidArgument(f"inputs[{index}].name: unknown input {t.name!r}; the model's input is "
                              f"'{INPUT}' (FP32 or FP64, shape [rows, features])")
    dtype = FLOAT_TYPES.get(t.datatype)
    if dtype is None:
        what = "is not supported" if t.datatype in DATATYPES else "is not a datatype of the protocol"
        raise InvalidArgument(f"{INPUT}: datatype {t.datatype!r} {what}; send FP32 or FP64")
    shape = tuple(int(d) for d in t.shape)
    if len(shape) != 2:
        raise InvalidArgument(f"{INPUT}: shape {list(shape)} has {len(shape)} dimension(s); expected 2, "
                              "[rows, features]")
    if min(shape) < 0:
        raise InvalidArgument(f"{INPUT}: shape {list(shape)} has a negative dimension")
    if t.raw is not None:
        if t.values is not None:
            raise InvalidArgument(f"{INPUT}: values given both as contents and as raw bytes; send one")
        need = shape[0] * shape[1] * dtype.itemsize
        if len(t.raw) != need:
            raise InvalidArgument(f"{INPUT}: {t.where} holds {len(t.raw)} bytes; shape {list(shape)} of "
                                  f"{t.datatype} takes {need}")
        X = np.frombuffer(t.raw, dtype).reshape(shape)
    else:
        X = _from_values(t.values, dtype, shape, t.where)
    return check_rows(X, INPUT)


def requested_outputs(names: Sequence[str]) -> tuple[str, ...]:
    if not names:
        return OUTPUTS
    for i, name in enumerate(names):
        if name not in OUTPUTS:
            raise InvalidArgument(f"outputs[{i}].name: unknown output {name!r}; the model's outputs are "
                                  f"'{SCORE}' and '{FLAG}'")
        if name in names[:i]:
            raise InvalidArgument(f"outputs[{i}].name: output {name!r} is requested twice")
    return tuple(names)


def threshold_parameter(value: Any) -> float | None:
    """The "threshold" parameter: a number, or None when the request has none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"parameters.threshold: must be a number, got {describe_value(value)}")
    return float(value)


def infer_request(model_name: str, model_version: str, inputs: Sequence[InputTensor], outputs: Sequence[str],
                  threshold: Any = None, request_id: str = "") -> InferRequest:
    model = model_ref(model_name, model_version)
    if len(inputs) != 1:
        raise InvalidArgument(f"inputs: the model takes one input tensor, '{INPUT}'; got {len(inputs)}")
    rows = decode_rows(inputs[0])
    return InferRequest(model, rows, inputs[0].datatype, requested_outputs(list(outputs)),
                        threshold_parameter(threshold), request_id)


def _tensor(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape}


class Inference:
    """The protocol's operations over the data plane; what both bindings call."""

    def __init__(self, dataplane: DataPlane):
        self.dp = dataplane
        self.draining = False  # set when the server begins to stop: ServerReady answers false from then on
        self.store_readable = True  # kept by the server's store check (pynomaly.server.readiness)

    def server_live(self) -> bool:
        return True  # answering at all is being live

    def server_ready(self) -> bool:
        return not self.draining and self.store_readable and self.dp.jobs.healthy()

    def server_metadata(self, extensions: Sequence[str] = ()) -> dict[str, Any]:
        return {"name": "pynomaly", "version": __version__, "extensions": list(extensions)}

    def model_ready(self, name: str, version: str, fields: tuple[str, str] = ("name", "version")) -> bool:
        """True for any registered version (versions are complete once visible); NotFound otherwise."""
        self.dp.get_model_version(model_ref(name, version, fields))
        return True

    def model_metadata(self, name: str, version: str,
                       fields: tuple[str, str] = ("name", "version")) -> dict[str, Any]:
        """The protocol's model metadata, from the model card of the version the (name, version) resolves to."""
        card = self.dp.get_model_version(model_ref(name, version, fields))
        versions = sorted(c["version"] for c in self.dp.list_model_versions(card["name"]))
        return {
            "name": card["name"],
            "versions": [str(v) for v in versions],
            "platform": PLATFORM,
            "inputs": [_tensor(INPUT, "FP32", [-1, len(card["feature_names"])])],
            "outputs": [_tensor(SCORE, "FP32", [-1]), _tensor(FLAG, "BOOL", [-1])],
            "properties": {
                "version": str(card["version"]),
                "algorithm": card["algorithm"],
                "threshold": repr(float(card["threshold"])),
                "feature_names": json.dumps(card["feature_names"]),
                "aliases": json.dumps(card["aliases"]),
                "input_datatypes": "FP32,FP64",
            },
        }

    async def infer(self, request: InferRequest) -> InferResponse:
        result = await self.dp.detect(request.model, request.rows, request.threshold)
        scores = np.asarray(result.scores, dtype=FLOAT_TYPES[request.datatype])
        tensors = {SCORE: OutputTensor(SCORE, request.datatype, scores),
                   FLAG: OutputTensor(FLAG, "BOOL", np.asarray(result.is_anomaly, dtype=np.bool_))}
        return InferResponse(result.model_name, str(result.model_version), request.id, result.threshold,
                             [tensors[name] for name in request.outputs])
