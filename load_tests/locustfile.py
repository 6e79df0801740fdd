"""Locust load test of a Pynomaly server over gRPC: Detect 1 row, Detect 1,000 rows and Explain, on a model it
trains first (IForest, 10,000 rows × 20 features, seeded).

    locust -f load_tests/locustfile.py --headless --host 127.0.0.1:50051 --users 10 --run-time 60s

`load_tests/run.py` (`make load`) starts a server, runs this bounded and headless, and summarizes.

Every call goes through `LocustStub`, which fires Locust's request event with the call's time, response size and
outcome. Explain answering UNIMPLEMENTED (a server without issue #4) counts as "not available", not as a failure:
the first such answer is logged once and the Explain task disables itself for the rest of the run.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from typing import Any

import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel exists: gRPC's I/O must cooperate with Locust's greenlets

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from locust import User, constant_throughput, events, task  # noqa: E402
from locust.exception import RescheduleTaskImmediately  # noqa: E402

from pynomaly.client import MAX_MESSAGE_BYTES, Client, to_matrix  # noqa: E402
from pynomaly.v1 import detect_pb2, detect_pb2_grpc, explain_pb2, explain_pb2_grpc  # noqa: E402

log = logging.getLogger("pynomaly.load")

MODEL_NAME = "load-test"
TRAIN_ROWS, FEATURES = 10_000, 20
CALL_TIMEOUT_S = 30.0
NOT_AVAILABLE_MARK = "Explain is not available on this server (UNIMPLEMENTED)"

# Filled once at init (before the run-time clock starts): the model and prebuilt requests.
state: dict[str, Any] = {}
# Exact latencies (ms) of successful requests, per request name.
latencies: dict[str, list[float]] = defaultdict(list)


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument("--results-file", default="", help="when the test stops, write per request name its "
                        "count, failures, RPS and exact p50/p95/p99 here (JSON)")
    parser.add_argument("--rate-per-user", type=float, default=0.0, help="calls a second each user makes at most "
                        "(an open-loop pace, `make soak`); 0: closed loop, the next call as soon as one returns")


@events.init.add_listener
def _train_model(environment: Any, **_: Any) -> None:
    """Train the model the users call, before users start and before --run-time counts."""
    host = environment.host or getattr(environment.parsed_options, "host", None)
    if not host:
        raise SystemExit("set --host HOST:PORT (the Pynomaly server, e.g. 127.0.0.1:50051)")
    host = host.removeprefix("grpc://")
    environment.host = host
    rng = np.random.default_rng(0)
    X = rng.normal(size=(TRAIN_ROWS, FEATURES))
    try:
        with Client(host, timeout=300) as client:
            card = client.train(MODEL_NAME, X, algorithm="iforest", params={"n_estimators": 100, "random_state": 0})
    except Exception as e:  # no users can run without the model: stop here, not with 0 requests later
        raise SystemExit(f"cannot train the load-test model on {host}: {e}") from None
    model = f"{card.name}@{card.version}"
    log.info("trained %s (%d rows × %d features) on %s", model, TRAIN_ROWS, FEATURES, host)
    score = np.vstack([rng.normal(size=(950, FEATURES)), rng.uniform(-6, 6, size=(50, FEATURES))])
    state.update(
        model=model,
        one_row=[detect_pb2.DetectRequest(model=model, rows=to_matrix(score[i : i + 1])[0]) for i in range(64)],
        thousand_rows=[detect_pb2.DetectRequest(model=model, rows=to_matrix(np.roll(score, k, axis=0))[0])
                       for k in range(4)],
        explain=[explain_pb2.ExplainRequest(model=model, rows=to_matrix(score[i : i + 1])[0]) for i in range(16)],
        explain_available=True,
    )


@events.request.add_listener
def _record(name: str, response_time: float, exception: Any, **_: Any) -> None:
    if exception is None:
        latencies[name].append(response_time)


@events.test_stop.add_listener
def _write_results(environment: Any, **_: Any) -> None:
    """Locust's final counts (its CSV is written periodically, so it can miss the last second) and exact
    percentiles (Locust rounds response times under 100 ms to whole milliseconds)."""
    path = getattr(environment.parsed_options, "results_file", "")
    if not path:
        return
    stats = environment.stats
    entries = {name: entry for (name, _), entry in stats.entries.items()}
    out: dict[str, Any] = {"explain_available": state.get("explain_available", True), "requests": {}}
    for name, entry in [*sorted(entries.items()), ("Aggregated", stats.total)]:
        times = [t for n, ts in latencies.items() if name in (n, "Aggregated") for t in ts]
        p50, p95, p99 = np.percentile(times, [50, 95, 99]).tolist() if times else [float("nan")] * 3
        out["requests"][name] = {"requests": entry.num_requests, "failures": entry.num_failures,
                                 "rps": entry.total_rps, "p50": p50, "p95": p95, "p99": p99}
    with open(path, "w") as f:
        json.dump(out, f, indent=2)


class NotAvailable(Exception):
    """The server does not implement the method (UNIMPLEMENTED): not a failure of the run."""


class LocustStub:
    """A generated stub whose calls each fire Locust's request event (name, time, response size, exception)."""

    def __init__(self, stub: Any, environment: Any, not_available: frozenset[grpc.StatusCode] = frozenset()):
        self._stub = stub
        self._request_event = environment.events.request
        self._not_available = not_available

    def call(self, method: str, request: Any, name: str) -> Any:
        start = time.perf_counter()
        response, exception, length = None, None, 0
        try:
            response = getattr(self._stub, method)(request, timeout=CALL_TIMEOUT_S)
            length = response.ByteSize()
        except grpc.RpcError as e:
            if e.code() in self._not_available:  # type: ignore[attr-defined]
                raise NotAvailable(f"{method}: {e.details()}") from e  # type: ignore[attr-defined]
            exception = e
        self._request_event.fire(request_type="grpc", name=name, response_time=(time.perf_counter() - start) * 1000,
                                 response_length=length, exception=exception, context={})
        return response


class PynomalyUser(User):
    def wait_time(self) -> float:
        """Closed loop by default: the next call as soon as the last one is answered, load set by --users; with
        --rate-per-user R, each user paces itself to R calls a second (`make soak`)."""
        rate = getattr(self.environment.parsed_options, "rate_per_user", 0.0)
        return constant_throughput(rate)(self) if rate > 0 else 0.0

    def on_start(self) -> None:
        self.channel = grpc.insecure_channel(self.host, options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES), ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ])
        self.detect = LocustStub(detect_pb2_grpc.DetectServiceStub(self.channel), self.environment)
        self.explainer = LocustStub(explain_pb2_grpc.ExplainServiceStub(self.channel), self.environment,
                                    not_available=frozenset({grpc.StatusCode.UNIMPLEMENTED}))
        self.i = 0

    def on_stop(self) -> None:
        self.channel.close()

    def _next(self, requests: list[Any]) -> Any:
        self.i += 1
        return requests[self.i % len(requests)]

    @task(10)
    def detect_1_row(self) -> None:
        self.detect.call("Detect", self._next(state["one_row"]), "Detect 1 row")

    @task(2)
    def detect_1000_rows(self) -> None:
        self.detect.call("Detect", self._next(state["thousand_rows"]), "Detect 1000 rows")

    @task(1)
    def explain_1_row(self) -> None:
        if not state["explain_available"]:
            raise RescheduleTaskImmediately()  # disabled: pick another task at once
        try:
            self.explainer.call("Explain", self._next(state["explain"]), "Explain 1 row")
        except NotAvailable as e:
            if state["explain_available"]:
                state["explain_available"] = False
                log.warning("%s: %s; the Explain task is disabled for the rest of the run", NOT_AVAILABLE_MARK, e)
            raise RescheduleTaskImmediately() from None
