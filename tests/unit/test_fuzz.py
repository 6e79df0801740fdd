"""The request fuzzer (tests/fuzz/fuzz_requests.py, atheris) runs for a bounded time in every test run and finds
no crash: every input it makes is refused with a domain error or passes. `make fuzz` runs it longer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FUZZER = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_requests.py"
SECONDS = int(os.environ.get("PYNOMALY_FUZZ_SECONDS", "20"))


def test_the_request_fuzzer_finds_no_crash(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # Through a shell that forks (not execs) the fuzzer: Linux carries a process's peak RSS across exec, and
    # libFuzzer's out-of-memory check (2 GiB) reads that peak, so a fuzzer exec'd from this large test process
    # would start "over" the limit. The shell's child starts its own count.
    fuzz = [sys.executable, str(FUZZER), f"-max_total_time={SECONDS}", "-seed=1", f"-artifact_prefix={tmp_path}/"]
    done = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh", *fuzz],
                          capture_output=True, text=True, timeout=SECONDS + 240, env=env, cwd=tmp_path)
    report = done.stderr[-4000:]
    assert done.returncode == 0, report
    runs = [line for line in done.stderr.splitlines() if line.startswith("Done ")]
    assert runs and int(runs[0].split()[1]) > 1000, report  # "Done N runs in S second(s)"
    assert not list(tmp_path.glob("crash-*")), report
