"""The Serve config file in the repo is what Ray accepts, and its args are what the application builder takes."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from ray.serve import Application
from ray.serve.schema import ServeDeploySchema

from pynomaly.ray_engine.app import AppArgs, build

CONFIG = Path(__file__).resolve().parents[2] / "services" / "pynomaly" / "ray_engine" / "serve.yaml"


def test_the_serve_config_validates_and_builds():
    config = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    assert config.proxy_location == "Disabled"
    (app,) = config.applications
    assert app.import_path == "pynomaly.ray_engine.app:build"
    args = AppArgs(**app.args)
    assert args.listen == "127.0.0.1:50051"
    assert args.model_dump() == {**AppArgs().model_dump(), **app.args}, "the file states every argument"
    assert isinstance(build(args), Application)
    # `serve run`/`serve deploy` hand the builder the file's args as a plain dict.
    assert isinstance(build(app.args), Application)
    with pytest.raises(ValidationError, match="max_replicas"):
        build({**app.args, "max_replicas": 0})


def test_the_builder_scales_the_scorer_as_asked():
    built = build(AppArgs(min_replicas=2, max_replicas=5, target_ongoing_requests=3, replica_cpus=0.25))
    gateway = built._bound_deployment
    scorer = gateway.init_args[0]._bound_deployment
    assert (gateway.name, scorer.name) == ("Gateway", "Scorer")
    autoscaling = scorer._deployment_config.autoscaling_config
    assert (autoscaling.min_replicas, autoscaling.max_replicas, autoscaling.target_ongoing_requests) == (2, 5, 3)
    assert scorer.ray_actor_options["num_cpus"] == 0.25
    assert gateway.num_replicas == 1, "one gateway per store: it alone writes job records"


@pytest.mark.parametrize("args, message", [
    ({"replicas": 3}, "Extra inputs are not permitted"),
    ({"max_replicas": 0}, "greater than or equal to 1"),
    ({"replica_cpus": -1}, "greater than 0"),
])
def test_bad_args_are_rejected_by_name(args, message):
    with pytest.raises(ValidationError) as e:
        AppArgs(**args)
    assert message in str(e.value)
    assert next(iter(args)) in str(e.value)


def test_the_gateway_asks_for_the_resources_that_place_it():
    default = build(AppArgs())._bound_deployment
    assert default.ray_actor_options == {"num_cpus": 0, "resources": {}}
    pinned = build(AppArgs(gateway_resources={"pynomaly-gateway": 0.01}))._bound_deployment
    assert pinned.ray_actor_options == {"num_cpus": 0, "resources": {"pynomaly-gateway": 0.01}}
    with pytest.raises(ValidationError, match="gateway_resources"):
        AppArgs(gateway_resources={"pynomaly-gateway": "head"})
