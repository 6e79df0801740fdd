"""The Dockerfile, checked without a container engine (none runs here): its entry point takes the arguments it is
given, everything it copies exists and passes .dockerignore, the requirements it installs are the exact pins of
pyproject.toml and resolve together (this venv was installed from them: each installed version equals its pin and
`pip check` finds nothing broken), and it runs as a non-root user that writes only under /tmp and mounted volumes."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from pynomaly.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in (ROOT / "Dockerfile").read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(parts[0].upper(), parts[1].strip() if len(parts) > 1 else "")
            for line in text.splitlines() if (parts := line.strip().split(None, 1))]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def exec_form(op: str) -> list[str]:
    (args,) = [a for o, a in final_stage() if o == op]
    return json.loads(args)


def image_installs() -> tuple[str, ...]:
    """The extras of `pip install ".[…]"` in the build stage."""
    (run,) = [a for op, a in instructions() if op == "RUN" and "pip install" in a]
    (extras,) = re.findall(r'"\.\[([a-z0-9,]+)\]"', run)
    return tuple(extras.split(","))


def test_it_builds_in_two_stages_from_a_slim_python_and_runs_as_a_non_root_user():
    steps = instructions()
    (base,) = [a for op, a in steps if op == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.1[1-4]-slim-\w+", base), base
    assert [a.split()[0] for op, a in steps if op == "FROM"] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert [a for op, a in final_stage() if op == "USER"] == ["10001:10001"], "numeric, so runAsNonRoot can check it"
    assert any(op == "COPY" and a.startswith("--from=build ") for op, a in final_stage())


def test_the_entry_point_is_pynomaly_serve_and_its_arguments_parse_with_the_real_cli():
    assert PYPROJECT["project"]["scripts"]["pynomaly"] == "pynomaly.cli:main"
    assert exec_form("ENTRYPOINT") == ["pynomaly", "serve"]
    args = build_parser().parse_args(["serve", *exec_form("CMD")])
    assert (args.engine, args.listen, args.http_listen, args.metrics_port) == (
        "embedded", "0.0.0.0:50051", "0.0.0.0:8000", 9090)
    assert args.store == "/var/lib/pynomaly/store"
    (exposed,) = [a for op, a in final_stage() if op == "EXPOSE"]
    assert sorted(int(p) for p in exposed.split()) == [8000, 9090, 50051]


def test_everything_written_goes_under_tmp_or_the_store_volume():
    (env,) = [a for op, a in final_stage() if op == "ENV"]
    variables = dict(item.split("=", 1) for item in shlex.split(env))
    for name in ("HOME", "NUMBA_CACHE_DIR", "MPLCONFIGDIR"):
        assert variables[name] == "/tmp" or variables[name].startswith("/tmp/"), name
    assert variables["PYTHONDONTWRITEBYTECODE"] == "1" and variables["RAY_USAGE_STATS_ENABLED"] == "0"
    assert variables["PATH"].startswith("/opt/pynomaly/bin:")
    assert [a for op, a in final_stage() if op == "WORKDIR"] == ["/tmp"]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for .dockerignore: the last pattern that matches the path or a parent of it wins."""
    verdict = False
    parts = path.split("/")
    for pattern in patterns:
        keep = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        for i in range(1, len(parts) + 1):
            prefix, tail = "/".join(parts[:i]), parts[i - 1]
            if fnmatch.fnmatchcase(prefix, glob) or (pattern.lstrip("!").startswith("**/")
                                                     and fnmatch.fnmatchcase(tail, glob)):
                verdict = not keep
                break
    return verdict


def test_every_file_it_copies_exists_and_passes_dockerignore():
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    sources = [src for op, a in instructions() if op == "COPY" and not a.startswith("--from")
               for src in a.split()[:-1]]
    assert sources == ["pyproject.toml", "README.md", "services", "operators"]
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not ignored(src, patterns), f".dockerignore leaves {src} out"
    tracked = subprocess.run(["git", "ls-files", "services", "operators"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked and not [f for f in tracked if ignored(f, patterns)], "the sources reach the build context"
    for outside in ("tests/conftest.py", "var/store", ".venv/bin/python", "charts/pynomaly/values.yaml"):
        assert ignored(outside, patterns), f"{outside} should stay out of the build context"
    assert ignored("services/pynomaly/__pycache__/cli.cpython-311.pyc", patterns)


def pinned(extras: tuple[str, ...]) -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_the_image_installs_extras_that_exist():
    assert image_installs() == ("ray", "s3", "operator")
    assert set(image_installs()) <= set(PYPROJECT["project"]["optional-dependencies"])


@pytest.mark.parametrize("requirement", pinned(("ray", "s3", "operator")), ids=str)
def test_each_requirement_it_installs_is_an_exact_pin_that_this_venv_resolved(requirement):
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not pinned exactly"
    installed = version(requirement.name)
    # PEP 440: ==2.13.0 matches a local build such as 2.13.0+cpu, which is what the image installs for torch.
    assert requirement.specifier.contains(installed), f"installed {requirement.name} {installed} is not the pin"


def test_torch_keeps_its_exact_pin():
    assert "torch==2.13.0" in PYPROJECT["project"]["dependencies"]


def test_the_pinned_set_is_consistent():
    done = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
