"""The virtual environments of `make bench-peers` (benchmarks/peers.py), outside the repository: under
${XDG_CACHE_HOME:-~/.cache}/pynomaly/bench-peers/ unless --env-dir names another directory.

- mlserver-1.7.1/: MLServer 1.7.1 and its scikit-learn runtime, every package pinned exactly (MLSERVER_PINS: what
  pip resolved for mlserver==1.7.1, mlserver-sklearn==1.7.1, uvloop<0.22 and scikit-learn). scikit-learn's pin is
  read from pyproject.toml, so MLServer unpickles the joblib file that Pynomaly's environment wrote with the same
  release. uvloop stays below 0.22: with uvloop 0.22 MLServer 1.7.1's parallel inference worker (on by default) dies
  at start (MLServer issue 2286). MLServer 1.7.1 wants Python 3.9-3.12 (--python picks the interpreter).
- tritonclient-2.73.0/: the load generator, the same for both servers, built by benchmarks/tritonclient_env.py
  (tritonclient pins protobuf < 7, Pynomaly runs 7), every package pinned exactly there.

Each is built under a temporary name and renamed when complete, so a half-built environment is never taken for a
ready one, and rebuilt when its pins change (a stamp file in it holds them). The #! lines of its console scripts keep
the temporary name: run its programs as `ENV/bin/python -m ...` or `-c ...`, never ENV/bin/NAME.

The servers' processes too: each started in a process group (and session) of its own, which stop() ends whole,
with a SIGTERM first, then SIGKILL for what is left (the process tree read before, so a descendant that left the
group is not missed); each asks the kernel for SIGTERM should this process die first (PR_SET_PDEATHSIG). Process
trees, their RSS and PSS (MB = 2^20 bytes) and their listening sockets are read from /proc (Linux).

    python -m benchmarks.peer_envs [--env-dir DIR]    (builds both, prints their interpreters)
"""

from __future__ import annotations

import argparse
import ctypes
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import tritonclient_env

ROOT = Path(__file__).resolve().parents[1]
MLSERVER = "1.7.1"
ECHO = "bare OIP echo"  # benchmarks/oip_echo.py: the same gRPC stack as Pynomaly, no model
STAMP = "pynomaly-requirements.txt"
# pip's resolution (2026-12) of mlserver==1.7.1 mlserver-sklearn==1.7.1 'uvloop<0.22' scikit-learn==<pyproject's>
# on CPython 3.11, Linux x86-64: every package of the environment, scikit-learn's pin added from pyproject.toml.
MLSERVER_PINS = """
aiofiles==25.1.0 aiohappyeyeballs==2.7.1 aiohttp==3.14.5 aiokafka==0.14.0 aiosignal==1.4.0 annotated-types==0.8.0
anyio==4.16.0 asgiref==3.13.0 async-timeout==5.0.1 attrs==26.1.0 brotli==1.2.1 certifi==2026.10.19.post1
click==8.5.1 cloudpickle==3.1.3 fastapi==0.115.14 frozenlist==1.8.0 gevent==26.9.0 geventhttpclient==2.6.1
googleapis-common-protos==1.76.0 greenlet==3.3.2 grpcio==1.85.4 h11==0.16.0 idna==3.21 importlib_resources==6.5.2
joblib==1.6.0 ml_dtypes==0.5.4 mlserver==1.7.1 mlserver-sklearn==1.7.1 multidict==7.2.1 narwhals==2.29.0
numpy==2.4.6 opentelemetry-api==1.45.2 opentelemetry-exporter-otlp-common==0.66b2
opentelemetry-exporter-otlp-proto-common==1.45.2 opentelemetry-exporter-otlp-proto-grpc==1.45.2
opentelemetry-instrumentation==0.66b2 opentelemetry-instrumentation-asgi==0.66b2
opentelemetry-instrumentation-fastapi==0.66b2 opentelemetry-instrumentation-grpc==0.66b2 opentelemetry-proto==1.45.2
opentelemetry-sdk==1.45.2 opentelemetry-semantic-conventions==0.66b2 opentelemetry-util-http==0.66b2
orjson==3.13.0 packaging==26.4 pandas==3.1.1 prometheus_client==0.26.0 propcache==0.5.4 protobuf==6.33.6
py-grpc-prometheus==0.8.0 pydantic==2.14.4 pydantic-settings==2.16.3 pydantic_core==2.50.5 python-dateutil==4.0.0
python-dotenv==1.2.4 python-multipart==0.0.34 python-rapidjson==1.25 scipy==1.17.1 starlette==0.46.2
starlette_exporter==0.24.0 threadpoolctl==3.8.0 tritonclient==2.73.0 typing-inspection==0.4.5
typing_extensions==4.16.0 tzdata==2026.6 urllib3==2.8.0 uvicorn==0.55.0 uvloop==0.21.0 wrapt==2.5.2 yarl==1.25.1
zope.event==6.2 zope.interface==8.7
""".split()


def env_dir(override: str | None = None) -> Path:
    """Where the environments live: `override`, else ${XDG_CACHE_HOME:-~/.cache}/pynomaly/bench-peers."""
    if override:
        return Path(override).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "pynomaly" / "bench-peers"


def sklearn_pin() -> str:
    """scikit-learn's exact pin in pyproject.toml's dependencies."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if re.fullmatch(r"scikit-learn==[\w.]+", d)]
    if len(pins) != 1:
        raise RuntimeError(f"pyproject.toml pins no exact scikit-learn (found {pins})")
    return pins[0]


def mlserver_requirements() -> list[str]:
    return sorted([*MLSERVER_PINS, sklearn_pin()], key=str.lower)


def build(venv: Path, requirements: list[str], python: str = sys.executable) -> Path:
    """The interpreter of `venv` holding exactly `requirements`, building it first when missing or built with other
    ones. Raises RuntimeError with pip's output when it cannot be built."""
    exe = venv / "bin" / "python"
    stamp = venv / STAMP
    wanted = "\n".join(requirements) + "\n"
    if exe.exists() and stamp.is_file() and stamp.read_text() == wanted:
        return exe
    venv.parent.mkdir(parents=True, exist_ok=True)
    staging = venv.with_name(f"{venv.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    print(f"building {venv} ({len(requirements)} packages from PyPI; once) ...", file=sys.stderr, flush=True)
    try:
        steps = [[python, "-m", "venv", str(staging)],
                 [str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  *requirements],
                 [str(staging / "bin" / "python"), "-m", "pip", "check", "--disable-pip-version-check"]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode:
                raise RuntimeError(f"building {venv} failed at {' '.join(step[:4])} ...:\n{done.stdout}{done.stderr}")
        (staging / STAMP).write_text(wanted)
        shutil.rmtree(venv, ignore_errors=True)
        staging.rename(venv)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return exe


def mlserver_python(directory: Path, python: str = sys.executable) -> Path:
    """MLServer 1.7.1's environment's interpreter (built when missing)."""
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] < (3, 13))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if version != "True":
        raise RuntimeError(f"MLServer {MLSERVER} needs Python 3.9-3.12, {python} is newer: pass --python")
    return build(directory / f"mlserver-{MLSERVER}", mlserver_requirements(), python)


def client_python(directory: Path) -> Path:
    """tritonclient's environment's interpreter (benchmarks/tritonclient_env.py's pin, built when missing)."""
    version = tritonclient_env.TRITONCLIENT.split("==")[1]
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return tritonclient_env.python(directory / f"tritonclient-{version}")
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"building tritonclient's environment failed:\n{e.stdout}{e.stderr}") from e


def versions(python: Path, packages: list[str]) -> dict[str, str]:
    """The installed versions of `packages` in the environment of `python`."""
    code = ("import json, sys, importlib.metadata as m; "
            "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))")
    return json.loads(subprocess.run([str(python), "-c", code, *packages], capture_output=True, text=True,
                                     check=True).stdout)


# --- the servers' processes ---


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    grpc: str  # host:port of its OIP v2 gRPC endpoint
    output: str  # the tensor holding its scores
    sign: int  # served scores × sign = the estimator's decision_function
    log: Path


def _die_with_parent() -> None:  # run in the child before exec
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _spawn(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent, env=env)


def _free_ports(n: int) -> list[int]:
    """n ports free on 127.0.0.1 now (held together while picked, so they differ)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _wait_ready(server: Server, ready: Callable[[], bool], timeout: float = 180) -> None:
    """Until ready(); stops the server when it exits, is not ready in time, or the wait is interrupted."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if server.proc.poll() is not None or time.monotonic() > deadline:
                what = f"exited ({server.proc.returncode})" if server.proc.returncode is not None else "is not ready"
                raise RuntimeError(f"{server.name} {what} at start; its log ends:\n{server.log.read_text()[-3000:]}")
            time.sleep(0.3)
    except BaseException:
        stop(server)
        raise


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_mlserver(python: Path, work: Path, model_file: Path, model: str) -> Server:
    """`mlserver start` on a model repository holding `model` (mlserver-sklearn, decision_function), every
    listener (REST, gRPC, metrics) on 127.0.0.1; ready when the REST endpoint says the model is."""
    (work / model).mkdir(parents=True)
    http, grpc, metrics = _free_ports(3)
    settings = {"host": "127.0.0.1", "http_port": http, "grpc_port": grpc, "metrics_port": metrics}
    (work / "settings.json").write_text(json.dumps(settings, indent=1))
    # mlserver-sklearn 1.7.1 (sklearn.py): PREDICT_FN_KEY = "predict_fn", read from parameters.extra; it names the
    # method called, and the output tensor, when the request asks for no output.
    model_settings = {"name": model, "implementation": "mlserver_sklearn.SKLearnModel",
                      "parameters": {"uri": "./model.joblib", "extra": {"predict_fn": "decision_function"}}}
    (work / model / "model-settings.json").write_text(json.dumps(model_settings, indent=1))
    shutil.copy(model_file, work / model / "model.joblib")
    log = work / "mlserver.log"
    proc = _spawn([str(python), "-c", "import sys; from mlserver.cli import main; sys.exit(main())", "start", "."],
                  work, log)
    server = Server(f"MLServer {MLSERVER}", proc, f"127.0.0.1:{grpc}", "decision_function", 1, log)
    _wait_ready(server, lambda: "gRPC server running" in log.read_text(errors="replace")
                and _http_ok(f"http://127.0.0.1:{http}/v2/models/{model}/ready"))
    return server


def start_pynomaly(work: Path, extra: list[str]) -> Server:
    """`pynomaly serve` (the embedded engine) on an empty store, gRPC and REST on free ports of 127.0.0.1."""
    work.mkdir(parents=True)
    log = work / "pynomaly.log"
    proc = _spawn([sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0", "--http-listen",
                   "127.0.0.1:0", "--store", str(work / "store"), "--log-level", "warning",
                   "--shutdown-delay-s", "0", "--grace-s", "5", *extra], ROOT, log,
                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = Server("Pynomaly", proc, "", "anomaly_score", -1, log)

    def ready() -> bool:
        if m := re.search(r"serving on (127\.0\.0\.1:\d+)", log.read_text(errors="replace")):
            server.grpc = m.group(1)
        return bool(server.grpc)

    _wait_ready(server, ready)
    return server


def start_echo(work: Path) -> Server:
    """benchmarks/oip_echo.py on a free port of 127.0.0.1: zeros shaped like Pynomaly's response, no model."""
    work.mkdir(parents=True)
    log, (port,) = work / "echo.log", _free_ports(1)
    proc = _spawn([sys.executable, "-m", "benchmarks.oip_echo", str(port)], ROOT, log,
                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = Server(ECHO, proc, f"127.0.0.1:{port}", "anomaly_score", 0, log)
    _wait_ready(server, lambda: "serving on" in log.read_text(errors="replace"))
    return server


def _stat(pid: int) -> tuple[str, int]:
    """(state, ppid) of a process; ("", 0) when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return "", 0
    return fields[0], int(fields[1])


def tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive."""
    parents = {int(d): _stat(int(d)) for d in os.listdir("/proc") if d.isdigit()}
    found, todo = [], [root] if parents.get(root, ("", 0))[0] not in ("", "Z") else []
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += [p for p, (state, ppid) in parents.items() if ppid == pid and state not in ("", "Z")]
    return sorted(found)


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if _stat(p)[0] not in ("", "Z")]


def stop(server: Server) -> None:
    """End the server's process group and every process of its tree; wait for them."""
    pids = tree(server.proc.pid)
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(server.proc.pid, sig)
        except ProcessLookupError:
            pass
        for pid in _alive(pids) if sig == signal.SIGKILL else []:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while (server.proc.poll() is None or _alive(pids)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if server.proc.poll() is not None and not _alive(pids):
            return


def _short(pid: int) -> str:
    """A short name for a process: its module, or what its `python -c` runs."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    if "-m" in argv[:-1]:
        return " ".join(argv[argv.index("-m") + 1:][:2])
    code = argv[argv.index("-c") + 1] if "-c" in argv[:-1] else ""
    for key, name in (("mlserver.cli", "mlserver start"), ("resource_tracker", "multiprocessing resource tracker"),
                      ("forkserver", "multiprocessing forkserver"), ("spawn_main", "multiprocessing spawn child")):
        if key in code:
            return name
    return Path(argv[0]).name or Path(f"/proc/{pid}/comm").read_text().strip()


def _kb(path: str, key: str) -> float:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle_tree(server: Server) -> list[dict[str, object]]:
    """pid, short name, RSS and PSS (MB) of every process of the server's tree."""
    return [{"pid": pid, "name": _short(pid), "rss_mb": _kb(f"/proc/{pid}/status", "VmRSS"),
             "pss_mb": _kb(f"/proc/{pid}/smaps_rollup", "Pss")} for pid in tree(server.proc.pid)]


def _listening() -> dict[int, str]:
    """Socket inode → address:port of every TCP socket listening in this network namespace."""
    found = {}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path(f"/proc/net/{table}")
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)  # 32-bit words in host order
            if sys.byteorder == "little":
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            host = socket.inet_ntop(family, raw)
            found[int(fields[9])] = f"[{host}]:{int(port, 16)}" if family == socket.AF_INET6 else \
                f"{host}:{int(port, 16)}"
    return found


def loopback_only(server: Server) -> list[str]:
    """The addresses the server's process tree listens on; RuntimeError when one is not a loopback address."""
    listening, addresses = _listening(), set()
    for pid in tree(server.proc.pid):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in listening:
                addresses.add(listening[int(link[8:-1])])
    for address in addresses:
        ip = ipaddress.ip_address(address.rsplit(":", 1)[0].strip("[]"))
        if not (ip.is_loopback or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped
                                   and ip.ipv4_mapped.is_loopback)):
            raise RuntimeError(f"{server.name} listens on {address}, not only on the loopback interface")
    return sorted(addresses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-dir", help="default ${XDG_CACHE_HOME:-~/.cache}/pynomaly/bench-peers")
    parser.add_argument("--python", default=sys.executable, help="interpreter for MLServer's environment")
    args = parser.parse_args()
    directory = env_dir(args.env_dir)
    print(mlserver_python(directory, args.python))
    print(client_python(directory))


if __name__ == "__main__":
    main()
