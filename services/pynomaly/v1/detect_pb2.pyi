import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pynomaly.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchDetectJobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_DETECT_JOB_STATE_UNSPECIFIED: _ClassVar[BatchDetectJobState]
    BATCH_DETECT_JOB_STATE_QUEUED: _ClassVar[BatchDetectJobState]
    BATCH_DETECT_JOB_STATE_RUNNING: _ClassVar[BatchDetectJobState]
    BATCH_DETECT_JOB_STATE_SUCCEEDED: _ClassVar[BatchDetectJobState]
    BATCH_DETECT_JOB_STATE_FAILED: _ClassVar[BatchDetectJobState]
    BATCH_DETECT_JOB_STATE_CANCELLED: _ClassVar[BatchDetectJobState]
BATCH_DETECT_JOB_STATE_UNSPECIFIED: BatchDetectJobState
BATCH_DETECT_JOB_STATE_QUEUED: BatchDetectJobState
BATCH_DETECT_JOB_STATE_RUNNING: BatchDetectJobState
BATCH_DETECT_JOB_STATE_SUCCEEDED: BatchDetectJobState
BATCH_DETECT_JOB_STATE_FAILED: BatchDetectJobState
BATCH_DETECT_JOB_STATE_CANCELLED: BatchDetectJobState

class DetectRequest(_message.Message):
    __slots__ = ("model", "rows", "threshold")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    model: str
    rows: _common_pb2.Matrix
    threshold: float
    def __init__(self, model: _Optional[str] = ..., rows: _Optional[_Union[_common_pb2.Matrix, _Mapping]] = ..., threshold: _Optional[float] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("anomaly_scores", "is_anomaly", "threshold", "model_name", "model_version", "double_anomaly_scores")
    ANOMALY_SCORES_FIELD_NUMBER: _ClassVar[int]
    IS_ANOMALY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_ANOMALY_SCORES_FIELD_NUMBER: _ClassVar[int]
    anomaly_scores: _containers.RepeatedScalarFieldContainer[float]
    is_anomaly: _containers.RepeatedScalarFieldContainer[bool]
    threshold: float
    model_name: str
    model_version: int
    double_anomaly_scores: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, anomaly_scores: _Optional[_Iterable[float]] = ..., is_anomaly: _Optional[_Iterable[bool]] = ..., threshold: _Optional[float] = ..., model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., double_anomaly_scores: _Optional[_Iterable[float]] = ...) -> None: ...

class DetectStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: DetectRequest
    def __init__(self, request: _Optional[_Union[DetectRequest, _Mapping]] = ...) -> None: ...

class DetectStreamResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: DetectResponse
    def __init__(self, response: _Optional[_Union[DetectResponse, _Mapping]] = ...) -> None: ...

class BatchDetectJob(_message.Message):
    __slots__ = ("id", "model", "model_name", "model_version", "input_uri", "output_uri", "state", "rows_done", "rows_total", "rows_per_second", "eta_seconds", "message", "create_time", "start_time", "end_time", "threshold", "anomalies", "id_column", "pass_through", "overwrite")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUT_URI_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_DONE_FIELD_NUMBER: _ClassVar[int]
    ROWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROWS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    PASS_THROUGH_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    model_name: str
    model_version: int
    input_uri: str
    output_uri: str
    state: BatchDetectJobState
    rows_done: int
    rows_total: int
    rows_per_second: float
    eta_seconds: float
    message: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    threshold: float
    anomalies: int
    id_column: str
    pass_through: bool
    overwrite: bool
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., input_uri: _Optional[str] = ..., output_uri: _Optional[str] = ..., state: _Optional[_Union[BatchDetectJobState, str]] = ..., rows_done: _Optional[int] = ..., rows_total: _Optional[int] = ..., rows_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., message: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., threshold: _Optional[float] = ..., anomalies: _Optional[int] = ..., id_column: _Optional[str] = ..., pass_through: _Optional[bool] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class CreateBatchDetectJobRequest(_message.Message):
    __slots__ = ("model", "input_uri", "output_uri", "id_column", "pass_through", "overwrite", "threshold")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_URI_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    PASS_THROUGH_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_uri: str
    output_uri: str
    id_column: str
    pass_through: bool
    overwrite: bool
    threshold: float
    def __init__(self, model: _Optional[str] = ..., input_uri: _Optional[str] = ..., output_uri: _Optional[str] = ..., id_column: _Optional[str] = ..., pass_through: _Optional[bool] = ..., overwrite: _Optional[bool] = ..., threshold: _Optional[float] = ...) -> None: ...

class CreateBatchDetectJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: BatchDetectJob
    def __init__(self, job: _Optional[_Union[BatchDetectJob, _Mapping]] = ...) -> None: ...

class GetBatchDetectJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetBatchDetectJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: BatchDetectJob
    def __init__(self, job: _Optional[_Union[BatchDetectJob, _Mapping]] = ...) -> None: ...

class ListBatchDetectJobsRequest(_message.Message):
    __slots__ = ("model_name", "page_size")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    page_size: int
    def __init__(self, model_name: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListBatchDetectJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[BatchDetectJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[BatchDetectJob, _Mapping]]] = ...) -> None: ...

class CancelBatchDetectJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelBatchDetectJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: BatchDetectJob
    def __init__(self, job: _Optional[_Union[BatchDetectJob, _Mapping]] = ...) -> None: ...

class WatchBatchDetectJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchBatchDetectJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: BatchDetectJob
    def __init__(self, job: _Optional[_Union[BatchDetectJob, _Mapping]] = ...) -> None: ...
