"""Calls Pynomaly's Open Inference Protocol endpoints with tritonclient, as a user of Triton would, and prints one
JSON object. It runs in the tritonclient environment (benchmarks/tritonclient_env.py), not Pynomaly's:

    triton.py grpc|http HOST:PORT ROWS.npy [--version V] [--datatype FP64] [--threshold T] [--outputs NAME ...]
              [--json-tensors]   (HTTP: JSON data instead of the binary tensor data extension)
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from tritonclient.utils import InferenceServerException


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("protocol", choices=["grpc", "http"])
    parser.add_argument("url")
    parser.add_argument("rows", help=".npy file")
    parser.add_argument("--model", default="oip")
    parser.add_argument("--version", default="")
    parser.add_argument("--datatype", default="FP32", choices=["FP32", "FP64"])
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--outputs", nargs="*")
    parser.add_argument("--json-tensors", action="store_true")
    args = parser.parse_args()
    grpc = args.protocol == "grpc"
    if grpc:
        import tritonclient.grpc as tc
    else:
        import tritonclient.http as tc
    client = tc.InferenceServerClient(args.url)
    binary = {} if grpc else {"binary_data": not args.json_tensors}
    X = np.load(args.rows).astype(np.float32 if args.datatype == "FP32" else np.float64)
    rows = tc.InferInput("rows", list(X.shape), args.datatype)
    rows.set_data_from_numpy(X, **binary)
    outputs = [tc.InferRequestedOutput(name, **binary) for name in args.outputs] if args.outputs else None
    parameters = {"threshold": args.threshold} if args.threshold is not None else None
    metadata = (lambda m: m) if not grpc else (lambda m: json.loads(json.dumps(m)))
    report = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(args.model, args.version),
        "server_metadata": metadata(client.get_server_metadata(**({"as_json": True} if grpc else {}))),
        "model_metadata": metadata(client.get_model_metadata(args.model, args.version,
                                                             **({"as_json": True} if grpc else {}))),
    }
    result = client.infer(args.model, [rows], model_version=args.version, outputs=outputs, request_id="t-1",
                          parameters=parameters)
    response = result.get_response(as_json=True) if grpc else result.get_response()
    report["response"] = {k: response.get(k) for k in ("model_name", "model_version", "id")}
    report["outputs"] = {o["name"]: {"datatype": o["datatype"], "shape": [int(d) for d in o["shape"]],
                                     "data": result.as_numpy(o["name"]).tolist()} for o in response["outputs"]}
    errors = {}
    for case, call in (("unknown model", lambda: client.infer("nosuch", [rows])),
                       ("unknown version", lambda: client.get_model_metadata(args.model, "99")),
                       ("bad datatype", lambda: client.infer(args.model, [_int_rows(tc, X, binary)]))):
        try:
            call()
            errors[case] = None
        except InferenceServerException as e:
            errors[case] = {"status": e.status(), "message": e.message()}
    report["errors"] = errors
    print(json.dumps(report))


def _int_rows(tc, X, binary):
    rows = tc.InferInput("rows", list(X.shape), "INT32")
    rows.set_data_from_numpy(X.astype(np.int32), **binary)
    return rows


if __name__ == "__main__":
    main()
