"""The `pynomaly` command line against the real server, as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pyod.models.hbos import HBOS

from pynomaly.cli import main

X = np.random.default_rng(11).normal(size=(300, 3))
NEW = np.vstack([X[:20], [[9.0, 9.0, 9.0]]])
COLUMNS = ["temp", "pressure", "flow"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    pd.DataFrame(X, columns=COLUMNS).to_csv(d / "train.csv", index=False)
    pd.DataFrame(X, columns=COLUMNS).to_parquet(d / "train.parquet")
    np.savez(d / "train.npz", X=X, y=np.zeros(len(X)))
    # New rows with the columns in another order: detect picks them by name.
    pd.DataFrame(NEW, columns=COLUMNS)[["flow", "temp", "pressure"]].to_csv(d / "new.csv", index=False)
    return d


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("suffix", ["csv", "parquet", "npz"])
def test_train_json_from_each_format(server, files, capsys, suffix):
    code, out, err = _run(capsys, "train", "--server", server.address, "--name", f"cli-{suffix}",
                          "--algorithm", "hbos", "--data", str(files / f"train.{suffix}"), "--param", "n_bins=12",
                          "--contamination", "0.05", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == f"cli-{suffix}" and result["version"] == 1
    # Every format holds float64 rows here: they travel as float64, and the server trains on exactly those values.
    native = HBOS(n_bins=12, contamination=0.05).fit(X)
    # Set from the served training scores: PyOD's threshold_ to float64 rounding.
    assert result["threshold"] == pytest.approx(native.threshold_, rel=1e-12)
    assert 0 <= result["export_max_rel_error"] < 1e-12


def test_train_text_shows_progress_and_prints_the_reference(server, files, capsys):
    code, out, err = _run(capsys, "train", "--server", server.address, "--name", "cli-text", "--data",
                          str(files / "train.csv"), "--param", "random_state=0", "--param", "max_samples=auto")
    assert code == 0, err
    assert out.strip() == "cli-text@1"
    # The watch starts after the job may already be running, so its first lines vary; the last ones do not.
    assert err.index("running: verify") < err.index("running: register") < err.index("succeeded")


def test_train_text_shows_a_fit_in_epochs_a_line_per_tenth(server, files, capsys):
    code, out, err = _run(capsys, "train", "--server", server.address, "--name", "cli-epochs", "--algorithm",
                          "auto_encoder", "--data", str(files / "train.csv"), "--param", "epoch_num=3")
    assert code == 0, err
    assert out.strip() == "cli-epochs@1"
    last = "    epoch 3/3 [" + "#" * 30 + "]\n"
    assert err.count(last) == 1 and err.index("running: fit") < err.index(last) < err.index("running: export"), err
    bars = [line for line in err.splitlines() if line.startswith("    epoch ")]
    assert bars == sorted(set(bars)) and all(b.startswith("    epoch ") and b.endswith("]") for b in bars), err


def test_the_fit_bar_fills_in_proportion():
    from pynomaly.cli import _bar
    from pynomaly.v1 import train_pb2

    assert _bar(train_pb2.FitProgress(done=3, total=10, unit="epoch")) == "    epoch 3/10 [" + "#" * 9 + "." * 21 + "]"
    assert _bar(train_pb2.FitProgress(done=1, total=100_000, unit="epoch"), width=10) == (
        "    epoch 1/100000 [" + "." * 10 + "]")


def test_detect_csv_output_aligns_columns_by_name(server, files, capsys, tmp_path):
    assert _run(capsys, "train", "--server", server.address, "--name", "cli-detect", "--algorithm", "hbos",
                "--data", str(files / "train.csv"))[0] == 0
    out_file = tmp_path / "scores.csv"
    code, _, err = _run(capsys, "detect", "--server", server.address, "--model", "cli-detect", "--data",
                        str(files / "new.csv"), "--output", str(out_file))
    assert code == 0, err
    scores = pd.read_csv(out_file)
    assert list(scores.columns) == ["anomaly_score", "is_anomaly"] and len(scores) == len(NEW)
    native = HBOS().fit(X).decision_function(NEW)
    np.testing.assert_allclose(scores["anomaly_score"], native, rtol=1e-12)
    assert scores["is_anomaly"].iloc[-1]
    assert "cli-detect@1: " in err and "threshold" in err

    code, out, _ = _run(capsys, "detect", "--server", server.address, "--model", "cli-detect@1", "--data",
                        str(files / "new.csv"), "--json", "--threshold", "1000")
    result = json.loads(out)
    assert result["version"] == 1 and result["threshold"] == 1000 and not any(result["is_anomaly"])
    np.testing.assert_allclose(result["anomaly_scores"], native, rtol=1e-12)


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["train", "--name", "x", "--data", "/nonexistent/data.csv"], 2, "error: --data: cannot read data.csv"),
        (["train", "--name", "x", "--data", "{files}/train.csv", "--algorithm", "nope"], 1,
         "error: INVALID_ARGUMENT: algorithm: unknown algorithm 'nope'"),
        (["train", "--name", "x", "--data", "{files}/train.csv", "--param", "n_estimators=-1"], 1,
         "error: INVALID_ARGUMENT: params.n_estimators: must be an integer"),
        (["detect", "--model", "ghost", "--data", "{files}/new.csv"], 1, "error: NOT_FOUND: model 'ghost' not found"),
        (["detect", "--model", "cli-npz", "--data", "{files}/bad.txt"], 2, "unsupported file type '.txt'"),
    ],
)
def test_cli_errors(server, files, capsys, argv, code, message):
    (files / "bad.txt").write_text("1,2,3\n")
    argv = [a.replace("{files}", str(files)) for a in argv]
    got, out, err = _run(capsys, argv[0], "--server", server.address, *argv[1:])
    assert got == code
    assert message in err
    assert "Traceback" not in err


def test_bad_param_syntax_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--name", "x", "--data", "d.csv", "--param", "n_estimators"])
    assert e.value.code == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_console_script_end_to_end(server, files):
    """The installed `pynomaly` entry point in a child process, as a shell user calls it."""
    exe = [sys.executable, "-m", "pynomaly.cli"]
    done = subprocess.run([*exe, "train", "--server", server.address, "--name", "cli-proc", "--data",
                           str(files / "train.csv"), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == "cli-proc"
    done = subprocess.run([*exe, "models", "--server", server.address, "list"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "cli-proc@1\tiforest\t3 features" in done.stdout
    done = subprocess.run([*exe, "algorithms", "--server", server.address], capture_output=True, text=True,
                          timeout=60)
    assert "pyod.models.iforest.IForest" in done.stdout


@pytest.mark.parametrize("argv, message", [
    (["serve", "--store", "nosuch://bucket/prefix"],
     "error: store 'nosuch://bucket/prefix': Protocol not known: nosuch"),
    (["serve", "--engine", "ray", "--max-replicas", "0"], "max_replicas\n  Input should be greater than or equal to 1"),
    (["serve", "--engine", "ray", "--min-replicas", "-1"],
     "min_replicas\n  Input should be greater than or equal to 0"),
    (["serve", "--output-root", "/nonexistent/out"], "error: --output-root '/nonexistent/out' does not exist"),
    (["serve", "--data-root", "/nonexistent/in"], "error: --data-root '/nonexistent/in' does not exist"),
    (["serve", "--engine", "ray", "--output-root", "/nonexistent/out"],
     "error: --output-root '/nonexistent/out' does not exist"),
    (["serve", "--data-root", "FILE"], "is not a directory"),
    # A flag the chosen engine never reads is refused, not ignored.
    (["serve", "--engine", "ray", "--train-idle-s", "5"],
     "error: --train-idle-s is the embedded engine's: the Ray engine trains each job in a Ray task"),
    (["serve", "--engine", "ray", "--train-workers", "1"],
     "error: --train-workers is the embedded engine's: the Ray engine trains each job in a Ray task"),
    (["serve", "--min-replicas", "2"], "error: --min-replicas is the Ray engine's (--engine ray)"),
    (["serve", "--max-replicas", "2"], "error: --max-replicas is the Ray engine's (--engine ray)"),
    (["serve", "--ray-address", "127.0.0.1:6379"], "error: --ray-address is the Ray engine's (--engine ray)"),
])
def test_serve_rejects_bad_settings_before_starting(capsys, tmp_path, argv, message):
    """Checked before any server or Ray cluster starts: exit status 1 and the setting named."""
    if "--store" not in argv:
        argv = [*argv, "--store", str(tmp_path / "store")]
    (tmp_path / "file").write_text("not a directory")
    argv = [str(tmp_path / "file") if a == "FILE" else a for a in argv]
    assert main([*argv, "--listen", "127.0.0.1:0"]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("value, message", [
    ("0", "argument --max-models: must be 1 or more, got 0"),
    ("many", "argument --max-models: not a whole number: 'many'"),
    ("-1", "argument --train-workers: must be 1 or more, got -1"),
    ("0", "argument --train-workers: must be 1 or more, got 0"),
])
def test_serve_rejects_a_count_below_one(capsys, value, message):
    flag = message.split(":")[0].removeprefix("argument ")
    with pytest.raises(SystemExit) as e:
        main(["serve", flag, value])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(message)


def test_serve_flags_reach_the_embedded_config():
    """Flags not given stand for their defaults; --max-models holds the embedded server's cache too."""
    from pynomaly.cli import build_parser
    from pynomaly.cli_serve import embedded_config, engine_problem

    def config(*flags: str):
        args = build_parser().parse_args(["serve", *flags])
        assert engine_problem(args) is None
        return embedded_config(args)

    # The Ray engine's flags are Ray's alone; --max-models is both engines'.
    ray = build_parser().parse_args(["serve", "--engine", "ray", "--min-replicas", "0", "--max-models", "3"])
    assert engine_problem(ray) is None

    default = config()
    assert (default.train_workers, default.train_idle_s, default.max_models) == (1, 60.0, 64)
    given = config("--train-workers", "3", "--train-idle-s", "0", "--max-models", "5")
    assert (given.train_workers, given.train_idle_s, given.max_models) == (3, 0.0, 5)
