"""What only the Ray engine does: multiplexed routing, bounded caches per replica, training as cancellable Ray
tasks, job records that outlive the gateway replica. The shared end-to-end suite (test_server, test_errors,
test_cli, test_explain, test_import, test_cardio) already runs against `pynomaly serve --engine ray`.

Here the application runs on a Ray cluster started in the test process (node address 127.0.0.1, inside the
loopback-only namespace `make test` provides), so the tests can look at replicas and resources directly."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from pynomaly import Client
from pynomaly.client import TrainingError
from pynomaly.v1 import train_pb2

from conftest import require_ray

APP = "pynomaly-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    require_ray()
    import ray
    from ray import serve

    from pynomaly.ray_engine.app import AppArgs, build

    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             object_store_memory=256 * 1024 * 1024, logging_level="WARNING", log_to_driver=False)
    serve.start(proxy_location="Disabled", logging_config={"log_level": "WARNING"})
    address = f"127.0.0.1:{_free_port()}"
    args = AppArgs(listen=address, store=str(tmp_path_factory.mktemp("ray-store")), min_replicas=2,
                   max_replicas=2, max_models_per_replica=2, replica_cpus=0.25, train_cpus=1.0)
    serve.run(build(args), name=APP, route_prefix=None)
    with Client(address, timeout=60) as client:
        yield SimpleNamespace(ray=ray, serve=serve, address=address, args=args, client=client)
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(300, 4))


def test_calls_for_a_version_go_to_the_replica_that_holds_it(cluster, rows):
    client, serve = cluster.client, cluster.serve
    refs = [f"m{i}@{client.train(f'm{i}', rows, algorithm='hbos').version}" for i in range(3)]
    for ref in refs:
        for _ in range(5):
            client.detect(ref, rows[:2])
    scorer = serve.get_deployment_handle("Scorer", APP)

    def routed_to_holder(ref: str) -> bool:
        # `loaded` loads nothing: a call routed with this model id answers from whichever replica it reached.
        answers = [scorer.options(multiplexed_model_id=ref).loaded.remote().result() for _ in range(10)]
        assert all(len(a) <= cluster.args.max_models_per_replica for a in answers), answers
        return all(ref in a for a in answers)

    for ref in refs:
        client.detect(ref, rows[:1])
        _wait_for(lambda ref=ref: routed_to_holder(ref), what=f"{ref} routed to its replica")


def test_two_scorer_replicas_and_their_cpus(cluster):
    status = cluster.serve.status().applications[APP]
    scorer = status.deployments["Scorer"]
    assert scorer.replica_states.get("RUNNING") == 2
    assert status.deployments["Gateway"].replica_states.get("RUNNING") == 1
    # 2 CPUs: 0.25 per Scorer replica, none for the gateway (it only waits on I/O).
    assert cluster.ray.available_resources()["CPU"] == pytest.approx(1.5)


def test_training_is_a_ray_task_that_holds_a_cpu_and_cancel_stops_it(cluster):
    client, ray = cluster.client, cluster.ray
    X = np.random.default_rng(0).normal(size=(20000, 5))
    job = client.start_training("slow", X, params={"n_estimators": 3000})
    _wait_for(lambda: client.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=job.id)).job.state
              == train_pb2.TRAINING_JOB_STATE_RUNNING, what="the job to run")
    # Ray's view of the available resources lags the scheduler's (it is refreshed, not read live): wait for it.
    _wait_for(lambda: ray.available_resources().get("CPU", 0) == pytest.approx(0.5), 30,
              "the task to hold train_cpus=1")
    cancelled = client.train_stub.CancelTrainingJob(train_pb2.CancelTrainingJobRequest(id=job.id)).job
    assert cancelled.state == train_pb2.TRAINING_JOB_STATE_CANCELLED
    _wait_for(lambda: ray.available_resources().get("CPU", 0) == pytest.approx(1.5), 30, "the CPU to be released")
    with pytest.raises(TrainingError, match="cancelled"):
        client.wait(job.id)
    assert not [m for m in client.list_models() if m.name == "slow"]


def test_job_records_and_models_outlive_the_gateway_replica(cluster, rows):
    client, ray = cluster.client, cluster.ray
    card = client.train("durable", rows, algorithm="iforest", params={"n_estimators": 20, "random_state": 1})
    before = client.detect(f"durable@{card.version}", rows[:5]).anomaly_scores
    (name,) = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "#Gateway#" in a["name"]]
    ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)

    def answers() -> bool:
        try:
            return bool(client.list_models())
        except Exception:  # noqa: BLE001 — UNAVAILABLE while Serve starts a new replica
            return False

    _wait_for(lambda: not answers(), 30, "the killed replica to stop answering")  # ray.kill is asynchronous
    _wait_for(answers, 90, "a new gateway replica")
    job = client.train_stub.GetTrainingJob(train_pb2.GetTrainingJobRequest(id=card.job_id)).job
    assert job.state == train_pb2.TRAINING_JOB_STATE_SUCCEEDED and job.model_version == card.version
    np.testing.assert_array_equal(client.detect(f"durable@{card.version}", rows[:5]).anomaly_scores, before)


def test_training_survives_the_loss_of_its_progress_queue(cluster, rows):
    """The stages a training task reports go through a queue actor. Without it the job still trains (progress is
    best effort), and the gateway's health check fails so that Serve gives it a fresh queue."""
    from pynomaly.ray_engine.jobs import PROGRESS_QUEUE_PREFIX

    client, ray = cluster.client, cluster.ray
    (queue,) = [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith(PROGRESS_QUEUE_PREFIX)]
    ray.kill(ray.get_actor(queue["name"], namespace=queue["namespace"]))

    def trains() -> bool:
        try:
            return client.train("after-queue-loss", rows, algorithm="hbos").version >= 1
        except Exception:  # noqa: BLE001 — UNAVAILABLE while Serve replaces the unhealthy gateway
            return False

    _wait_for(trains, 120, "a training job after the progress queue died")
