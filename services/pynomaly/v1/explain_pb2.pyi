from pynomaly.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExplainMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPLAIN_METHOD_UNSPECIFIED: _ClassVar[ExplainMethod]
    EXPLAIN_METHOD_EXACT: _ClassVar[ExplainMethod]
    EXPLAIN_METHOD_TREE_SHAP: _ClassVar[ExplainMethod]
    EXPLAIN_METHOD_KERNEL_SHAP: _ClassVar[ExplainMethod]

class ExplainLayout(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPLAIN_LAYOUT_UNSPECIFIED: _ClassVar[ExplainLayout]
    EXPLAIN_LAYOUT_ROWS: _ClassVar[ExplainLayout]
    EXPLAIN_LAYOUT_PACKED: _ClassVar[ExplainLayout]
EXPLAIN_METHOD_UNSPECIFIED: ExplainMethod
EXPLAIN_METHOD_EXACT: ExplainMethod
EXPLAIN_METHOD_TREE_SHAP: ExplainMethod
EXPLAIN_METHOD_KERNEL_SHAP: ExplainMethod
EXPLAIN_LAYOUT_UNSPECIFIED: ExplainLayout
EXPLAIN_LAYOUT_ROWS: ExplainLayout
EXPLAIN_LAYOUT_PACKED: ExplainLayout

class ExplainRequest(_message.Message):
    __slots__ = ("model", "rows", "top_k", "method", "layout")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    model: str
    rows: _common_pb2.Matrix
    top_k: int
    method: ExplainMethod
    layout: ExplainLayout
    def __init__(self, model: _Optional[str] = ..., rows: _Optional[_Union[_common_pb2.Matrix, _Mapping]] = ..., top_k: _Optional[int] = ..., method: _Optional[_Union[ExplainMethod, str]] = ..., layout: _Optional[_Union[ExplainLayout, str]] = ...) -> None: ...

class Attribution(_message.Message):
    __slots__ = ("feature", "value", "contribution", "double_value")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: float
    contribution: float
    double_value: float
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[float] = ..., contribution: _Optional[float] = ..., double_value: _Optional[float] = ...) -> None: ...

class RowExplanation(_message.Message):
    __slots__ = ("anomaly_score", "base_value", "attributions")
    ANOMALY_SCORE_FIELD_NUMBER: _ClassVar[int]
    BASE_VALUE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    anomaly_score: float
    base_value: float
    attributions: _containers.RepeatedCompositeFieldContainer[Attribution]
    def __init__(self, anomaly_score: _Optional[float] = ..., base_value: _Optional[float] = ..., attributions: _Optional[_Iterable[_Union[Attribution, _Mapping]]] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("rows", "method", "model_name", "model_version", "evaluations_per_row", "feature_names", "anomaly_scores", "base_values", "contributions")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_PER_ROW_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_SCORES_FIELD_NUMBER: _ClassVar[int]
    BASE_VALUES_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[RowExplanation]
    method: ExplainMethod
    model_name: str
    model_version: int
    evaluations_per_row: int
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    anomaly_scores: _containers.RepeatedScalarFieldContainer[float]
    base_values: _containers.RepeatedScalarFieldContainer[float]
    contributions: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, rows: _Optional[_Iterable[_Union[RowExplanation, _Mapping]]] = ..., method: _Optional[_Union[ExplainMethod, str]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., evaluations_per_row: _Optional[int] = ..., feature_names: _Optional[_Iterable[str]] = ..., anomaly_scores: _Optional[_Iterable[float]] = ..., base_values: _Optional[_Iterable[float]] = ..., contributions: _Optional[_Iterable[float]] = ...) -> None: ...
