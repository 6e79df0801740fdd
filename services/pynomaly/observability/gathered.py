"""Prometheus metrics under `pynomaly serve --workers N`: one /metrics for all N processes.

Each serving process keeps a registry of its own (its RPCs, scored rows, served-score histograms, model cache,
process_* figures) and hands it, as JSON, to whoever connects to its private Unix socket (in the primary's 0700
directory), with its served-score histograms as the web console reads them. The primary's /metrics gathers those
with its own at scrape time into one family per name, every sample labelled `worker`: "0" the primary, "1" to "N-1"
the serving processes (a restarted one keeps its number; its counters start again from zero, which Prometheus'
rate() takes as a reset); the console's drift plot adds up every process's histogram of the version. A serving
process that does not answer within SCRAPE_TIMEOUT_S (all of them together) is left out of that read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the console alone (metrics off) never imports prometheus_client
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 2.0
WORKER_LABEL = "worker"


def payload(metrics: Any) -> bytes:
    """A serving process's metrics now, as JSON: "families" (name, help, type, unit, samples as [name, labels,
    value]) and "served" ([name, version, the console's served() dict] per version it scored)."""
    return json.dumps({
        "families": [{"name": f.name, "help": f.documentation, "type": f.type, "unit": f.unit,
                      "samples": [[s.name, s.labels, s.value] for s in f.samples]}
                     for f in metrics.registry.collect()],
        "served": [[name, version, metrics.own_served(name, version)] for name, version in list(metrics._scores)],
    }).encode()


async def serve_unix(metrics: Any, path: str) -> asyncio.AbstractServer:
    """Answer every connection on the Unix socket `path` with payload(metrics), then close it."""
    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(payload(metrics))
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_unix_server(send, path=path)


def read(path: str, deadline: float) -> dict[str, Any]:
    """A serving process's payload from its socket; OSError (refused, timed out at `deadline`) when it does not
    answer in time."""
    chunks = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(max(deadline - time.monotonic(), 0.001))
        s.connect(path)
        while chunk := s.recv(1 << 16):
            chunks.append(chunk)
            s.settimeout(max(deadline - time.monotonic(), 0.001))
    return dict(json.loads(b"".join(chunks)))


def read_families(path: str, deadline: float) -> list[Metric]:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample

    families = []
    for f in read(path, deadline)["families"]:
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
        from prometheus_client.metrics_core import Metric
        from prometheus_client.samples import Sample

        deadline = time.monotonic() + SCRAPE_TIMEOUT_S
        sources: list[tuple[str, Iterable[Metric]]] = [("0", self._own.collect())]
        for worker, path in self._others:
            try:
                sources.append((worker, read_families(path, deadline)))
            except (OSError, ValueError, KeyError, TypeError) as e:  # restarting, stopped, too slow, or garbled
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
        from prometheus_client.metrics_core import Metric

        out = []
        for f in self._gathered.collect():
            samples = [s for s in f.samples if s.name in self._names]
            if samples:
                kept = Metric(f.name, f.documentation, f.type, f.unit)
                kept.samples = samples
                out.append(kept)
        return out


def served(own: dict[str, Any] | None, others: list[tuple[str, str]], name: str, version: int) -> dict[str, Any] | None:
    """The console's served-score histogram of a version over every process: `own` (this process's) plus each
    serving process's (the same bounds: the version's own), from their sockets; None when no process scored it."""
    total = own
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    for worker, path in others:
        try:
            theirs = next((h for n, v, h in read(path, deadline)["served"] if n == name and v == version), None)
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.debug("served scores of serving process %s not read: %s", worker, e)
            continue
        if theirs is None or (total is not None and theirs["bounds"] != total["bounds"]):
            continue
        total = theirs if total is None else {
            "bounds": total["bounds"], "rows": total["rows"] + theirs["rows"],
            "counts": [a + b for a, b in zip(total["counts"], theirs["counts"], strict=True)],
            "flagged": total["flagged"] + theirs["flagged"]}
    return total
