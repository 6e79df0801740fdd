"""export._graph.double_io: the transform that serves every converter's graph on float64 rows, table-driven."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pynomaly import verification
from pynomaly.export._graph import OUTPUT_NAME, const, double_io, make_model

X = np.array([[0.1, 1.0 + 1e-12], [-3.3, 2.5]])  # float64 values, three of which no float32 equals
ROUNDED = X.astype(np.float32).astype(np.float64)


def _cast(src: str, dst: str, to: int) -> onnx.NodeProto:
    return helper.make_node("Cast", [src], [dst], to=to)


def _sum_model(first: list[onnx.NodeProto], x: str, scale_dtype: type) -> onnx.ModelProto:
    """score = sum over features of 3 * x, where x is what `first` makes of the input."""
    nodes = [*first, helper.make_node("Mul", [x, "three"], ["tripled"]),
             helper.make_node("ReduceSum", ["tripled", "axes"], ["total"], keepdims=0)]
    if scale_dtype is np.float64:
        nodes.append(_cast("total", OUTPUT_NAME, TensorProto.FLOAT))
    else:
        nodes.append(helper.make_node("Identity", ["total"], [OUTPUT_NAME]))
    return make_model(nodes, [const("three", 3.0, scale_dtype), const("axes", [1], np.int64)], 2, "sum")


CASES = {
    # Reads X only through a Cast to double: computes on the float64 row itself.
    "widened": (_sum_model([_cast("X", "x64", TensorProto.DOUBLE)], "x64", np.float64), X),
    # Rounds X to float32 first, as sklearn's trees do: rounds the float64 row.
    "rounded": (_sum_model([_cast("X", "x32", TensorProto.FLOAT), _cast("x32", "x64", TensorProto.DOUBLE)], "x64",
                           np.float64), ROUNDED),
    # Computes in float32 on X itself (a float32 network): reads the row rounded to float32, output widened.
    "float32 inside": (_sum_model([], "X", np.float32), ROUNDED),
}


@pytest.mark.parametrize("case", CASES)
def test_double_io_serves_float64_rows(case: str) -> None:
    model, seen = CASES[case]
    served = double_io(model)
    onnx.checker.check_model(served, full_check=True)
    for value in (*served.graph.input, *served.graph.output):
        assert value.type.tensor_type.elem_type == TensorProto.DOUBLE
    sess = verification.session(served)
    got = sess.run([OUTPUT_NAME], {"X": X})[0]
    assert got.dtype == np.float64
    expected = (3.0 * seen).sum(axis=1)
    if case == "float32 inside":  # float32 arithmetic, widened at the end
        expected = (np.float32(3.0) * seen.astype(np.float32)).sum(axis=1, dtype=np.float32).astype(np.float64)
    np.testing.assert_array_equal(got, expected)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # the converter's graph is kept


def test_a_graph_in_the_served_contract_is_returned_as_it_is() -> None:
    served = double_io(CASES["widened"][0])
    assert double_io(served) is served


def test_a_graph_without_the_contracts_input_is_refused() -> None:
    graph = helper.make_graph([helper.make_node("Identity", ["rows"], [OUTPUT_NAME])], "g",
                              [helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["N", 2])],
                              [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 2])])
    with pytest.raises(ValueError, match="expected the input X float"):
        double_io(helper.make_model(graph))
