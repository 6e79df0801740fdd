"""Watch streams of job records (training jobs, batch jobs): the record as it is, then every change, ending after a
terminal state. Only the event loop changes records, so one queue per stream, fed by `notify`, is enough."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from typing import Any


class Watchers:
    def __init__(self, terminal: Collection[str]):
        self._terminal = terminal
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}

    def notify(self, job: dict[str, Any]) -> None:
        """Hand a copy of the changed record to every stream watching it."""
        for q in self._queues.get(job["id"], ()):
            q.put_nowait(dict(job))

    async def watch(self, job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """`job` (the record now), then each change until the job ends."""
        job_id = job["id"]
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues.setdefault(job_id, set()).add(queue)
        try:
            yield job
            while job["state"] not in self._terminal:
                job = await queue.get()
                yield job
        finally:
            self._queues[job_id].discard(queue)
            if not self._queues[job_id]:
                del self._queues[job_id]
