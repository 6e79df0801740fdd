import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pynomaly.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingJobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_JOB_STATE_UNSPECIFIED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_QUEUED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_RUNNING: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_SUCCEEDED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_FAILED: _ClassVar[TrainingJobState]
    TRAINING_JOB_STATE_CANCELLED: _ClassVar[TrainingJobState]

class TrainingStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_STAGE_UNSPECIFIED: _ClassVar[TrainingStage]
    TRAINING_STAGE_FIT: _ClassVar[TrainingStage]
    TRAINING_STAGE_EXPORT: _ClassVar[TrainingStage]
    TRAINING_STAGE_VERIFY: _ClassVar[TrainingStage]
    TRAINING_STAGE_REGISTER: _ClassVar[TrainingStage]

class Serving(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVING_UNSPECIFIED: _ClassVar[Serving]
    SERVING_EXACT: _ClassVar[Serving]
    SERVING_FROZEN: _ClassVar[Serving]
    SERVING_REFUSED: _ClassVar[Serving]
TRAINING_JOB_STATE_UNSPECIFIED: TrainingJobState
TRAINING_JOB_STATE_QUEUED: TrainingJobState
TRAINING_JOB_STATE_RUNNING: TrainingJobState
TRAINING_JOB_STATE_SUCCEEDED: TrainingJobState
TRAINING_JOB_STATE_FAILED: TrainingJobState
TRAINING_JOB_STATE_CANCELLED: TrainingJobState
TRAINING_STAGE_UNSPECIFIED: TrainingStage
TRAINING_STAGE_FIT: TrainingStage
TRAINING_STAGE_EXPORT: TrainingStage
TRAINING_STAGE_VERIFY: TrainingStage
TRAINING_STAGE_REGISTER: TrainingStage
SERVING_UNSPECIFIED: Serving
SERVING_EXACT: Serving
SERVING_FROZEN: Serving
SERVING_REFUSED: Serving

class TrainingJob(_message.Message):
    __slots__ = ("id", "model_name", "algorithm", "params", "state", "stage", "message", "model_version", "rows", "columns", "create_time", "start_time", "end_time", "description", "candidates", "fit_progress")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    FIT_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    id: str
    model_name: str
    algorithm: str
    params: _containers.MessageMap[str, _struct_pb2.Value]
    state: TrainingJobState
    stage: TrainingStage
    message: str
    model_version: int
    rows: int
    columns: int
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    description: str
    candidates: _containers.RepeatedCompositeFieldContainer[_common_pb2.Candidate]
    fit_progress: FitProgress
    def __init__(self, id: _Optional[str] = ..., model_name: _Optional[str] = ..., algorithm: _Optional[str] = ..., params: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., state: _Optional[_Union[TrainingJobState, str]] = ..., stage: _Optional[_Union[TrainingStage, str]] = ..., message: _Optional[str] = ..., model_version: _Optional[int] = ..., rows: _Optional[int] = ..., columns: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., description: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[_common_pb2.Candidate, _Mapping]]] = ..., fit_progress: _Optional[_Union[FitProgress, _Mapping]] = ...) -> None: ...

class FitProgress(_message.Message):
    __slots__ = ("done", "total", "unit")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    unit: str
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ..., unit: _Optional[str] = ...) -> None: ...

class CreateTrainingJobRequest(_message.Message):
    __slots__ = ("model_name", "algorithm", "params", "contamination", "matrix", "data_uri", "feature_names", "description", "label_column", "labels", "threshold_method")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CONTAMINATION_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    DATA_URI_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_METHOD_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    algorithm: str
    params: _containers.MessageMap[str, _struct_pb2.Value]
    contamination: float
    matrix: _common_pb2.Matrix
    data_uri: str
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    description: str
    label_column: str
    labels: _containers.RepeatedScalarFieldContainer[int]
    threshold_method: str
    def __init__(self, model_name: _Optional[str] = ..., algorithm: _Optional[str] = ..., params: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., contamination: _Optional[float] = ..., matrix: _Optional[_Union[_common_pb2.Matrix, _Mapping]] = ..., data_uri: _Optional[str] = ..., feature_names: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., label_column: _Optional[str] = ..., labels: _Optional[_Iterable[int]] = ..., threshold_method: _Optional[str] = ...) -> None: ...

class CreateTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class GetTrainingJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class ListTrainingJobsRequest(_message.Message):
    __slots__ = ("model_name", "page_size")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    page_size: int
    def __init__(self, model_name: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListTrainingJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[TrainingJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[TrainingJob, _Mapping]]] = ...) -> None: ...

class CancelTrainingJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class WatchTrainingJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchTrainingJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: TrainingJob
    def __init__(self, job: _Optional[_Union[TrainingJob, _Mapping]] = ...) -> None: ...

class ListAlgorithmsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAlgorithmsResponse(_message.Message):
    __slots__ = ("algorithms",)
    ALGORITHMS_FIELD_NUMBER: _ClassVar[int]
    algorithms: _containers.RepeatedCompositeFieldContainer[Algorithm]
    def __init__(self, algorithms: _Optional[_Iterable[_Union[Algorithm, _Mapping]]] = ...) -> None: ...

class Algorithm(_message.Message):
    __slots__ = ("name", "implementation", "description", "parameters", "exportable", "export_note", "exact_explanation", "serving", "needs_labels", "max_training_rows")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMPLEMENTATION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    EXPORTABLE_FIELD_NUMBER: _ClassVar[int]
    EXPORT_NOTE_FIELD_NUMBER: _ClassVar[int]
    EXACT_EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    NEEDS_LABELS_FIELD_NUMBER: _ClassVar[int]
    MAX_TRAINING_ROWS_FIELD_NUMBER: _ClassVar[int]
    name: str
    implementation: str
    description: str
    parameters: _containers.RepeatedCompositeFieldContainer[Parameter]
    exportable: bool
    export_note: str
    exact_explanation: bool
    serving: Serving
    needs_labels: bool
    max_training_rows: int
    def __init__(self, name: _Optional[str] = ..., implementation: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Iterable[_Union[Parameter, _Mapping]]] = ..., exportable: _Optional[bool] = ..., export_note: _Optional[str] = ..., exact_explanation: _Optional[bool] = ..., serving: _Optional[_Union[Serving, str]] = ..., needs_labels: _Optional[bool] = ..., max_training_rows: _Optional[int] = ...) -> None: ...

class Parameter(_message.Message):
    __slots__ = ("name", "type", "default_value", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    default_value: _struct_pb2.Value
    description: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., default_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...
