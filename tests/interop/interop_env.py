"""The interop environment: TensorFlow, tf2onnx, JAX and jax2onnx, for the exporter the interop tests run
(tests/interop/exporter.py). `make test-interop` and `make test-clients` build it; the tests reuse it.

Those packages stay out of Pynomaly's .venv: they are large (about 2.5 GB installed, TensorFlow alone 1.3 GB),
the server needs none of them, and they bring their own numpy/protobuf/onnx bounds. So they are installed alone
at .venv-interop/ in the repository (gitignored), with exactly the pins of pyproject.toml's `interop` extra (read
from there: one list), built under a temporary name and renamed when complete, so a half-installed environment is
never taken for a ready one. Another set of pins rebuilds it. pip byte-compiles what it installs, so TensorFlow's
imports read .pyc files even where PYTHONDONTWRITEBYTECODE is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-interop"
STAMP = "pynomaly-requirements.txt"  # the pins the environment was built with


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The `interop` extra's requirements, as pyproject.toml pins them."""
    with pyproject.open("rb") as f:
        return list(tomllib.load(f)["project"]["optional-dependencies"]["interop"])


def python(venv: Path = VENV) -> Path:
    """The environment's interpreter, building the environment first when it is missing or holds other pins.
    Raises subprocess.CalledProcessError (with pip's output) when it cannot be built."""
    exe = venv / "bin" / "python"
    pins = "\n".join(requirements()) + "\n"
    stamp = venv / STAMP
    if exe.exists() and stamp.is_file() and stamp.read_text() == pins:
        return exe
    staging = venv.with_name(f"{venv.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True, capture_output=True, text=True)
        subprocess.run([str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", *requirements()],
                       check=True, capture_output=True, text=True)
        (staging / STAMP).write_text(pins)
        shutil.rmtree(venv, ignore_errors=True)
        staging.rename(venv)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return exe


if __name__ == "__main__":
    try:
        print(python())
    except subprocess.CalledProcessError as e:
        sys.exit(f"cannot build {VENV.name} ({', '.join(requirements())}):\n{e.stderr or e.stdout}")
