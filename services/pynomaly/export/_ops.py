"""A small graph builder for the transductive family's converters: nodes and constants under unique names, and
the float64 pieces onnxruntime lacks (arccos) or that every converter needs (rows one at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ._graph import INPUT_NAME, OUTPUT_NAME, make_model

# onnx protobufs cannot exceed 2 GiB; keep the embedded constants well below.
MAX_CONSTANT_BYTES = 1 << 30


def training_rows(det: Any, n_features: int, name: str) -> np.ndarray:
    """The rows a Frozen* detector was fitted on; ValueError if it is not fitted or fitted on another width."""
    train = getattr(det, "X_train_", None)
    if train is None or not hasattr(det, "detector_"):
        raise ValueError(f"{name} is not fitted")
    if n_features != train.shape[1]:
        raise ValueError(f"n_features={n_features} but {name} was fitted on {train.shape[1]} features")
    own = np.asarray(det.detector_.decision_scores_, np.float64)
    if not np.all(np.isfinite(own)):
        raise ValueError(f"PyOD's {name} gives {int(np.sum(~np.isfinite(own)))} of its {len(own)} training rows "
                         "non-finite scores (NaN or inf): nothing to serve (duplicated or degenerate training rows?)")
    return np.asarray(train, np.float64)


class Builder:
    """Nodes and float64/int64 constants under unique names; `op` returns the output name(s)."""

    def __init__(self, prefix: str = "") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.prefix = prefix
        self._count = 0
        self.const_bytes = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def const(self, value: Any, dtype: type = np.float64, hint: str = "c") -> str:
        arr: np.ndarray = np.array(value, dtype=dtype, order="C")  # (ascontiguousarray would make scalars 1-D)
        self.const_bytes += arr.nbytes
        if self.const_bytes > MAX_CONSTANT_BYTES:
            raise ValueError(f"the graph needs over {MAX_CONSTANT_BYTES >> 20} MiB of constants (train on fewer rows)")
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(arr, name=name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(list(values), np.int64, "i")

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else tuple(outs)

    def where(self, cond: str, a: str, b: str) -> str:
        return self.op("Where", [cond, a, b])

    def clip(self, x: str, lo: str, hi: str) -> str:
        """min(max(x, lo), hi), as numpy's minimum(maximum(...)) (constants broadcast)."""
        return self.op("Min", [self.op("Max", [x, lo]), hi])

    def numpy_sum(self, x: str, width: int, sequential: bool = False) -> str:
        """Sum over the last axis (keepdims) in numpy's order (pairwise_sum: sequential below 8 terms, 8
        accumulators up to 128, halves above), so that a sum of squares rounds as np.sum(..., 1) does; or
        `sequential`, as scipy's pdist sums."""
        terms = list(self.op("Split", [x], n_out=width, axis=-1, num_outputs=width)) if width > 1 else [x]

        def pairwise(t: list[str]) -> str:
            n = len(t)
            if n < 8 or sequential:
                total = t[0]
                for v in t[1:]:
                    total = self.op("Add", [total, v])
                return total
            if n <= 128:
                acc = t[:8]
                full = n - n % 8
                for i in range(8, full, 8):
                    acc = [self.op("Add", [a, v]) for a, v in zip(acc, t[i : i + 8], strict=True)]
                add = lambda a, b: self.op("Add", [a, b])  # noqa: E731
                total = add(add(add(acc[0], acc[1]), add(acc[2], acc[3])), add(add(acc[4], acc[5]),
                                                                           add(acc[6], acc[7])))
                for v in t[full:]:
                    total = add(total, v)
                return total
            half = n // 2
            half -= half % 8
            return self.op("Add", [pairwise(t[:half]), pairwise(t[half:])])

        return pairwise(terms)

    def arccos(self, c: str) -> str:
        """arccos(c) in float64 for c in [-1, 1] (NaN stays NaN): onnxruntime has Acos for float only.

        acos(|c|) = 2 asin(sqrt((1 - |c|) / 2)), the asin argument in [0, 0.71] where asin is well conditioned:
        float32 Asin, then two Newton steps on sin(phi) = s in float64 (1e-7 -> 1e-14 -> rounding).
        acos(c) = pi - acos(-c) for c < 0.
        """
        u = self.op("Abs", [c])
        s = self.op("Sqrt", [self.op("Div", [self.op("Sub", [self.const(1.0), u]), self.const(2.0)])])
        phi = self.op("Cast", [self.op("Asin", [self.op("Cast", [s], to=TensorProto.FLOAT)])], to=TensorProto.DOUBLE)
        for _ in range(2):
            step = self.op("Div", [self.op("Sub", [self.op("Sin", [phi]), s]), self.op("Cos", [phi])])
            phi = self.op("Sub", [phi, step])
        acos_u = self.op("Mul", [phi, self.const(2.0)])
        flipped = self.op("Sub", [self.const(np.pi), acos_u])
        return self.where(self.op("GreaterOrEqual", [c, self.const(0.0)]), acos_u, flipped)

    def loop(self, max_trips: str, cond: str, carried: Sequence[tuple[str, int]],
             body_fn: Callable[[Builder, str, list[str]], tuple[str, list[str]]]) -> list[str]:
        """A Loop: `carried` (name, element type) pairs are its state; body_fn(body, iteration, state) returns
        (condition to go on, new state). The final state's names."""
        body = self.nested("loop_")
        it, flag = body.name("it"), body.name("cond")
        state = [body.name("state") for _ in carried]
        go_on, new = body_fn(body, it, state)
        new = [body.op("Identity", [n]) if n in state else n for n in new]  # an output must be a node's
        graph = helper.make_graph(
            body.nodes, body.name("body"),
            [helper.make_tensor_value_info(it, TensorProto.INT64, []),
             helper.make_tensor_value_info(flag, TensorProto.BOOL, []),
             *(helper.make_tensor_value_info(s, t, None) for s, (_, t) in zip(state, carried, strict=True))],
            [helper.make_tensor_value_info(go_on, TensorProto.BOOL, []),
             *(helper.make_tensor_value_info(o, t, None) for o, (_, t) in zip(new, carried, strict=True))],
        )
        self.adopt(body)
        return list(self.op("Loop", [max_trips, cond, *(n for n, _ in carried)], n_out=len(carried), body=graph)
                    if len(carried) > 1 else [self.op("Loop", [max_trips, cond, carried[0][0]], body=graph)])

    def nested(self, prefix: str) -> Builder:
        """A builder for a subgraph's body, numbering on from this one."""
        body = Builder(self.prefix + prefix)
        body._count = self._count
        return body

    def adopt(self, body: Builder) -> None:
        """Take a built subgraph's constants (subgraphs may read outer-scope initializers) and numbering."""
        self.inits += body.inits
        self.const_bytes += body.const_bytes
        self._count = body._count

    def one_row_at_a_time(self, x: str, score_row: Callable[[Builder, str], str]) -> str:
        """double[N] = concat over the rows r of x of score_row(x[r:r+1]) -> double[1]: a Loop built here.

        Each row is computed alone, by the same nodes, so a row's score cannot depend on the batch."""
        return self.in_blocks(x, 1, score_row)

    def in_blocks(self, x: str, block: int, score_block: Callable[[Builder, str], str]) -> str:
        """double[N] = concat over blocks of `block` rows of x of score_block(rows) -> double[rows]: a Loop built
        here, bounding memory by the block rather than the batch. The body's constants go to the outer graph
        (subgraphs may read outer-scope initializers)."""
        zero = self.ints(0)
        size = self.ints(block)
        n_rows = self.op("Shape", [x], start=0, end=1)
        n_blocks = self.op("Squeeze", [self.op("Div", [self.op("Add", [n_rows, self.ints(block - 1)]), size]), zero])
        body = self.nested("block_")
        it, cond, acc = body.name("i"), body.name("cond"), body.name("acc")
        start = body.op("Mul", [body.op("Unsqueeze", [it, zero]), size])
        rows = body.op("Slice", [x, start, body.op("Add", [start, size]), zero])
        acc_out = body.op("Concat", [acc, score_block(body, rows)], axis=0)
        cond_out = body.op("Identity", [cond])
        graph = helper.make_graph(
            body.nodes, body.name("blocks"),
            [helper.make_tensor_value_info(it, TensorProto.INT64, []),
             helper.make_tensor_value_info(cond, TensorProto.BOOL, []),
             helper.make_tensor_value_info(acc, TensorProto.DOUBLE, [None])],
            [helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []),
             helper.make_tensor_value_info(acc_out, TensorProto.DOUBLE, [None])],
        )
        self.adopt(body)
        return self.op("Loop", [n_blocks, "", self.const(np.zeros(0), hint="empty")], body=graph)

    def model(self, score: str, n_features: int, name: str) -> onnx.ModelProto:
        """The served contract around double[N] `score`: X float[N, F] in (read by a Cast to double: double_io
        feeds the float64 rows), anomaly_score out."""
        self.nodes.append(helper.make_node("Cast", [score], [OUTPUT_NAME], to=TensorProto.FLOAT))
        return make_model(self.nodes, self.inits, n_features, name)

    def rows(self) -> str:
        """X as double[N, F]."""
        return self.op("Cast", [INPUT_NAME], to=TensorProto.DOUBLE)
