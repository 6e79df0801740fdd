"""Converters between protobuf messages and the dataplane's numpy arrays and dicts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from pynomaly import algorithms
from pynomaly.batch import BatchRequest
from pynomaly.dataplane import DetectResult
from pynomaly.errors import InvalidArgument
from pynomaly.explain import Explanation
from pynomaly.imports import ImportSpec
from pynomaly.v1 import common_pb2, detect_pb2, explain_pb2, model_pb2, train_pb2

_F32, _F64 = np.dtype("<f4"), np.dtype("<f8")
# Matrix's value fields: (name, precision, bytes per value for the raw forms, or 0 for the packed ones).
_MATRIX_FIELDS = (("values", _F32, 0), ("raw_values", _F32, 4), ("double_values", _F64, 0),
                  ("raw_double_values", _F64, 8))


def matrix_to_array(m: common_pb2.Matrix, field: str) -> np.ndarray:
    """Decode a Matrix into a (rows, columns) array, float32 or float64 as sent, without per-element Python work."""
    if m.rows < 0 or m.columns < 0:
        raise InvalidArgument(f"{field}: rows and columns must be ≥ 0, got {m.rows} × {m.columns}",
                              reason="MALFORMED_MATRIX")
    n = m.rows * m.columns
    given = [(name, dtype, size) for name, dtype, size in _MATRIX_FIELDS if len(getattr(m, name))]
    if len(given) > 1:
        raise InvalidArgument(f"{field}: set exactly one of values, raw_values, double_values or raw_double_values; "
                              f"got {' and '.join(name for name, _, _ in given)}", reason="MALFORMED_MATRIX")
    name, dtype, size = given[0] if given else _MATRIX_FIELDS[0]
    data = getattr(m, name)
    if size:
        if len(data) != n * size:
            raise InvalidArgument(f"{field}.{name}: {len(data)} bytes, expected rows × columns × {size} = {n * size}",
                                  reason="MALFORMED_MATRIX")
        flat = np.frombuffer(data, dtype=dtype)
    else:
        if len(data) != n:
            raise InvalidArgument(f"{field}.{name}: {len(data)} values, expected rows × columns = {n}",
                                  reason="MALFORMED_MATRIX")
        flat = np.array(data, dtype=dtype)
    try:
        return flat.reshape(m.rows, m.columns)
    except ValueError:  # no values, but numpy cannot even shape 0 × 2**62
        raise InvalidArgument(f"{field}: the matrix is empty ({m.rows} rows × {m.columns} columns)",
                              reason="EMPTY_INPUT") from None


def array_to_matrix(X: np.ndarray) -> common_pb2.Matrix:
    """The raw form in X's precision: float64 as float64, anything else as float32."""
    X = np.ascontiguousarray(X, dtype=_F64 if X.dtype == np.float64 else _F32)
    field = "raw_double_values" if X.dtype == _F64 else "raw_values"
    return common_pb2.Matrix(rows=X.shape[0], columns=X.shape[1], **{field: X.tobytes()})


def values_to_dict(values: Any, field: str = "params") -> dict[str, Any]:
    """Struct-like map of Values to plain Python; a NaN or infinite number is InvalidArgument naming where."""
    for k, v in values.items():
        _check_finite(v, f"{field}.{k}")
    return {k: json_format.MessageToDict(v) for k, v in values.items()}


def _check_finite(v: struct_pb2.Value, where: str) -> None:
    kind = v.WhichOneof("kind")
    if kind is None:  # e.g. a JavaScript client that spelt number_value, which protobuf.js drops without a word
        raise InvalidArgument(f"{where}: the google.protobuf.Value sets no kind; set one of null_value, number_value, "
                              "string_value, bool_value, list_value or struct_value (numberValue … in JSON)",
                              reason="INVALID_PARAMETER")
    if kind == "number_value" and not math.isfinite(v.number_value):
        raise InvalidArgument(f"{where}: must be a finite number, got {v.number_value}", reason="NON_FINITE_VALUE")
    if kind == "list_value":
        for i, item in enumerate(v.list_value.values):
            _check_finite(item, f"{where}[{i}]")
    elif kind == "struct_value":
        for k, item in v.struct_value.fields.items():
            _check_finite(item, f"{where}.{k}")


def to_value(v: Any) -> struct_pb2.Value:
    return json_format.ParseDict(v, struct_pb2.Value())


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp | None:
    if not seconds:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def candidate_to_proto(c: dict[str, Any]) -> common_pb2.Candidate:
    return common_pb2.Candidate(
        algorithm=c["algorithm"],
        params={k: to_value(v) for k, v in c["params"].items()},
        outcome=f"CANDIDATE_OUTCOME_{c['outcome'].upper()}",
        message=c["message"],
        fit_seconds=c["fit_seconds"],
        weight=c["weight"],
        score_mean=c.get("score_mean", 0.0),
        score_scale=c.get("score_scale", 0.0),
        max_correlation=c.get("max_correlation", 0.0),
        export_max_rel_error=c.get("export_max_rel_error", 0.0),
        roc_auc=c.get("roc_auc", 0.0),
        average_precision=c.get("average_precision", 0.0),
        trial=c.get("trial", 0),
    )


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
        description=job.get("description", ""),  # records written before the field existed have none
        candidates=[candidate_to_proto(c) for c in job.get("candidates", [])],
        fit_progress=train_pb2.FitProgress(**job["fit_progress"])
        if job["stage"] == "fit" and job.get("fit_progress") else None,
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
        candidates=[candidate_to_proto(c) for c in card.get("candidates", [])],
        labels=common_pb2.LabelSummary(**card["labels"]) if "labels" in card else None,
        tuning=common_pb2.Tuning(**card["automl"]["tuning"]) if "tuning" in card.get("automl", {}) else None,
        # Versions trained before threshold methods: the contamination quantile, whose share is the contamination.
        threshold_method=card.get("threshold_method", "contamination"),
        flagged_share=card.get("flagged_share", card["contamination"]),
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
        serving=_SERVING[a.serving],
        needs_labels=a.needs_labels,
        max_training_rows=a.max_training_rows,
    )


_SERVING = {"exact": train_pb2.SERVING_EXACT, "frozen": train_pb2.SERVING_FROZEN, "refused": train_pb2.SERVING_REFUSED}


# --- training ---


def training_job_args(request: train_pb2.CreateTrainingJobRequest) -> dict[str, Any]:
    """DataPlane.create_training_job's arguments."""
    return {
        "model_name": request.model_name,
        "algorithm": request.algorithm,
        "params": values_to_dict(request.params),
        "contamination": request.contamination,
        "matrix": matrix_to_array(request.matrix, "matrix") if request.HasField("matrix") else None,
        "data_uri": request.data_uri,
        "feature_names": list(request.feature_names),
        "description": request.description,
        "label_column": request.label_column,
        "labels": np.asarray(request.labels, dtype=np.int64) if len(request.labels) else None,
        "threshold_method": request.threshold_method,
    }


# --- models ---


def import_spec(request: model_pb2.ImportModelRequest) -> ImportSpec:
    return ImportSpec(
        name=request.name,
        onnx_model=request.onnx_model,
        score_output=request.score_output,
        feature_names=list(request.feature_names),
        threshold=request.threshold if request.HasField("threshold") else None,
        contamination=request.contamination,
        lower_is_anomalous=request.lower_is_anomalous,
        reference_rows=(matrix_to_array(request.reference_rows, "reference_rows")
                        if request.HasField("reference_rows") else None),
        description=request.description,
    )


# --- detect ---


def detect_args(request: detect_pb2.DetectRequest) -> tuple[str, np.ndarray, float | None]:
    """(model, rows, threshold override or None)."""
    threshold = request.threshold if request.HasField("threshold") else None
    return request.model, matrix_to_array(request.rows, "rows"), threshold


def detect_response(r: DetectResult) -> detect_pb2.DetectResponse:
    """Scores in the field of their precision (the request's rows'): float32 ones where clients always read them."""
    scores = {"double_anomaly_scores" if r.scores.dtype == np.float64 else "anomaly_scores": r.scores.tolist()}
    return detect_pb2.DetectResponse(
        **scores,
        is_anomaly=r.is_anomaly.tolist(),
        threshold=r.threshold,
        model_name=r.model_name,
        model_version=r.model_version,
    )


# --- batch ---


def batch_request(request: detect_pb2.CreateBatchDetectJobRequest) -> BatchRequest:
    return BatchRequest(
        model=request.model,
        input_uri=request.input_uri,
        output_uri=request.output_uri,
        id_column=request.id_column,
        pass_through=request.pass_through,
        overwrite=request.overwrite,
        threshold=request.threshold if request.HasField("threshold") else None,
    )


def batch_job_to_proto(job: dict[str, Any]) -> detect_pb2.BatchDetectJob:
    return detect_pb2.BatchDetectJob(
        id=job["id"],
        model=job["model"],
        model_name=job["model_name"],
        model_version=job["model_version"],
        input_uri=job["input_uri"],
        output_uri=job["output_uri"],
        state=f"BATCH_DETECT_JOB_STATE_{job['state']}",
        rows_done=job["rows_done"],
        rows_total=job["rows_total"],
        rows_per_second=job["rows_per_second"],
        eta_seconds=job["eta_seconds"],
        message=job["message"],
        create_time=_timestamp(job["create_time"]),
        start_time=_timestamp(job["start_time"]),
        end_time=_timestamp(job["end_time"]),
        threshold=job["threshold"],
        anomalies=job["anomalies"],
        id_column=job["id_column"],
        pass_through=job["pass_through"],
        overwrite=job["overwrite"],
    )


# --- explain ---

METHODS = {
    explain_pb2.EXPLAIN_METHOD_UNSPECIFIED: None,
    explain_pb2.EXPLAIN_METHOD_EXACT: "exact",
    explain_pb2.EXPLAIN_METHOD_TREE_SHAP: "tree_shap",
    explain_pb2.EXPLAIN_METHOD_KERNEL_SHAP: "kernel_shap",
}
_METHOD_ENUMS = {v: k for k, v in METHODS.items() if v}
_KNOWN_METHODS = ", ".join(f"{explain_pb2.ExplainMethod.Name(v)} = {v}" for v in METHODS)
LAYOUTS = (explain_pb2.EXPLAIN_LAYOUT_UNSPECIFIED, explain_pb2.EXPLAIN_LAYOUT_ROWS, explain_pb2.EXPLAIN_LAYOUT_PACKED)


@dataclass(frozen=True)
class ExplainArgs:
    model: str
    rows: np.ndarray
    top_k: int
    method: str | None
    packed: bool


def explain_args(request: explain_pb2.ExplainRequest) -> ExplainArgs:
    if request.method not in METHODS:
        raise InvalidArgument(f"method: unknown value {request.method} (known: {_KNOWN_METHODS})")
    if request.layout not in LAYOUTS:
        raise InvalidArgument(f"layout: unknown value {request.layout}")
    packed = request.layout == explain_pb2.EXPLAIN_LAYOUT_PACKED
    if packed and request.top_k:
        raise InvalidArgument("top_k: a packed response carries every feature; use top_k 0, or the ROWS layout")
    return ExplainArgs(request.model, matrix_to_array(request.rows, "rows"), request.top_k, METHODS[request.method],
                       packed)


def explain_response(args: ExplainArgs, result: Explanation, names: list[str], name: str,
                     version: int) -> explain_pb2.ExplainResponse:
    """Packed: dense arrays in feature order. Rows: each row's attributions, largest first, the top_k of them."""
    common: dict[str, Any] = {"method": _METHOD_ENUMS[result.method], "model_name": name, "model_version": version,
                              "evaluations_per_row": result.evaluations_per_row}
    if args.packed:
        return explain_pb2.ExplainResponse(
            **common, feature_names=names, anomaly_scores=result.scores.tolist(),
            base_values=result.base_values.tolist(), contributions=result.contributions.ravel().tolist(),
        )
    X = args.rows
    order = np.argsort(-result.contributions, axis=1, kind="stable")[:, : args.top_k or X.shape[1]]
    rows = [
        explain_pb2.RowExplanation(
            anomaly_score=float(result.scores[i]),
            base_value=float(result.base_values[i]),
            attributions=[
                explain_pb2.Attribution(feature=names[j], value=float(X[i, j]), double_value=float(X[i, j]),
                                        contribution=float(result.contributions[i, j]))
                for j in order[i]
            ],
        )
        for i in range(len(X))
    ]
    return explain_pb2.ExplainResponse(rows=rows, **common)
