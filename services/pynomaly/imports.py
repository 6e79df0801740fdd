"""Bring your own model: validate an ONNX graph trained anywhere and wrap it into the platform's contract.

The wrapped graph has the same input and output as an exported one: "X" float64 [N, F] → "anomaly_score"
float64 [N], higher = more anomalous. The original graph is kept intact inside; only a Cast in front (to its
input type: float graphs see rows rounded to float32, double graphs the rows as sent) and Reshape / Neg / Cast
behind the score output are added.

Explain: an imported graph is a black box, so Kernel SHAP is its one method, and it needs background rows: a
sample of the reference rows, stored as a trained version's are (explain.npz). Without reference rows the version
has no method, and Explain says why (NO_BACKGROUND).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pynomaly import explain, verification
from pynomaly.errors import InvalidArgument
from pynomaly.limits import RunTimedOut, timed_run
from pynomaly.rows import check_rows
from pynomaly.training import summarize

if TYPE_CHECKING:
    import onnx

# onnx and the export package (scikit-learn, PyOD, numba: seconds) are imported by the first import, not with the
# server: the server imports this module at start-up.
PROBE_ROWS = 64
_FLOAT_TYPES = {1: "float", 11: "double"}  # onnx.TensorProto.FLOAT, .DOUBLE
NO_BACKGROUND = "imported without reference rows: Kernel SHAP needs them; import again with reference_rows"


@dataclass
class ImportSpec:
    name: str
    onnx_model: bytes
    score_output: str = ""
    feature_names: list[str] | None = None
    threshold: float | None = None
    contamination: float = 0.1
    lower_is_anomalous: bool = False
    reference_rows: np.ndarray | None = None
    description: str = ""


def _load(data: bytes) -> onnx.ModelProto:
    import onnx

    if not data:
        raise InvalidArgument("onnx_model is required (the serialized ONNX ModelProto)")
    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises DecodeError, ValidationError, …
        raise InvalidArgument(f"onnx_model: not a valid ONNX model: {type(e).__name__}: {e}") from None
    return model


def _input(model: onnx.ModelProto) -> tuple[onnx.ValueInfoProto, int | None]:
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise InvalidArgument(f"onnx_model: the graph must have exactly one input (the rows), it has {len(inputs)}: "
                              f"{', '.join(i.name for i in inputs)}")
    (inp,) = inputs
    t = inp.type.tensor_type
    if t.elem_type not in _FLOAT_TYPES:
        from onnx import TensorProto


        raise InvalidArgument(f"onnx_model: input {inp.name!r} must be float or double, got "
                              f"{TensorProto.DataType.Name(t.elem_type)}")
    if len(t.shape.dim) != 2:
        raise InvalidArgument(f"onnx_model: input {inp.name!r} must be 2-D [rows, features], got "
                              f"{len(t.shape.dim)} dimension(s)")
    width = t.shape.dim[1]
    return inp, (width.dim_value if width.HasField("dim_value") else None)


def _wrap(model: onnx.ModelProto, inp: onnx.ValueInfoProto, score: str, negate: bool) -> onnx.ModelProto:
    import onnx.compose
    from onnx import TensorProto, helper

    # Prefix every name of the user's graph so ours ("X", "anomaly_score", the wrapper's) cannot collide.
    model = onnx.compose.add_prefix(model, "user_")
    graph = model.graph
    score = f"user_{score}"
    prefix = "pynomaly_import_"
    to = inp.type.tensor_type.elem_type
    nodes = [helper.make_node("Cast", ["X"], [f"user_{inp.name}"], to=to, name=f"{prefix}input")]
    tail = [helper.make_node("Reshape", [score, f"{prefix}flat_shape"], [f"{prefix}flat"], name=f"{prefix}reshape")]
    last = f"{prefix}flat"
    if negate:
        tail.append(helper.make_node("Neg", [last], [f"{prefix}neg"], name=f"{prefix}neg"))
        last = f"{prefix}neg"
    tail.append(helper.make_node("Cast", [last], ["anomaly_score"], to=TensorProto.FLOAT, name=f"{prefix}output"))
    new_graph = helper.make_graph(
        nodes + list(graph.node) + tail,
        graph.name or "imported",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", inp.type.tensor_type.shape.dim[1].dim_value
                                                                or "F"])],
        [helper.make_tensor_value_info("anomaly_score", TensorProto.FLOAT, ["N"])],
        initializer=[*graph.initializer, helper.make_tensor(f"{prefix}flat_shape", TensorProto.INT64, [1], [-1])],
        sparse_initializer=graph.sparse_initializer,
        value_info=graph.value_info,
    )
    wrapped = helper.make_model(new_graph, opset_imports=model.opset_import, ir_version=model.ir_version,
                                producer_name="pynomaly-import")
    wrapped.functions.extend(model.functions)
    default_opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if default_opset is not None and default_opset < 5:  # Reshape with a shape input needs opset ≥ 5
        raise InvalidArgument(f"onnx_model: opset {default_opset} is too old; export with opset ≥ 5")
    return wrapped


def import_model(spec: ImportSpec, run_timeout_s: float = 10.0) -> tuple[bytes, dict, dict[str, np.ndarray]]:
    """Validate and wrap; return (graph bytes, manifest, explain arrays). Raises InvalidArgument naming what is
    wrong, and RunTimedOut when scoring the probe rows takes longer than `run_timeout_s` a run."""
    model = _load(spec.onnx_model)
    inp, width = _input(model)
    names = list(spec.feature_names or [])
    if width is None and not names:
        raise InvalidArgument(f"feature_names: input {inp.name!r} has a dynamic width; give one name per feature")
    if width is not None and names and len(names) != width:
        raise InvalidArgument(f"feature_names: {len(names)} names, but input {inp.name!r} has {width} columns")
    n_features = width or len(names)
    names = names or [f"f{i}" for i in range(n_features)]
    if len(set(names)) != len(names) or not all(names):
        raise InvalidArgument("feature_names: names must be non-empty and unique")
    outputs = [o.name for o in model.graph.output]
    score = spec.score_output or (outputs[0] if len(outputs) == 1 else "")
    if not score:
        raise InvalidArgument(f"score_output is required: the graph has {len(outputs)} outputs: {', '.join(outputs)}")
    if score not in outputs:
        raise InvalidArgument(f"score_output: the graph has no output {score!r}; it has: {', '.join(outputs)}")
    if spec.threshold is None and spec.reference_rows is None:
        raise InvalidArgument("give a threshold, or reference_rows (with contamination) to set one")
    if spec.threshold is not None and not np.isfinite(spec.threshold):
        raise InvalidArgument(f"threshold must be finite, got {spec.threshold}")
    if not 0 < spec.contamination <= 0.5:
        raise InvalidArgument(f"contamination must be in (0, 0.5], got {spec.contamination}")

    import onnx.checker

    from pynomaly.export._graph import double_io

    try:
        wrapped = double_io(_wrap(model, inp, score, spec.lower_is_anomalous)).SerializeToString()
    except (ValueError, onnx.checker.ValidationError) as e:
        raise InvalidArgument(f"onnx_model: cannot be wrapped into the served contract: {e}") from None
    try:
        session = verification.session(wrapped)
    except Exception as e:  # onnxruntime reports unsupported ops, type errors, …
        raise InvalidArgument(f"onnx_model: onnxruntime cannot load it: {e}") from None

    rng = np.random.default_rng(0)
    probe = np.vstack([np.zeros((1, n_features)), rng.normal(size=(PROBE_ROWS - 1, n_features))])
    if spec.reference_rows is not None:
        reference = check_rows(spec.reference_rows, "reference_rows", n_features).astype(np.float64)
        probe = np.vstack([probe, reference])
    def run(rows: np.ndarray) -> np.ndarray:
        return timed_run(session, None, {"X": rows}, run_timeout_s, f"onnx_model: scoring {len(rows)} probe rows")[0]

    try:
        scores = run(probe)
    except RunTimedOut:
        raise
    except Exception as e:
        raise InvalidArgument(f"onnx_model: scoring probe rows failed: {e}") from None
    if scores.shape != (len(probe),):
        raise InvalidArgument(f"score_output {score!r}: expected one score per row ({len(probe)} for "
                              f"{len(probe)} probe rows), got {scores.size} values")
    if not np.all(np.isfinite(scores)):
        raise InvalidArgument(f"score_output {score!r}: non-finite scores (NaN or inf) on probe rows")
    # Batch invariance: the platform promises a row's score never depends on the other rows.
    one_by_one = np.concatenate([run(probe[i : i + 1]) for i in range(8)])
    if not verification.check(one_by_one, scores[:8]).passed:
        raise InvalidArgument(f"score_output {score!r}: a row's score depends on the other rows of the batch")

    if spec.reference_rows is not None:
        ref_scores = scores[PROBE_ROWS:]
        threshold = (float(np.percentile(ref_scores, 100 * (1 - spec.contamination))) if spec.threshold is None
                     else spec.threshold)
        training_scores = summarize(ref_scores)
        explain_manifest, arrays = explain.artifacts(None, probe[PROBE_ROWS:], session)
    else:
        assert spec.threshold is not None  # checked above: a threshold, or reference rows
        threshold, training_scores = float(spec.threshold), summarize(scores)
        explain_manifest, arrays = {"methods": [], "default": "", "unavailable": NO_BACKGROUND}, {}
    manifest = {
        "format": 1,
        "algorithm": "onnx",
        "implementation": "imported ONNX model",
        "params": {"score_output": score, "lower_is_anomalous": spec.lower_is_anomalous},
        "feature_names": names,
        "threshold": threshold,
        # "given" (the import's own threshold) or the contamination quantile of the reference rows; the share is
        # over the reference rows, 0 without them.
        "threshold_method": "given" if spec.threshold is not None else "contamination",
        "flagged_share": float(np.mean(scores[PROBE_ROWS:] > threshold)) if spec.reference_rows is not None else 0.0,
        "contamination": spec.contamination if spec.reference_rows is not None else 0.0,
        "training_scores": training_scores,
        "explain": explain_manifest,
        "export_check": {"rows": len(probe), "max_abs_error": 0.0, "max_rel_error": 0.0, "tolerance": 0.0,
                         "libraries": f"imported (producer: {model.producer_name or 'unknown'} "
                                      f"{model.producer_version}".rstrip() + ")"},
        "create_time": time.time(),
        "data_sha256": "",
        "training_rows": 0,
        "job_id": "",
        "description": spec.description,
        "onnx_size_bytes": len(wrapped),
        "input_name": "X",
        "output_name": "anomaly_score",
    }
    return wrapped, manifest, arrays
