"""CLI failures as a shell user meets them, in real child processes: one line on stderr, a documented exit code
(`pynomaly --help`), never a traceback; a reader that stops early (`| head`) ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pynomaly.cli_output import EXIT_CODES

CLI = [sys.executable, "-m", "pynomaly.cli"]
ROWS = 100_000  # ~3 MB of CSV scores: far more than a pipe holds, so `head` closes it while detect still writes


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-errors") / "rows.npz"
    np.savez(path, X=np.random.default_rng(5).normal(size=(ROWS, 5)).astype(np.float32))
    return path


def _cli(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=120, **kwargs)


def _one_line(stderr: str, expected: str) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr.splitlines() == [expected]


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["csv", "json"])
def test_detect_output_into_a_missing_directory(server, trained, rows, tmp_path, json_flag):
    out = tmp_path / "missing" / "dir" / "out.csv"
    done = _cli("detect", "--server", server.address, "--model", trained, "--data", str(rows), "--output", str(out),
                *json_flag)
    assert done.returncode == 1
    _one_line(done.stderr, f"error: --output {out}: cannot write there: No such file or directory")
    assert not out.parent.exists()


def test_detect_output_is_never_half_written(server, trained, rows, tmp_path):
    """The scores appear under their name whole, and nothing else is left in the directory."""
    out = tmp_path / "scores.csv"
    done = _cli("detect", "--server", server.address, "--model", trained, "--data", str(rows), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path) == ["scores.csv"]
    assert len(out.read_text().splitlines()) == ROWS + 1


def test_detect_piped_into_head_ends_quietly(server, trained, rows):
    detect = subprocess.Popen([*CLI, "detect", "--server", server.address, "--model", trained, "--data", str(rows)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-n", "1"], stdin=detect.stdout, stdout=subprocess.PIPE)
    assert detect.stdout is not None and detect.stderr is not None
    detect.stdout.close()  # head alone holds the read end: when it exits, the pipe is broken
    first, _ = head.communicate(timeout=120)
    stderr = detect.stderr.read().decode()
    assert detect.wait(timeout=120) == 141
    assert first == b"anomaly_score,is_anomaly\n"
    assert stderr == "", stderr


@pytest.mark.parametrize("argv", [["models", "get", "{model}"], ["models", "list"], ["algorithms"]])
def test_output_into_a_closed_pipe_ends_quietly(server, trained, argv):
    """The reader is gone before the first byte: every write fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([*CLI, argv[0], "--server", server.address,
                               *(a.replace("{model}", trained) for a in argv[1:])],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == "", done.stderr


@pytest.mark.parametrize("argv, code, message", [
    (["detect", "--model", "{model}", "--data", "{dir}/header-only.csv"], 2,
     "error: --data: header-only.csv has no rows"),
    (["detect", "--model", "{model}", "--data", "{dir}/random.npz"], 2,
     "error: --data: random.npz is not a valid .npz file (a zip archive of .npy arrays, as numpy.savez writes)"),
    (["detect", "--model", "blobs@١", "--data", "{dir}/ok.csv"], 1,
     "error: INVALID_ARGUMENT: model 'blobs@١': the version after '@' must be a positive integer (ASCII digits, "
     "at most 18)"),
    (["models", "get", "blobs:prod\n"], 1, "error: INVALID_ARGUMENT: model alias 'prod\\n' is invalid: use 1-64 "
     "characters of [A-Za-z0-9_.-], starting with a letter or digit"),
    (["models", "import", "--name", "x", "--onnx", "{dir}/missing.onnx"], 2,
     "error: [Errno 2] No such file or directory: '{dir}/missing.onnx'"),
])
def test_errors_are_one_line_with_a_documented_code(server, trained, tmp_path, argv, code, message):
    (tmp_path / "header-only.csv").write_text("a,b,c,d,e\n")
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(1).bytes(256))
    (tmp_path / "ok.csv").write_text("a,b,c,d,e\n0,0,0,0,0\n")
    argv = [a.replace("{model}", trained).replace("{dir}", str(tmp_path)) for a in argv]
    done = _cli(argv[0], "--server", server.address, *argv[1:])
    assert done.returncode == code
    _one_line(done.stderr, message.replace("{dir}", str(tmp_path)))
    assert f"\n  {code} " in "\n" + EXIT_CODES.split("\n", 1)[1]  # the code is one --help documents


def test_help_documents_the_exit_codes():
    done = _cli("--help")
    assert done.returncode == 0
    assert EXIT_CODES in done.stdout
    for code in ("0", "1", "2", "130", "141"):
        assert f"\n  {code} " in done.stdout
