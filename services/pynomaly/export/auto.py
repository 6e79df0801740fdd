"""The label-free AutoML ensemble (pynomaly.algorithms.auto.AutoEnsemble) as one graph: each kept member's own
served graph (names prefixed, fed the float64 rows), its score standardised with the constants frozen at training,
the mean of those. Exact when the members' graphs are; the members were each verified at training."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ._graph import INPUT_NAME
from .ensemble import _combine, _member_part


def auto_to_onnx(det: Any, n_features: int) -> onnx.ModelProto:
    """Graph whose output equals AutoEnsemble.decision_function."""
    if not getattr(det, "members_", None):
        raise ValueError("the AutoEnsemble is not fitted")
    prelude = [helper.make_node("Cast", [INPUT_NAME], ["x64"], to=TensorProto.DOUBLE)]
    parts = [_member_part(member, n_features, f"m{i}_", "x64", what=f"member {i} ({name})")
             for i, (name, member) in enumerate(zip(det.member_algorithms_, det.members_, strict=True))]
    standardize = (np.asarray(det.means_, np.float64), np.asarray(det.scales_, np.float64))
    return _combine(parts, "mean", n_features, "auto", prelude=prelude, standardize=standardize)


CONVERTERS = {"pynomaly.algorithms.auto.AutoEnsemble": auto_to_onnx}
