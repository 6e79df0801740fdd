"""A virtual environment holding tritonclient, for the interop tests (tests/integration/test_oip_tritonclient.py)
and `make bench-oip`.

tritonclient pins protobuf < 7 while Pynomaly runs protobuf 7, so the two cannot share an environment: this makes
one of its own at .venv-tritonclient/ in the repository (gitignored) the first time, every package pinned exactly
(PINS: what pip resolved for tritonclient[grpc,http]==2.73.0 on Python 3.11, 2026-12; a new release of a dependency
cannot change the tests' client), and reuses it after. It is built under a temporary name and renamed when complete,
so a half-installed environment is never taken for a ready one; it is rebuilt when the pins change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRITONCLIENT = "tritonclient[grpc,http]==2.73.0"
PINS = [TRITONCLIENT, *"""
aiohappyeyeballs==2.7.1 aiohttp==3.14.5 aiosignal==1.4.0 attrs==26.1.0 brotli==1.2.1 certifi==2026.10.19.post1
frozenlist==1.8.0 gevent==26.9.0 geventhttpclient==2.6.1 greenlet==3.3.2 grpcio==1.85.4 idna==3.21 ml_dtypes==0.5.4
multidict==7.2.1 numpy==2.4.6 packaging==26.4 propcache==0.5.4 protobuf==6.33.6 python-rapidjson==1.25
typing_extensions==4.16.0 urllib3==2.8.0 yarl==1.25.1 zope.event==6.2 zope.interface==8.7
""".split()]
VENV = ROOT / ".venv-tritonclient"
STAMP = "pynomaly-requirement.txt"  # what the environment was built with: another pin rebuilds it


def python(venv: Path = VENV) -> Path:
    """The environment's interpreter, building the environment first when it is missing or holds another pin.
    Raises subprocess.CalledProcessError (with pip's output) when it cannot be built."""
    exe = venv / "bin" / "python"
    stamp = venv / STAMP
    if exe.exists() and stamp.is_file() and stamp.read_text().split() == PINS:
        return exe
    staging = venv.with_name(f"{venv.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True, capture_output=True, text=True)
        subprocess.run([str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", *PINS], check=True, capture_output=True, text=True)
        (staging / STAMP).write_text("\n".join(PINS) + "\n")
        shutil.rmtree(venv, ignore_errors=True)
        staging.rename(venv)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return exe


if __name__ == "__main__":
    print(python())
