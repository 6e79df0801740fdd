"""A virtual environment holding tritonclient, for the interop tests (tests/integration/test_oip_tritonclient.py)
and `make bench-oip`.

tritonclient pins protobuf < 7 while Pynomaly runs protobuf 7, so the two cannot share an environment: this makes
one of its own at .venv-tritonclient/ in the repository (gitignored) the first time, with the exact pin below, and
reuses it after. It is built under a temporary name and renamed when complete, so a half-installed environment is
never taken for a ready one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRITONCLIENT = "tritonclient[grpc,http]==2.73.0"
VENV = ROOT / ".venv-tritonclient"
STAMP = "pynomaly-requirement.txt"  # what the environment was built with: another pin rebuilds it


def python(venv: Path = VENV) -> Path:
    """The environment's interpreter, building the environment first when it is missing or holds another pin.
    Raises subprocess.CalledProcessError (with pip's output) when it cannot be built."""
    exe = venv / "bin" / "python"
    stamp = venv / STAMP
    if exe.exists() and stamp.is_file() and stamp.read_text().strip() == TRITONCLIENT:
        return exe
    staging = venv.with_name(f"{venv.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True, capture_output=True, text=True)
        subprocess.run([str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", TRITONCLIENT], check=True, capture_output=True, text=True)
        (staging / STAMP).write_text(TRITONCLIENT + "\n")
        shutil.rmtree(venv, ignore_errors=True)
        staging.rename(venv)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return exe


if __name__ == "__main__":
    print(python())
