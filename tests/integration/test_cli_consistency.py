"""One CLI: the connection flags in the same places for every command, one JSON style for every --json output,
text that says what --json says; and imported models that Explain can explain. Real `pynomaly` processes against
the real server."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper

from pynomaly.v1 import train_pb2

RNG = np.random.default_rng(14)
X = RNG.normal(size=(200, 3))
COLUMNS = ["temp", "pressure", "flow"]
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")

# A detector trained elsewhere: the squared distance from the origin, float64, one [N, 1] output.
SQUARED_NORM = helper.make_model(helper.make_graph(
    [helper.make_node("Mul", ["rows", "rows"], ["sq"]),
     helper.make_node("ReduceSum", ["sq", "axes"], ["distance"], keepdims=1)],
    "norm", [helper.make_tensor_value_info("rows", TensorProto.DOUBLE, ["batch", 3])],
    [helper.make_tensor_value_info("distance", TensorProto.DOUBLE, ["batch", 1])],
    [onnx.numpy_helper.from_array(np.array([1], np.int64), "axes")],
), opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def cli(*argv, env=None, check=True):
    out = subprocess.run([sys.executable, "-m", "pynomaly.cli", *argv], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=120)
    if check:
        assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def files(server, tmp_path_factory):
    d = tmp_path_factory.mktemp("consistency")
    pd.DataFrame(X, columns=COLUMNS).to_csv(d / "train.csv", index=False)
    pd.DataFrame(np.vstack([X[:4], [[9.0, 9.0, 9.0]]]), columns=COLUMNS).to_csv(d / "new.csv", index=False)
    pd.DataFrame(X[:50], columns=COLUMNS).to_csv(server.data_root / "consistency.csv", index=False)
    (d / "norm.onnx").write_bytes(SQUARED_NORM)
    return d


@pytest.fixture(scope="module")
def model(server, client, files):
    """hbos, a detector with exact explanations, as version 1; the alias `production` points at it."""
    name = f"consistency-{server.engine}"
    card = client.train(name, X, algorithm="hbos", feature_names=COLUMNS)
    client.set_alias(name, "production", card.version)
    return name


def _walk(value, path="$"):
    """Every key snake_case; no integer written as a string (protobuf's JSON mapping of int64)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert SNAKE.match(k), f"{path}: key {k!r} is not snake_case"
            _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(v, f"{path}[{i}]")
    else:
        assert not (isinstance(value, str) and value.isdigit()), f"{path}: integer as a string {value!r}"


def _commands(model, files):
    """Every client command, as (argv before the flags' place, argv after it)."""
    return {
        "train": (["train"], ["--name", model, "--algorithm", "hbos", "--data", str(files / "train.csv")]),
        "detect": (["detect"], ["--model", model, "--data", str(files / "new.csv")]),
        "explain": (["explain"], ["--model", model, "--data", str(files / "new.csv")]),
        "algorithms": (["algorithms"], []),
        "models list": (["models"], ["list"]),
        "models get": (["models"], ["get", f"{model}:production"]),
        "models alias": (["models"], ["alias", model, "staging", "1"]),
        "batch list": (["batch"], ["list"]),
        "batch": (["batch"], ["--model", model, "--input", "consistency.csv", "--output", "out.csv",
                              "--overwrite"]),
    }


@pytest.mark.parametrize("command", ["train", "detect", "explain", "algorithms", "models list", "models get",
                                     "models alias", "batch list", "batch"])
def test_server_flag_before_or_after_the_action_and_from_the_environment(server, model, files, command):
    head, tail = _commands(model, files)[command]
    cli(*head, "--server", server.address, *tail)
    cli(*head, *tail, "--server", server.address)
    cli(*head, *tail, env={"PYNOMALY_SERVER": server.address})
    # The flag wins over the variable; and a wrong address fails, so the ones above were used.
    cli(*head, *tail, "--server", server.address, env={"PYNOMALY_SERVER": "127.0.0.1:1"})
    refused = cli(*head, *tail, env={"PYNOMALY_SERVER": "127.0.0.1:1"}, check=False)
    assert refused.returncode == 1 and "UNAVAILABLE" in refused.stderr


def test_every_json_output_is_snake_case_with_integers(server, client, model, files):
    s = ["--server", server.address]
    outputs = {
        "train": cli("train", *s, "--name", model, "--algorithm", "hbos", "--data", str(files / "train.csv"),
                     "--json").stdout,
        "detect": cli("detect", *s, "--model", model, "--data", str(files / "new.csv"), "--json").stdout,
        "explain": cli("explain", *s, "--model", model, "--data", str(files / "new.csv"), "--json").stdout,
        "algorithms": cli("algorithms", *s, "--json").stdout,
        "models list": cli("models", "list", *s, "--json").stdout,
        "models get": cli("models", "get", *s, f"{model}@1").stdout,
        "batch": cli("batch", *s, "--model", model, "--input", "consistency.csv", "--output", "out.csv",
                     "--overwrite", "--json").stdout,
        "batch list": cli("batch", "list", *s, "--json").stdout,
    }
    parsed = {}
    for command, out in outputs.items():
        if command in ("algorithms", "models list", "batch list"):
            parsed[command] = [json.loads(line) for line in out.splitlines()]
            assert parsed[command], command
        else:
            parsed[command] = json.loads(out)
        _walk(parsed[command], command)
    job = parsed["batch"]
    assert cli("batch", "get", job["id"], *s, "--json").stdout.strip() == json.dumps(job)
    assert isinstance(job["rows_done"], int) and job["rows_done"] == 50

    card = parsed["models get"]
    expected = client.get_model(f"{model}@1")
    assert card["version"] == 1 and card["training_rows"] == len(X) == expected.training_rows
    assert card["onnx_size_bytes"] == expected.onnx_size_bytes and isinstance(card["onnx_size_bytes"], int)
    assert card["export_check"]["rows"] == expected.export_check.rows and card["aliases"] == list(expected.aliases)
    assert "production" in card["aliases"]
    assert card["feature_names"] == COLUMNS and card == json.loads(cli("models", "get", f"{model}@1", *s,
                                                                           "--json").stdout)
    # Hyperparameters as their algorithm declares them: n_bins is an int.
    assert card["params"]["n_bins"] == 10 and isinstance(card["params"]["n_bins"], int)
    ints = [p["default_value"] for a in parsed["algorithms"] for p in a["parameters"]
            if p["type"] == "int" and p["default_value"] is not None]
    assert ints and all(isinstance(v, int) for v in ints)
    iforest = next(a for a in parsed["algorithms"] if a["name"] == "iforest")
    assert next(p for p in iforest["parameters"] if p["name"] == "n_estimators")["default_value"] == 100
    hbos = next(a for a in parsed["algorithms"] if a["name"] == "hbos")
    assert {"exportable", "export_note", "exact_explanation"} <= hbos.keys()
    latest = client.get_model(model)
    assert any(c["name"] == model and c["version"] == latest.version and c["aliases"] == list(latest.aliases)
               for c in parsed["models list"])


def test_algorithms_text_says_what_json_says(server, client):
    text = cli("algorithms", "--server", server.address).stdout
    blocks = {block.split()[0]: block for block in re.split(r"\n(?=\S)", text.strip())}
    algorithms = client.list_algorithms()
    assert set(blocks) == {a.name for a in algorithms}
    for a in algorithms:
        block = blocks[a.name]
        assert ("NOT SERVED" in block) == (not a.exportable), block
        assert ("served frozen" in block) == (a.serving == train_pb2.SERVING_FROZEN), block
        assert ("learns from labels" in block) == a.needs_labels, block
        assert a.export_note in block
        assert (f"explain: {'exact' if a.exact_explanation else 'SHAP (approximate)'}") in block
        for p in a.parameters:
            if p.type == "int" and p.default_value.HasField("number_value"):
                assert f"{p.name}={int(p.default_value.number_value)}," in block + ",", block
            if p.type == "list[int]":  # e.g. the AutoEncoder's hidden_neuron_list=[64, 32], not [64.0, 32.0]
                ints = [int(v.number_value) for v in p.default_value.list_value.values]
                assert f"{p.name}={json.dumps(ints)}," in block + ",", block
    assert any(not a.exportable for a in algorithms) and any(a.exact_explanation for a in algorithms)
    assert {a.serving for a in algorithms} == {train_pb2.SERVING_EXACT, train_pb2.SERVING_FROZEN,
                                               train_pb2.SERVING_REFUSED}


def test_models_list_shows_every_alias(server, client, model):
    client.set_alias(model, "canary", client.get_model(model).version)
    rows = {line.split("\t")[0].split("@")[0]: line for line in
            cli("models", "list", "--server", server.address).stdout.splitlines()}
    line = rows[model]
    aliases = line.rsplit("\taliases ", 1)[1]
    versions = {a: v.version for v in client.list_model_versions(model) for a in v.aliases}
    assert aliases == ", ".join(f"{a}=@{versions[a]}" for a in sorted(versions))
    assert "production=@1" in aliases and "canary=@" in aliases


def test_detect_writes_true_and_false_and_says_so(server, model, files):
    out = cli("detect", "--server", server.address, "--model", f"{model}@1", "--data", str(files / "new.csv"),
              "--threshold", "5").stdout.splitlines()
    assert out[0] == "anomaly_score,is_anomaly" and len(out) == 6
    assert {line.rsplit(",", 1)[1] for line in out[1:]} == {"true", "false"} and out[-1].endswith(",true")
    assert "is_anomaly (true or false" in " ".join(cli("detect", "--help").stdout.split())


def test_batch_csv_writes_true_and_false_as_detect_does(server, model, files):
    pd.DataFrame(np.vstack([X[:4], [[9.0, 9.0, 9.0]]]), columns=COLUMNS).to_csv(server.data_root / "flags.csv",
                                                                              index=False)
    cli("batch", "--server", server.address, "--model", f"{model}@1", "--input", "flags.csv", "--output",
        "flags-out.csv", "--overwrite", "--threshold", "5")
    out = (server.output_root / "flags-out.csv").read_text().splitlines()
    assert out[0].endswith('"anomaly_score","is_anomaly"') and len(out) == 6, out[0]
    assert {line.rsplit(",", 1)[1] for line in out[1:]} == {"true", "false"} and out[-1].endswith(",true")


def test_import_takes_feature_names_from_the_reference_header_and_explains(server, client, files):
    name = f"imported-ref-{server.engine}"
    out = cli("models", "import", "--name", name, "--onnx", str(files / "norm.onnx"), "--reference",
              str(files / "train.csv"), "--server", server.address)
    card = client.get_model(out.stdout.strip())
    assert list(card.feature_names) == COLUMNS
    result = json.loads(cli("explain", "--server", server.address, "--model", name, "--data",
                            str(files / "new.csv"), "--json").stdout)
    assert result["method"] == "kernel_shap"
    rows = pd.read_csv(files / "new.csv").to_numpy()
    for row, x in zip(result["rows"], rows, strict=True):
        assert row["anomaly_score"] == pytest.approx(float(x @ x), rel=1e-9)
        total = row["base_value"] + sum(a["contribution"] for a in row["attributions"])
        assert total == pytest.approx(row["anomaly_score"], rel=1e-6)  # Shapley values add up to the score
    # The largest contribution of the far row is one of its features, all equal: 81 - E[b²] each.
    assert {a["feature"] for a in result["rows"][-1]["attributions"]} == set(COLUMNS)


def test_import_without_reference_rows_says_why_it_cannot_explain(server, client, files):
    name = f"imported-bare-{server.engine}"
    cli("models", "import", "--name", name, "--onnx", str(files / "norm.onnx"), "--threshold", "9",
        "--feature-names", ",".join(COLUMNS), "--server", server.address)
    refused = cli("explain", "--server", server.address, "--model", name, "--data", str(files / "new.csv"),
                  check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: FAILED_PRECONDITION: ")
    assert "imported without reference rows: Kernel SHAP needs them; import again with reference_rows" in \
        refused.stderr
    assert "predates" not in refused.stderr
    assert server.alive() and client.detect(name, X[:2]).anomaly_scores.shape == (2,)
