"""Coverage-guided fuzzing (atheris, libFuzzer) of what a request goes through before any model or file is
touched: protobuf decoding, our request→arguments conversion (server/convert.py) and the checks the data plane
runs first (names, aliases, model references, algorithm hyperparameters, rows).

Half the inputs are raw bytes decoded as a request message; the other half are built field by field from the
fuzzer's bytes (names and references in any Unicode, hyperparameters of every JSON type including NaN and ±inf,
rows of any float), which reaches our checks far more often than random protobuf does. Every input must either
be refused with a domain error (pynomaly.errors: a gRPC status with a message) or a protobuf DecodeError
(INVALID_ARGUMENT at the server), or pass; any other exception is a crash that libFuzzer reports with its input.

    python tests/fuzz/fuzz_requests.py -max_total_time=60    # `make fuzz`; tests/unit/test_fuzz.py runs it briefly
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import atheris
import numpy as np
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError, Message

# Coverage feedback from our own modules only: instrumenting sklearn, torch and pyod would cost minutes at start.
with atheris.instrument_imports(include=["pynomaly"]):
    from pynomaly import algorithms
    from pynomaly.errors import PynomalyError
    from pynomaly.refs import check_alias, check_name, parse_ref
    from pynomaly.rows import check_rows
    from pynomaly.server import convert
    from pynomaly.v1 import common_pb2, detect_pb2, explain_pb2, model_pb2, train_pb2

ALGORITHMS = sorted(algorithms.ALGORITHMS)
SPECIAL = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1e308, -1e308, 5e-324, 3.5e38, -3.5e38]


def train(request: train_pb2.CreateTrainingJobRequest) -> None:
    args = convert.training_job_args(request)
    check_name(args["model_name"])
    algorithms.get(args["algorithm"]).resolve_params(args["params"])
    if args["matrix"] is not None:
        check_rows(args["matrix"], "matrix")


def detect(request: detect_pb2.DetectRequest) -> None:
    model, X, _ = convert.detect_args(request)
    parse_ref(model)
    check_rows(X, "rows")


def explain(request: explain_pb2.ExplainRequest) -> None:
    args = convert.explain_args(request)
    parse_ref(args.model)
    check_rows(np.asarray(args.rows), "rows")


def alias(request: model_pb2.SetModelAliasRequest) -> None:
    check_name(request.name)
    check_alias(request.alias)


def imported(request: model_pb2.ImportModelRequest) -> None:
    check_name(convert.import_spec(request).name)


def batch(request: detect_pb2.CreateBatchDetectJobRequest) -> None:
    parse_ref(convert.batch_request(request).model)


CHECKS: dict[type[Message], Callable[[Any], None]] = {
    train_pb2.CreateTrainingJobRequest: train,
    detect_pb2.DetectRequest: detect,
    explain_pb2.ExplainRequest: explain,
    model_pb2.SetModelAliasRequest: alias,
    model_pb2.ImportModelRequest: imported,
    detect_pb2.CreateBatchDetectJobRequest: batch,
}
MESSAGES = list(CHECKS)


def text(fdp: atheris.FuzzedDataProvider) -> str:
    """A name or reference: often near a valid one (`name`, `name@3`, `name:alias`), in any Unicode."""
    base = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 80))
    return fdp.PickValueInList([base, f"m{base}", f"m@{base}", f"m:{base}", f"{base}\n", f"m@{base}\n"])


def value(fdp: atheris.FuzzedDataProvider) -> struct_pb2.Value:
    kind = fdp.ConsumeIntInRange(0, 5)
    if kind == 0:
        return struct_pb2.Value(number_value=fdp.PickValueInList(SPECIAL))
    if kind == 1:
        return struct_pb2.Value(number_value=fdp.ConsumeRegularFloat())
    if kind == 2:
        return struct_pb2.Value(string_value=fdp.ConsumeUnicodeNoSurrogates(12))
    if kind == 3:
        return struct_pb2.Value(bool_value=fdp.ConsumeBool())
    if kind == 4:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    return struct_pb2.Value(list_value=struct_pb2.ListValue(values=[struct_pb2.Value(number_value=1)]))


def matrix(fdp: atheris.FuzzedDataProvider) -> common_pb2.Matrix:
    rows, cols = fdp.ConsumeIntInRange(0, 4), fdp.ConsumeIntInRange(0, 4)
    n = fdp.ConsumeIntInRange(0, 20)
    values = [fdp.PickValueInList(SPECIAL) if fdp.ConsumeBool() else fdp.ConsumeRegularFloat() for _ in range(n)]
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        return common_pb2.Matrix(rows=rows, columns=cols, double_values=values)
    if kind == 1:
        return common_pb2.Matrix(rows=rows, columns=cols, raw_values=fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)))
    if kind == 2:
        return common_pb2.Matrix(rows=rows, columns=cols, raw_double_values=fdp.ConsumeBytes(
            fdp.ConsumeIntInRange(0, 80)))
    with np.errstate(over="ignore"):
        return common_pb2.Matrix(rows=rows, columns=cols, values=np.asarray(values, np.float32).tolist())


def built(fdp: atheris.FuzzedDataProvider) -> Message:
    message = fdp.PickValueInList(MESSAGES)
    if message is train_pb2.CreateTrainingJobRequest:
        algorithm = fdp.PickValueInList([*ALGORITHMS, fdp.ConsumeUnicodeNoSurrogates(10)])
        names = [p.name for p in algorithms.get(algorithm).params] if algorithm in ALGORITHMS else []
        params = {fdp.PickValueInList([*names, fdp.ConsumeUnicodeNoSurrogates(8)]): value(fdp)
                  for _ in range(fdp.ConsumeIntInRange(0, 3))}
        return train_pb2.CreateTrainingJobRequest(model_name=text(fdp), algorithm=algorithm, params=params,
                                                  contamination=fdp.PickValueInList(SPECIAL), matrix=matrix(fdp))
    if message is detect_pb2.DetectRequest:
        return detect_pb2.DetectRequest(model=text(fdp), rows=matrix(fdp))
    if message is explain_pb2.ExplainRequest:
        return explain_pb2.ExplainRequest(model=text(fdp), rows=matrix(fdp), top_k=fdp.ConsumeIntInRange(-2, 9))
    if message is model_pb2.SetModelAliasRequest:
        return model_pb2.SetModelAliasRequest(name=text(fdp), alias=text(fdp), version=fdp.ConsumeIntInRange(-1, 9))
    if message is model_pb2.ImportModelRequest:
        return model_pb2.ImportModelRequest(name=text(fdp), reference_rows=matrix(fdp))
    return detect_pb2.CreateBatchDetectJobRequest(model=text(fdp), input_uri=text(fdp), output_uri=text(fdp))


def test_one(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        message = fdp.PickValueInList(MESSAGES)
        try:
            request = message.FromString(fdp.ConsumeBytes(fdp.remaining_bytes()))
        except DecodeError:
            return  # the server answers INVALID_ARGUMENT before any of our code runs
    else:
        request = built(fdp)
    try:
        CHECKS[type(request)](request)
    except PynomalyError:
        pass  # refused with a status and a message


def main() -> None:
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
