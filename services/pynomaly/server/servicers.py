"""gRPC servicers: each RPC converts the request, calls the dataplane, converts the response (server/convert.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from pynomaly import algorithms
from pynomaly.dataplane import DataPlane
from pynomaly.server import convert
from pynomaly.server.convert import batch_job_to_proto, card_to_proto, job_to_proto
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

Context: TypeAlias = grpc.aio.ServicerContext


class TrainServicer(train_pb2_grpc.TrainServiceServicer):
    def __init__(self, dataplane: DataPlane):
        self.dp = dataplane

    @grpc_errors
    async def CreateTrainingJob(self, request: train_pb2.CreateTrainingJobRequest, context: Context):
        job = self.dp.create_training_job(**convert.training_job_args(request))
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
            algorithms=[convert.algorithm_to_proto(a) for a in algorithms.ALGORITHMS.values()]
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
        # Validation runs onnxruntime on probe rows: keep it off the event loop.
        card = await asyncio.to_thread(self.dp.import_model, convert.import_spec(request))
        return model_pb2.ImportModelResponse(model_version=card_to_proto(card))

    @grpc_errors
    async def DownloadModel(
        self, request: model_pb2.DownloadModelRequest, context: Context
    ) -> AsyncIterator[model_pb2.DownloadModelResponse]:
        card, data = self.dp.model_file(request.model)
        yield model_pb2.DownloadModelResponse(model_version=card_to_proto(card), chunk=data[:DOWNLOAD_CHUNK])
        for start in range(DOWNLOAD_CHUNK, len(data), DOWNLOAD_CHUNK):
            yield model_pb2.DownloadModelResponse(chunk=data[start : start + DOWNLOAD_CHUNK])


class DetectServicer(detect_pb2_grpc.DetectServiceServicer):
    def __init__(self, dataplane: DataPlane):
        self.dp = dataplane

    async def _detect(self, request: detect_pb2.DetectRequest) -> detect_pb2.DetectResponse:
        return convert.detect_response(await self.dp.detect(*convert.detect_args(request)))

    @grpc_errors
    async def Detect(self, request: detect_pb2.DetectRequest, context: Context):
        return await self._detect(request)

    @grpc_errors
    async def DetectStream(
        self, request_iterator: AsyncIterator[detect_pb2.DetectStreamRequest], context: Context
    ) -> AsyncIterator[detect_pb2.DetectStreamResponse]:
        async for request in request_iterator:
            yield detect_pb2.DetectStreamResponse(response=await self._detect(request.request))

    @grpc_errors
    async def CreateBatchDetectJob(self, request: detect_pb2.CreateBatchDetectJobRequest, context: Context):
        job = await self.dp.create_batch_detect_job(convert.batch_request(request))
        return detect_pb2.CreateBatchDetectJobResponse(job=batch_job_to_proto(job))

    @grpc_errors
    async def GetBatchDetectJob(self, request: detect_pb2.GetBatchDetectJobRequest, context: Context):
        return detect_pb2.GetBatchDetectJobResponse(job=batch_job_to_proto(self.dp.get_batch_detect_job(request.id)))

    @grpc_errors
    async def ListBatchDetectJobs(self, request: detect_pb2.ListBatchDetectJobsRequest, context: Context):
        jobs = self.dp.list_batch_detect_jobs(request.model_name, request.page_size)
        return detect_pb2.ListBatchDetectJobsResponse(jobs=[batch_job_to_proto(j) for j in jobs])

    @grpc_errors
    async def CancelBatchDetectJob(self, request: detect_pb2.CancelBatchDetectJobRequest, context: Context):
        job = await self.dp.cancel_batch_detect_job(request.id)
        return detect_pb2.CancelBatchDetectJobResponse(job=batch_job_to_proto(job))

    @grpc_errors
    async def WatchBatchDetectJob(
        self, request: detect_pb2.WatchBatchDetectJobRequest, context: Context
    ) -> AsyncIterator[detect_pb2.WatchBatchDetectJobResponse]:
        async for job in self.dp.watch_batch_detect_job(request.id):
            yield detect_pb2.WatchBatchDetectJobResponse(job=batch_job_to_proto(job))


class ExplainServicer(explain_pb2_grpc.ExplainServiceServicer):
    def __init__(self, dataplane: DataPlane):
        self.dp = dataplane

    @grpc_errors
    async def Explain(self, request: explain_pb2.ExplainRequest, context: Context):
        args = convert.explain_args(request)
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        result = await self.dp.explain(args.model, args.rows, args.top_k, args.method, deadline)
        return convert.explain_response(args, *result)


__all__ = ["DetectServicer", "ExplainServicer", "ModelServicer", "TrainServicer"]
