"""The pure parts of the limits: which job records are pruned, and one set of limit fields everywhere."""

import dataclasses

from pynomaly import cli_limits
from pynomaly.jobs import TERMINAL
from pynomaly.limits import DAY_S, expired
from pynomaly.server.app import ServerConfig

NOW = 1_000_000_000.0


def _job(job_id, state, age_s):
    return {"id": job_id, "state": state, "create_time": NOW - age_s - 1, "end_time": 0.0 if state in (
        "QUEUED", "RUNNING") else NOW - age_s}


JOBS = [_job("a", "SUCCEEDED", 10), _job("b", "FAILED", 20), _job("c", "CANCELLED", 30),
        _job("old", "SUCCEEDED", 3 * DAY_S), _job("queued", "QUEUED", 5 * DAY_S), _job("running", "RUNNING", 99)]


def test_finished_records_beyond_the_count_go_oldest_first():
    assert expired(JOBS, TERMINAL, keep=2, ttl_s=30 * DAY_S, now=NOW) == ["c", "old"]
    assert expired(JOBS, TERMINAL, keep=0, ttl_s=30 * DAY_S, now=NOW) == ["a", "b", "c", "old"]


def test_finished_records_older_than_the_age_go_whatever_the_count():
    assert expired(JOBS, TERMINAL, keep=100, ttl_s=DAY_S, now=NOW) == ["old"]


def test_queued_and_running_records_are_never_pruned():
    assert not {"queued", "running"} & set(expired(JOBS, TERMINAL, keep=0, ttl_s=1.0, now=NOW))


def test_the_limit_flags_set_server_config_fields_of_the_same_names():
    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    assert set(cli_limits.FIELDS) <= fields


def test_the_ray_engine_takes_the_same_limit_fields():
    from pynomaly.ray_engine.config import LIMIT_FIELDS, AppArgs

    assert LIMIT_FIELDS == cli_limits.FIELDS
    assert set(LIMIT_FIELDS) <= set(AppArgs.model_fields)
