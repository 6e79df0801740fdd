"""Converters between protobuf messages and the dataplane's numpy arrays and dicts."""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from pynomaly import algorithms
from pynomaly.errors import InvalidArgument
from pynomaly.v1 import common_pb2, model_pb2, train_pb2

_F32 = np.dtype("<f4")


def matrix_to_array(m: common_pb2.Matrix, field: str) -> np.ndarray:
    """Decode a Matrix into a float32 (rows, columns) array without per-element Python work."""
    if m.rows < 0 or m.columns < 0:
        raise InvalidArgument(f"{field}: rows and columns must be ≥ 0, got {m.rows} × {m.columns}")
    n = m.rows * m.columns
    if m.raw_values:
        if len(m.values):
            raise InvalidArgument(f"{field}: set either values or raw_values, not both")
        if len(m.raw_values) != n * 4:
            raise InvalidArgument(
                f"{field}.raw_values: {len(m.raw_values)} bytes, expected rows × columns × 4 = {n * 4}"
            )
        flat = np.frombuffer(m.raw_values, dtype=_F32)
    else:
        if len(m.values) != n:
            raise InvalidArgument(f"{field}.values: {len(m.values)} values, expected rows × columns = {n}")
        flat = np.array(m.values, dtype=np.float32)
    return flat.reshape(m.rows, m.columns)


def array_to_matrix(X: np.ndarray) -> common_pb2.Matrix:
    X = np.ascontiguousarray(X, dtype=_F32)
    return common_pb2.Matrix(rows=X.shape[0], columns=X.shape[1], raw_values=X.tobytes())


def values_to_dict(values: Any) -> dict[str, Any]:
    return {k: json_format.MessageToDict(v) for k, v in values.items()}


def to_value(v: Any) -> struct_pb2.Value:
    return json_format.ParseDict(v, struct_pb2.Value())


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp | None:
    if not seconds:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def job_to_proto(job: dict[str, Any]) -> train_pb2.TrainingJob:
    return train_pb2.TrainingJob(
        id=job["id"],
        model_name=job["model_name"],
        algorithm=job["algorithm"],
        params={k: to_value(v) for k, v in job["params"].items()},
        state=f"TRAINING_JOB_STATE_{job['state']}",
        stage=f"TRAINING_STAGE_{job['stage'].upper()}" if job["stage"] else "TRAINING_STAGE_UNSPECIFIED",
        message=job["message"],
        model_version=job["model_version"],
        rows=job["rows"],
        columns=job["columns"],
        create_time=_timestamp(job["create_time"]),
        start_time=_timestamp(job["start_time"]),
        end_time=_timestamp(job["end_time"]),
    )


def card_to_proto(card: dict[str, Any]) -> model_pb2.ModelVersion:
    return model_pb2.ModelVersion(
        name=card["name"],
        version=card["version"],
        aliases=card["aliases"],
        algorithm=card["algorithm"],
        params={k: to_value(v) for k, v in card["params"].items()},
        feature_names=card["feature_names"],
        threshold=card["threshold"],
        contamination=card["contamination"],
        training_scores=model_pb2.ScoreSummary(**card["training_scores"]),
        export_check=model_pb2.ExportCheck(**card["export_check"]),
        create_time=_timestamp(card["create_time"]),
        data_sha256=card["data_sha256"],
        training_rows=card["training_rows"],
        job_id=card["job_id"],
        description=card["description"],
        onnx_size_bytes=card["onnx_size_bytes"],
    )


def algorithm_to_proto(a: algorithms.Algorithm) -> train_pb2.Algorithm:
    return train_pb2.Algorithm(
        name=a.name,
        implementation=a.implementation,
        description=a.description,
        parameters=[
            train_pb2.Parameter(name=p.name, type=p.type, default_value=to_value(p.default),
                                description=p.description)
            for p in a.params
        ],
        exportable=a.exportable,
        export_note=a.export_note,
        exact_explanation=a.exact_explanation,
    )
