import numpy as np
import pytest

from pynomaly.errors import InvalidArgument
from pynomaly.rows import check_rows
from pynomaly.server.convert import array_to_matrix, matrix_to_array
from pynomaly.v1 import common_pb2

X = np.arange(12, dtype=np.float32).reshape(4, 3) / 7


@pytest.mark.parametrize(
    "matrix",
    [
        common_pb2.Matrix(rows=4, columns=3, values=X.ravel().tolist()),
        common_pb2.Matrix(rows=4, columns=3, raw_values=X.astype("<f4").tobytes()),
        array_to_matrix(X),
    ],
    ids=["values", "raw_values", "array_to_matrix"],
)
def test_matrix_round_trip(matrix):
    out = matrix_to_array(matrix, "rows")
    assert out.dtype == np.float32 and out.shape == (4, 3)
    np.testing.assert_array_equal(out, X)


@pytest.mark.parametrize(
    "matrix, message",
    [
        (common_pb2.Matrix(rows=2, columns=3, values=[1.0] * 5), r"rows.values: 5 values, expected rows × columns = 6"),
        (common_pb2.Matrix(rows=1, columns=2, raw_values=b"\0" * 7), r"rows.raw_values: 7 bytes, expected .* = 8"),
        (common_pb2.Matrix(rows=1, columns=1, values=[1.0], raw_values=b"\0" * 4), "either values or raw_values"),
        (common_pb2.Matrix(rows=-1, columns=2), "must be ≥ 0"),
    ],
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
    ],
)
def test_check_rows(X, width, message):
    with pytest.raises(InvalidArgument, match=message):
        check_rows(X, "rows", width)
