"""Converters between protobuf messages and the data plane's arguments and results, table-driven."""

import numpy as np
import pytest
from google.protobuf import struct_pb2

from pynomaly.dataplane import DetectResult
from pynomaly.errors import InvalidArgument
from pynomaly.explain import Explanation
from pynomaly.rows import check_rows
from pynomaly.server import convert
from pynomaly.server.convert import array_to_matrix, matrix_to_array
from pynomaly.v1 import common_pb2, detect_pb2, explain_pb2, model_pb2, train_pb2

X = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
# Float64 values no float32 equals: decoded as sent, not rounded.
X64 = np.arange(12, dtype=np.float64).reshape(4, 3) / 7 + 1e-12


@pytest.mark.parametrize(
    "matrix, expected",
    [
        (common_pb2.Matrix(rows=4, columns=3, values=X.ravel().tolist()), X),
        (common_pb2.Matrix(rows=4, columns=3, raw_values=X.astype("<f4").tobytes()), X),
        (array_to_matrix(X), X),
        (common_pb2.Matrix(rows=4, columns=3, double_values=X64.ravel().tolist()), X64),
        (common_pb2.Matrix(rows=4, columns=3, raw_double_values=X64.astype("<f8").tobytes()), X64),
        (array_to_matrix(X64), X64),
        (common_pb2.Matrix(rows=0, columns=3), np.zeros((0, 3), np.float32)),  # empty: no field set, float32
        (common_pb2.Matrix(rows=0, columns=3, double_values=[]), np.zeros((0, 3), np.float32)),
    ],
    ids=["values", "raw_values", "array_to_matrix-f32", "double_values", "raw_double_values", "array_to_matrix-f64",
         "empty", "empty-double"],
)
def test_matrix_round_trip(matrix, expected):
    out = matrix_to_array(matrix, "rows")
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype, field", [(np.float32, "raw_values"), (np.float64, "raw_double_values"),
                                          (np.int64, "raw_values"), (np.float16, "raw_values")])
def test_array_to_matrix_keeps_float64_only(dtype, field):
    matrix = array_to_matrix(np.ones((2, 3), dtype))
    assert [f.name for f, _ in matrix.ListFields()] == ["rows", "columns", field]


@pytest.mark.parametrize(
    "matrix, message",
    [
        (common_pb2.Matrix(rows=2, columns=3, values=[1.0] * 5), r"rows.values: 5 values, expected rows × columns = 6"),
        (common_pb2.Matrix(rows=1, columns=2, raw_values=b"\0" * 7), r"rows.raw_values: 7 bytes, expected .* = 8"),
        (common_pb2.Matrix(rows=2, columns=3, double_values=[1.0] * 7),
         r"rows.double_values: 7 values, expected rows × columns = 6"),
        (common_pb2.Matrix(rows=1, columns=2, raw_double_values=b"\0" * 8),
         r"rows.raw_double_values: 8 bytes, expected rows × columns × 8 = 16"),
        # Float32-sized raw bytes sent as float64 (a client that mixed the two up) are refused, not misread.
        (common_pb2.Matrix(rows=2, columns=2, raw_double_values=np.ones(4, "<f4").tobytes()),
         r"rows.raw_double_values: 16 bytes, expected rows × columns × 8 = 32"),
        (common_pb2.Matrix(rows=1, columns=1, values=[1.0], raw_values=b"\0" * 4),
         "set exactly one of values, raw_values, double_values or raw_double_values; got values and raw_values"),
        (common_pb2.Matrix(rows=1, columns=1, values=[1.0], double_values=[1.0]), "got values and double_values"),
        (common_pb2.Matrix(rows=1, columns=1, raw_values=b"\0" * 4, raw_double_values=b"\0" * 8),
         "got raw_values and raw_double_values"),
        (common_pb2.Matrix(rows=1, columns=1, double_values=[1.0], raw_double_values=b"\0" * 8),
         "got double_values and raw_double_values"),
        (common_pb2.Matrix(rows=1, columns=1, values=[1.0], raw_values=b"\0" * 4, double_values=[1.0],
                           raw_double_values=b"\0" * 8),
         "got values and raw_values and double_values and raw_double_values"),
        (common_pb2.Matrix(rows=1, columns=2), r"rows.values: 0 values, expected rows × columns = 2"),
        (common_pb2.Matrix(rows=-1, columns=2), "must be ≥ 0"),
    ],
    ids=["values-short", "raw-short", "double-long", "raw-double-short", "raw-double-given-f32-bytes",
         "values+raw", "values+double", "raw+raw-double", "double+raw-double", "all-four", "none", "negative"],
)
def test_bad_matrix(matrix, message):
    with pytest.raises(InvalidArgument, match=message):
        matrix_to_array(matrix, "rows")


@pytest.mark.parametrize(
    "X, width, message",
    [
        (np.zeros((0, 3), np.float32), 3, r"rows: the matrix is empty \(0 rows × 3 columns\)"),
        (np.zeros((2, 4), np.float32), 3, "rows: expected 3 columns .* got 4"),
        (np.array([[1, np.nan, 2]], np.float32), 3, "rows: row 0 column 1 is nan; values must be finite"),
        (np.array([[1, 2, 3], [np.inf, 0, -np.inf]], np.float32), 3, "row 1 column 0 is inf.* 2 non-finite"),
        (np.array([[1, np.nan, 2]]), 3, "rows: row 0 column 1 is nan; values must be finite"),
        (np.array([[1, 2, 3], [0, -np.inf, 1e39]]), 3, "row 1 column 1 is -inf; values must be finite"),
        # float64 values beyond float32's range: every graph's float64 arithmetic is safe within it.
        (np.array([[1, 2, 3], [0, 0, 1e39]]), 3,
         r"rows: row 1 column 2 is 1e\+39; values must be within float32's range \(\|x\| ≤ 3.40282e\+38\)$"),
        (np.array([[-4e38, 2, 5e38]]), 3, r"row 0 column 0 is -4e\+38; .* — 2 values out of range in all"),
    ],
)
def test_check_rows(X, width, message):
    with pytest.raises(InvalidArgument, match=message):
        check_rows(X, "rows", width)


# --- requests -> data-plane arguments ---


def _rows(X: np.ndarray = X) -> common_pb2.Matrix:
    return array_to_matrix(X)


@pytest.mark.parametrize(
    "request_, expected",
    [
        (detect_pb2.DetectRequest(model="m@2", rows=_rows()), ("m@2", None)),
        (detect_pb2.DetectRequest(model="m", rows=_rows(), threshold=0.0), ("m", 0.0)),  # 0 is a threshold, not unset
        (detect_pb2.DetectRequest(model="m:prod", rows=_rows(), threshold=-1.5), ("m:prod", -1.5)),
    ],
    ids=["no-threshold", "threshold-zero", "threshold-negative"],
)
def test_detect_args(request_, expected):
    model, rows, threshold = convert.detect_args(request_)
    assert (model, threshold) == expected
    np.testing.assert_array_equal(rows, X)


def test_check_rows_accepts_float32_range_edges():
    top = float(np.finfo(np.float32).max)
    for X_ in (np.array([[top, -top]]), np.array([[top, -top]], np.float32)):
        assert check_rows(X_, "rows", 2) is X_


@pytest.mark.parametrize(
    "scores, field",
    [
        (np.array([0.5, 2.0], np.float32), "anomaly_scores"),  # float32 requests: the field old clients read
        (np.array([0.5, 2.0 + 1e-12]), "double_anomaly_scores"),  # float64 requests: float64 scores
    ],
    ids=["float32", "float64"],
)
def test_detect_response_fills_the_field_of_the_scores_precision(scores, field):
    result = DetectResult(scores, np.array([False, True]), 1.0, "m", 3)
    assert convert.detect_response(result) == detect_pb2.DetectResponse(
        **{field: scores.tolist()}, is_anomaly=[False, True], threshold=1.0, model_name="m", model_version=3)


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({}, ("m", 0, None, False)),
        ({"method": explain_pb2.EXPLAIN_METHOD_EXACT, "top_k": 2}, ("m", 2, "exact", False)),
        ({"method": explain_pb2.EXPLAIN_METHOD_TREE_SHAP, "layout": explain_pb2.EXPLAIN_LAYOUT_ROWS},
         ("m", 0, "tree_shap", False)),
        ({"method": explain_pb2.EXPLAIN_METHOD_KERNEL_SHAP, "layout": explain_pb2.EXPLAIN_LAYOUT_PACKED},
         ("m", 0, "kernel_shap", True)),
    ],
    ids=["defaults", "exact-top2", "tree-rows", "kernel-packed"],
)
def test_explain_args(fields, expected):
    args = convert.explain_args(explain_pb2.ExplainRequest(model="m", rows=_rows(), **fields))
    assert (args.model, args.top_k, args.method, args.packed) == expected
    np.testing.assert_array_equal(args.rows, X)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"method": 17}, "method: unknown value 17"),
        ({"layout": 9}, "layout: unknown value 9"),
        ({"layout": explain_pb2.EXPLAIN_LAYOUT_PACKED, "top_k": 1}, "top_k: a packed response carries every feature"),
        ({"rows": common_pb2.Matrix(rows=1, columns=2, values=[1.0])}, r"rows.values: 1 values, expected .* = 2"),
    ],
)
def test_bad_explain_request(fields, message):
    with pytest.raises(InvalidArgument, match=message):
        convert.explain_args(explain_pb2.ExplainRequest(model="m", **{"rows": _rows(), **fields}))


EXPLANATION = Explanation(scores=np.array([1.0, 2.0]), base_values=np.array([0.5, 0.5]),
                          contributions=np.array([[0.1, 0.4, 0.0], [1.0, -0.5, 1.0]]), method="exact",
                          evaluations_per_row=1)
NAMES = ["a", "b", "c"]


@pytest.mark.parametrize(
    "top_k, expected_order",
    [
        (0, [["b", "a", "c"], ["a", "c", "b"]]),  # largest first; ties keep feature order (stable)
        (1, [["b"], ["a"]]),
        (2, [["b", "a"], ["a", "c"]]),
    ],
)
def test_explain_rows_layout(top_k, expected_order):
    args = convert.ExplainArgs("m", X[:2], top_k, "exact", packed=False)
    response = convert.explain_response(args, EXPLANATION, NAMES, "m", 4)
    assert [[a.feature for a in r.attributions] for r in response.rows] == expected_order
    assert response.method == explain_pb2.EXPLAIN_METHOD_EXACT and response.model_version == 4
    first = response.rows[1].attributions[0]
    assert (first.value, first.double_value, first.contribution) == (float(X[1, 0]), float(X[1, 0]), 1.0)
    assert [r.anomaly_score for r in response.rows] == [1.0, 2.0] and not response.contributions


def test_explain_rows_layout_echoes_float64_values():
    args = convert.ExplainArgs("m", X64[:2], 0, "exact", packed=False)
    first = convert.explain_response(args, EXPLANATION, NAMES, "m", 4).rows[1].attributions[0]
    assert first.double_value == X64[1, 0] and first.value == pytest.approx(X64[1, 0], rel=1e-7)


def test_explain_packed_layout():
    args = convert.ExplainArgs("m", X[:2], 0, None, packed=True)
    response = convert.explain_response(args, EXPLANATION, NAMES, "m", 4)
    assert list(response.feature_names) == NAMES and not response.rows
    assert list(response.contributions) == pytest.approx(EXPLANATION.contributions.ravel().tolist())
    assert list(response.base_values) == [0.5, 0.5] and list(response.anomaly_scores) == [1.0, 2.0]


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({}, {"threshold": None, "reference_rows": None}),
        ({"threshold": 0.0}, {"threshold": 0.0, "reference_rows": None}),
        ({"reference_rows": _rows()}, {"threshold": None, "reference_rows": X}),
    ],
    ids=["neither", "threshold-zero", "reference-rows"],
)
def test_import_spec(fields, expected):
    request = model_pb2.ImportModelRequest(name="tf", onnx_model=b"graph", score_output="s", feature_names=["x"],
                                           contamination=0.2, lower_is_anomalous=True, description="d", **fields)
    spec = convert.import_spec(request)
    assert (spec.name, spec.onnx_model, spec.score_output, spec.feature_names) == ("tf", b"graph", "s", ["x"])
    assert (spec.contamination, spec.lower_is_anomalous, spec.description) == (pytest.approx(0.2), True, "d")
    assert spec.threshold == expected["threshold"]
    if expected["reference_rows"] is None:
        assert spec.reference_rows is None
    else:
        np.testing.assert_array_equal(spec.reference_rows, expected["reference_rows"])


@pytest.mark.parametrize(
    "fields, matrix, data_uri",
    [
        ({"matrix": _rows()}, X, ""),
        ({"data_uri": "train.csv"}, None, "train.csv"),
    ],
    ids=["inline", "uri"],
)
def test_training_job_args(fields, matrix, data_uri):
    request = train_pb2.CreateTrainingJobRequest(model_name="m", algorithm="iforest", contamination=0.05,
                                                 feature_names=["a", "b", "c"], description="d",
                                                 params={"n_estimators": struct_pb2.Value(number_value=10)},
                                                 **fields)
    args = convert.training_job_args(request)
    assert {k: v for k, v in args.items() if k != "matrix"} == {
        "model_name": "m", "algorithm": "iforest", "params": {"n_estimators": 10.0},
        "contamination": pytest.approx(0.05), "data_uri": data_uri, "feature_names": ["a", "b", "c"],
        "description": "d", "label_column": "", "labels": None, "threshold_method": ""}
    if matrix is None:
        assert args["matrix"] is None
    else:
        np.testing.assert_array_equal(args["matrix"], matrix)


def test_training_job_args_carry_the_labels():
    request = train_pb2.CreateTrainingJobRequest(model_name="m", algorithm="auto", matrix=_rows(), labels=[0, 1, 0],
                                                 label_column="y")
    args = convert.training_job_args(request)
    assert args["label_column"] == "y" and args["labels"].tolist() == [0, 1, 0]


@pytest.mark.parametrize(
    "state, stage, expected_state, expected_stage",
    [
        ("QUEUED", "", train_pb2.TRAINING_JOB_STATE_QUEUED, train_pb2.TRAINING_STAGE_UNSPECIFIED),
        ("RUNNING", "fit", train_pb2.TRAINING_JOB_STATE_RUNNING, train_pb2.TRAINING_STAGE_FIT),
        ("RUNNING", "verify", train_pb2.TRAINING_JOB_STATE_RUNNING, train_pb2.TRAINING_STAGE_VERIFY),
        ("SUCCEEDED", "", train_pb2.TRAINING_JOB_STATE_SUCCEEDED, train_pb2.TRAINING_STAGE_UNSPECIFIED),
        ("CANCELLED", "", train_pb2.TRAINING_JOB_STATE_CANCELLED, train_pb2.TRAINING_STAGE_UNSPECIFIED),
    ],
)
def test_job_to_proto(state, stage, expected_state, expected_stage):
    job = {"id": "job-1", "model_name": "m", "algorithm": "iforest", "params": {"n_estimators": 10},
           "state": state, "stage": stage, "message": "", "model_version": 0, "rows": 5, "columns": 3,
           "create_time": 1.5, "start_time": 0.0, "end_time": 0.0}
    proto = convert.job_to_proto(job)
    assert (proto.state, proto.stage) == (expected_state, expected_stage)
    assert proto.create_time.ToNanoseconds() == 1_500_000_000 and not proto.HasField("start_time")
    assert proto.params["n_estimators"].number_value == 10
    assert proto.description == ""  # a record written before jobs kept their description
    assert convert.job_to_proto({**job, "description": "tag run=2"}).description == "tag run=2"


@pytest.mark.parametrize("fields, threshold", [({}, None), ({"threshold": 0.0}, 0.0), ({"threshold": -2.5}, -2.5)])
def test_batch_request(fields, threshold):
    request = detect_pb2.CreateBatchDetectJobRequest(model="m@2", input_uri="in.csv", output_uri="s3://b/o.parquet",
                                                     id_column="id", pass_through=True, **fields)
    got = convert.batch_request(request)
    assert (got.model, got.input_uri, got.output_uri, got.id_column, got.pass_through, got.overwrite) == (
        "m@2", "in.csv", "s3://b/o.parquet", "id", True, False)
    assert got.threshold == threshold


@pytest.mark.parametrize("state", ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"])
def test_batch_job_to_proto(state):
    job = {"id": "batch-1", "model": "m:prod", "model_name": "m", "model_version": 3, "input_uri": "in.csv",
           "output_uri": "out.parquet", "state": state, "rows_done": 10, "rows_total": 0, "rows_per_second": 5.5,
           "eta_seconds": 2.0, "message": "", "create_time": 1.5, "start_time": 2.0, "end_time": 0.0,
           "threshold": 0.25, "anomalies": 1, "id_column": "id", "pass_through": False, "overwrite": True,
           "output_url": "/srv/out/out.parquet"}
    proto = convert.batch_job_to_proto(job)
    assert detect_pb2.BatchDetectJobState.Name(proto.state) == f"BATCH_DETECT_JOB_STATE_{state}"
    assert (proto.model, proto.model_name, proto.model_version, proto.rows_done, proto.rows_total) == (
        "m:prod", "m", 3, 10, 0)
    assert (proto.rows_per_second, proto.eta_seconds, proto.threshold, proto.anomalies) == (5.5, 2.0, 0.25, 1)
    assert proto.start_time.ToNanoseconds() == 2_000_000_000 and not proto.HasField("end_time")
    assert proto.overwrite and not proto.pass_through and proto.id_column == "id"
