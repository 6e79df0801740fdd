"""gRPC servicers: each RPC converts the request, calls the dataplane, converts the response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import numpy as np

from pynomaly import algorithms
from pynomaly.dataplane import DataPlane, DetectResult
from pynomaly.errors import InvalidArgument
from pynomaly.imports import ImportSpec
from pynomaly.server.convert import (
    algorithm_to_proto,
    card_to_proto,
    job_to_proto,
    matrix_to_array,
    values_to_dict,
)
from pynomaly.server.status import grpc_errors
from pynomaly.v1 import (
    detect_pb2,
    detect_pb2_grpc,
    explain_pb2,
    explain_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
    train_pb2,
    train_pb2_grpc,
)

DOWNLOAD_CHUNK = 1 << 20

Context = grpc.aio.ServicerContext


async def _unimplemented(context: Context, what: str) -> None:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{what} is not implemented yet (see the README's API table)")


class TrainServicer(train_pb2_grpc.TrainServiceServicer):
    def __init__(self, dataplane: DataPlane):
        self.dp = dataplane

    @grpc_errors
    async def CreateTrainingJob(self, request: train_pb2.CreateTrainingJobRequest, context: Context):
        matrix = matrix_to_array(request.matrix, "matrix") if request.HasField("matrix") else None
        job = self.dp.create_training_job(
            model_name=request.model_name,
            algorithm=request.algorithm,
            params=values_to_dict(request.params),
            contamination=request.contamination,
            matrix=matrix,
            data_uri=request.data_uri,
            feature_names=list(request.feature_names),
            description=request.description,
        )
        return train_pb2.CreateTrainingJobResponse(job=job_to_proto(job))

    @grpc_errors
    async def GetTrainingJob(self, request: train_pb2.GetTrainingJobRequest, context: Context):
        return train_pb2.GetTrainingJobResponse(job=job_to_proto(self.dp.get_training_job(request.id)))

    @grpc_errors
    async def ListTrainingJobs(self, request: train_pb2.ListTrainingJobsRequest, context: Context):
        jobs = self.dp.list_training_jobs(request.model_name, request.page_size)
        return train_pb2.ListTrainingJobsResponse(jobs=[job_to_proto(j) for j in jobs])

    @grpc_errors
    async def CancelTrainingJob(self, request: train_pb2.CancelTrainingJobRequest, context: Context):
        return train_pb2.CancelTrainingJobResponse(job=job_to_proto(self.dp.cancel_training_job(request.id)))

    @grpc_errors
    async def WatchTrainingJob(
        self, request: train_pb2.WatchTrainingJobRequest, context: Context
    ) -> AsyncIterator[train_pb2.WatchTrainingJobResponse]:
        async for job in self.dp.watch_training_job(request.id):
            yield train_pb2.WatchTrainingJobResponse(job=job_to_proto(job))

    @grpc_errors
    async def ListAlgorithms(self, request: train_pb2.ListAlgorithmsRequest, context: Context):
        return train_pb2.ListAlgorithmsResponse(
            algorithms=[algorithm_to_proto(a) for a in algorithms.ALGORITHMS.values()]
        )


class ModelServicer(model_pb2_grpc.ModelServiceServicer):
    def __init__(self, dataplane: DataPlane):
        self.dp = dataplane

    @grpc_errors
    async def ListModels(self, request: model_pb2.ListModelsRequest, context: Context):
        return model_pb2.ListModelsResponse(models=[card_to_proto(c) for c in self.dp.list_models()])

    @grpc_errors
    async def ListModelVersions(self, request: model_pb2.ListModelVersionsRequest, context: Context):
        cards = self.dp.list_model_versions(request.name)
        return model_pb2.ListModelVersionsResponse(versions=[card_to_proto(c) for c in cards])

    @grpc_errors
    async def GetModelVersion(self, request: model_pb2.GetModelVersionRequest, context: Context):
        return model_pb2.GetModelVersionResponse(
            model_version=card_to_proto(self.dp.get_model_version(request.model))
        )

    @grpc_errors
    async def DeleteModelVersion(self, request: model_pb2.DeleteModelVersionRequest, context: Context):
        self.dp.delete_model_version(request.model)
        return model_pb2.DeleteModelVersionResponse()

    @grpc_errors
    async def SetModelAlias(self, request: model_pb2.SetModelAliasRequest, context: Context):
        card = self.dp.set_model_alias(request.name, request.alias, request.version)
        return model_pb2.SetModelAliasResponse(model_version=card_to_proto(card))

    @grpc_errors
    async def DeleteModelAlias(self, request: model_pb2.DeleteModelAliasRequest, context: Context):
        self.dp.delete_model_alias(request.name, request.alias)
        return model_pb2.DeleteModelAliasResponse()

    @grpc_errors
    async def ImportModel(self, request: model_pb2.ImportModelRequest, context: Context):
        spec = ImportSpec(
            name=request.name,
            onnx_model=request.onnx_model,
            score_output=request.score_output,
            feature_names=list(request.feature_names),
            threshold=request.threshold if request.HasField("threshold") else None,
            contamination=request.contamination,
            lower_is_anomalous=request.lower_is_anomalous,
            reference_rows=(matrix_to_array(request.reference_rows, "reference_rows")
                            if request.HasField("reference_rows") else None),
            description=request.description,
        )
        # Validation runs onnxruntime on probe rows: keep it off the event loop.
        card = await asyncio.to_thread(self.dp.import_model, spec)
        return model_pb2.ImportModelResponse(model_version=card_to_proto(card))

    @grpc_errors
    async def DownloadModel(
        self, request: model_pb2.DownloadModelRequest, context: Context
    ) -> AsyncIterator[model_pb2.DownloadModelResponse]:
        card, data = self.dp.model_file(request.model)
        yield model_pb2.DownloadModelResponse(model_version=card_to_proto(card), chunk=data[:DOWNLOAD_CHUNK])
        for start in range(DOWNLOAD_CHUNK, len(data), DOWNLOAD_CHUNK):
            yield model_pb2.DownloadModelResponse(chunk=data[start : start + DOWNLOAD_CHUNK])


def _detect_response(r: DetectResult) -> detect_pb2.DetectResponse:
    return detect_pb2.DetectResponse(
        anomaly_scores=r.scores.tolist(),
        is_anomaly=r.is_anomaly.tolist(),
        threshold=r.threshold,
        model_name=r.model_name,
        model_version=r.model_version,
    )


class DetectServicer(detect_pb2_grpc.DetectServiceServicer):
    def __init__(self, dataplane: DataPlane):
        self.dp = dataplane

    async def _detect(self, request: detect_pb2.DetectRequest) -> detect_pb2.DetectResponse:
        X = matrix_to_array(request.rows, "rows")
        threshold = request.threshold if request.HasField("threshold") else None
        return _detect_response(await self.dp.detect(request.model, X, threshold))

    @grpc_errors
    async def Detect(self, request: detect_pb2.DetectRequest, context: Context):
        return await self._detect(request)

    @grpc_errors
    async def DetectStream(
        self, request_iterator: AsyncIterator[detect_pb2.DetectStreamRequest], context: Context
    ) -> AsyncIterator[detect_pb2.DetectStreamResponse]:
        async for request in request_iterator:
            yield detect_pb2.DetectStreamResponse(response=await self._detect(request.request))

    async def CreateBatchDetectJob(self, request: detect_pb2.CreateBatchDetectJobRequest, context: Context):
        await _unimplemented(context, "DetectService.CreateBatchDetectJob")


_METHODS = {
    explain_pb2.EXPLAIN_METHOD_UNSPECIFIED: None,
    explain_pb2.EXPLAIN_METHOD_EXACT: "exact",
    explain_pb2.EXPLAIN_METHOD_TREE_SHAP: "tree_shap",
    explain_pb2.EXPLAIN_METHOD_KERNEL_SHAP: "kernel_shap",
}
_METHOD_ENUMS = {v: k for k, v in _METHODS.items() if v}
_LAYOUTS = (explain_pb2.EXPLAIN_LAYOUT_UNSPECIFIED, explain_pb2.EXPLAIN_LAYOUT_ROWS, explain_pb2.EXPLAIN_LAYOUT_PACKED)


class ExplainServicer(explain_pb2_grpc.ExplainServiceServicer):
    def __init__(self, dataplane: DataPlane):
        self.dp = dataplane

    @grpc_errors
    async def Explain(self, request: explain_pb2.ExplainRequest, context: Context):
        if request.method not in _METHODS:
            raise InvalidArgument(f"method: unknown value {request.method}")
        if request.layout not in _LAYOUTS:
            raise InvalidArgument(f"layout: unknown value {request.layout}")
        packed = request.layout == explain_pb2.EXPLAIN_LAYOUT_PACKED
        if packed and request.top_k:
            raise InvalidArgument("top_k: a packed response carries every feature; use top_k 0, or the ROWS layout")
        X = matrix_to_array(request.rows, "rows")
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        result, names, name, version = await self.dp.explain(request.model, X, request.top_k,
                                                             _METHODS[request.method], deadline)
        if packed:
            return explain_pb2.ExplainResponse(
                method=_METHOD_ENUMS[result.method], model_name=name, model_version=version,
                evaluations_per_row=result.evaluations_per_row, feature_names=names,
                anomaly_scores=result.scores.tolist(), base_values=result.base_values.tolist(),
                contributions=result.contributions.ravel().tolist(),
            )
        k = request.top_k or X.shape[1]
        order = np.argsort(-result.contributions, axis=1, kind="stable")[:, :k]
        rows = [
            explain_pb2.RowExplanation(
                anomaly_score=float(result.scores[i]),
                base_value=float(result.base_values[i]),
                attributions=[
                    explain_pb2.Attribution(feature=names[j], value=float(X[i, j]),
                                            contribution=float(result.contributions[i, j]))
                    for j in order[i]
                ],
            )
            for i in range(len(X))
        ]
        return explain_pb2.ExplainResponse(rows=rows, method=_METHOD_ENUMS[result.method], model_name=name,
                                           model_version=version, evaluations_per_row=result.evaluations_per_row)


__all__ = ["DetectServicer", "ExplainServicer", "ModelServicer", "TrainServicer"]
