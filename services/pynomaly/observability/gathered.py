"""Prometheus metrics under `pynomaly serve --workers N`: one /metrics for all N processes.

Each serving process keeps a registry of its own (its RPCs, scored rows, served-score histograms, model cache,
process_* figures) and hands it, as JSON, to whoever connects to its private Unix socket (in the primary's 0700
directory). The primary's /metrics gathers those with its own at scrape time into one family per name, every sample
labelled `worker`: "0" the primary, "1" to "N-1" the serving processes (a restarted one keeps its number; its
counters start again from zero, which Prometheus' rate() takes as a reset). A serving process that does not answer
within SCRAPE_TIMEOUT_S (all of them together) is left out of that scrape.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 2.0
WORKER_LABEL = "worker"


def families_json(registry: Any) -> bytes:
    """The registry's families now, as JSON (name, help, type, unit, samples as [name, labels, value])."""
    return json.dumps([{"name": f.name, "help": f.documentation, "type": f.type, "unit": f.unit,
                        "samples": [[s.name, s.labels, s.value] for s in f.samples]}
                       for f in registry.collect()]).encode()


async def serve_unix(registry: Any, path: str) -> asyncio.AbstractServer:
    """Answer every connection on the Unix socket `path` with families_json(registry), then close it."""
    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(families_json(registry))
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_unix_server(send, path=path)


def read_families(path: str, deadline: float) -> list[Metric]:
    """A serving process's families from its socket; OSError (refused, timed out at `deadline`) when it does not
    answer in time."""
    chunks = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(max(deadline - time.monotonic(), 0.001))
        s.connect(path)
        while chunk := s.recv(1 << 16):
            chunks.append(chunk)
            s.settimeout(max(deadline - time.monotonic(), 0.001))
    families = []
    for f in json.loads(b"".join(chunks)):
        family = Metric(f["name"], f["help"], f["type"], f["unit"])
        family.samples = [Sample(name, labels, value) for name, labels, value in f["samples"]]
        families.append(family)
    return families


class Gathered:
    """A registry for prometheus_client's HTTP server: the primary's own families and the serving processes',
    `others` being their (worker label, socket path)."""

    def __init__(self, own: Any, others: list[tuple[str, str]]):
        self._own = own
        self._others = others

    def collect(self) -> Iterable[Metric]:
        deadline = time.monotonic() + SCRAPE_TIMEOUT_S
        sources: list[tuple[str, Iterable[Metric]]] = [("0", self._own.collect())]
        for worker, path in self._others:
            try:
                sources.append((worker, read_families(path, deadline)))
            except (OSError, ValueError) as e:  # restarting, stopped, or too slow: this scrape goes without it
                log.debug("metrics of serving process %s not read: %s", worker, e)
        merged: dict[str, Metric] = {}
        for worker, families in sources:
            for f in families:
                into = merged.get(f.name)
                if into is None:
                    into = merged[f.name] = Metric(f.name, f.documentation, f.type, f.unit)
                into.samples += [Sample(s.name, {**s.labels, WORKER_LABEL: worker}, s.value, s.timestamp, s.exemplar)
                                 for s in f.samples]
        return list(merged.values())

    def restricted_registry(self, names: Iterable[str]) -> _Restricted:
        """Only the samples named (the `name[]` query parameters of a scrape)."""
        return _Restricted(self, set(names))


class _Restricted:
    def __init__(self, gathered: Gathered, names: set[str]):
        self._gathered = gathered
        self._names = names

    def collect(self) -> Iterable[Metric]:
        out = []
        for f in self._gathered.collect():
            samples = [s for s in f.samples if s.name in self._names]
            if samples:
                kept = Metric(f.name, f.documentation, f.type, f.unit)
                kept.samples = samples
                out.append(kept)
        return out
