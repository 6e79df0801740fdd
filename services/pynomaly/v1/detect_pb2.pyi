from pynomaly.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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

class CreateBatchDetectJobRequest(_message.Message):
    __slots__ = ("model", "input_uri", "output_uri")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_URI_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_uri: str
    output_uri: str
    def __init__(self, model: _Optional[str] = ..., input_uri: _Optional[str] = ..., output_uri: _Optional[str] = ...) -> None: ...

class CreateBatchDetectJobResponse(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...
