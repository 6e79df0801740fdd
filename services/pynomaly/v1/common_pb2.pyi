from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CandidateOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANDIDATE_OUTCOME_UNSPECIFIED: _ClassVar[CandidateOutcome]
    CANDIDATE_OUTCOME_KEPT: _ClassVar[CandidateOutcome]
    CANDIDATE_OUTCOME_PRUNED: _ClassVar[CandidateOutcome]
    CANDIDATE_OUTCOME_FAILED: _ClassVar[CandidateOutcome]
    CANDIDATE_OUTCOME_SKIPPED: _ClassVar[CandidateOutcome]
    CANDIDATE_OUTCOME_EVALUATED: _ClassVar[CandidateOutcome]
CANDIDATE_OUTCOME_UNSPECIFIED: CandidateOutcome
CANDIDATE_OUTCOME_KEPT: CandidateOutcome
CANDIDATE_OUTCOME_PRUNED: CandidateOutcome
CANDIDATE_OUTCOME_FAILED: CandidateOutcome
CANDIDATE_OUTCOME_SKIPPED: CandidateOutcome
CANDIDATE_OUTCOME_EVALUATED: CandidateOutcome

class Matrix(_message.Message):
    __slots__ = ("rows", "columns", "values", "raw_values", "double_values", "raw_double_values")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    RAW_VALUES_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUES_FIELD_NUMBER: _ClassVar[int]
    RAW_DOUBLE_VALUES_FIELD_NUMBER: _ClassVar[int]
    rows: int
    columns: int
    values: _containers.RepeatedScalarFieldContainer[float]
    raw_values: bytes
    double_values: _containers.RepeatedScalarFieldContainer[float]
    raw_double_values: bytes
    def __init__(self, rows: _Optional[int] = ..., columns: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ..., raw_values: _Optional[bytes] = ..., double_values: _Optional[_Iterable[float]] = ..., raw_double_values: _Optional[bytes] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("algorithm", "params", "outcome", "message", "fit_seconds", "weight", "score_mean", "score_scale", "max_correlation", "export_max_rel_error", "roc_auc", "average_precision", "trial")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SCORE_MEAN_FIELD_NUMBER: _ClassVar[int]
    SCORE_SCALE_FIELD_NUMBER: _ClassVar[int]
    MAX_CORRELATION_FIELD_NUMBER: _ClassVar[int]
    EXPORT_MAX_REL_ERROR_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRECISION_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    params: _containers.MessageMap[str, _struct_pb2.Value]
    outcome: CandidateOutcome
    message: str
    fit_seconds: float
    weight: float
    score_mean: float
    score_scale: float
    max_correlation: float
    export_max_rel_error: float
    roc_auc: float
    average_precision: float
    trial: int
    def __init__(self, algorithm: _Optional[str] = ..., params: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., outcome: _Optional[_Union[CandidateOutcome, str]] = ..., message: _Optional[str] = ..., fit_seconds: _Optional[float] = ..., weight: _Optional[float] = ..., score_mean: _Optional[float] = ..., score_scale: _Optional[float] = ..., max_correlation: _Optional[float] = ..., export_max_rel_error: _Optional[float] = ..., roc_auc: _Optional[float] = ..., average_precision: _Optional[float] = ..., trial: _Optional[int] = ...) -> None: ...

class LabelSummary(_message.Message):
    __slots__ = ("rows", "anomalies", "roc_auc", "average_precision")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    ROC_AUC_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRECISION_FIELD_NUMBER: _ClassVar[int]
    rows: int
    anomalies: int
    roc_auc: float
    average_precision: float
    def __init__(self, rows: _Optional[int] = ..., anomalies: _Optional[int] = ..., roc_auc: _Optional[float] = ..., average_precision: _Optional[float] = ...) -> None: ...

class Tuning(_message.Message):
    __slots__ = ("metric", "held_out_rows", "held_out_anomalies", "held_out_share", "seed", "trials", "best_roc_auc", "best_average_precision", "runner")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_ROWS_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_SHARE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    BEST_ROC_AUC_FIELD_NUMBER: _ClassVar[int]
    BEST_AVERAGE_PRECISION_FIELD_NUMBER: _ClassVar[int]
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    metric: str
    held_out_rows: int
    held_out_anomalies: int
    held_out_share: float
    seed: int
    trials: int
    best_roc_auc: float
    best_average_precision: float
    runner: str
    def __init__(self, metric: _Optional[str] = ..., held_out_rows: _Optional[int] = ..., held_out_anomalies: _Optional[int] = ..., held_out_share: _Optional[float] = ..., seed: _Optional[int] = ..., trials: _Optional[int] = ..., best_roc_auc: _Optional[float] = ..., best_average_precision: _Optional[float] = ..., runner: _Optional[str] = ...) -> None: ...
