"""`make load`: start a Pynomaly server on 127.0.0.1, run the Locust file headless and bounded against it, write
CSV + HTML reports to a folder, print a summary, stop everything. Exit status 1 if any request failed.

    python load_tests/run.py [--engine embedded] [--time 60] [--users 10] [--out var/load]

Only loopback is ever targeted: the server is started here on 127.0.0.1 with an ephemeral port.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
MAX_USERS, MAX_TIME_S = 500, 3600
# Server start-up, training the model (before the run-time clock) and shutting down, on top of --time.
SLACK_S = 240
START_S = 120  # a Ray cluster takes 10-25 s to start here


class Server:
    """`pynomaly serve` on 127.0.0.1:0 with metrics on an ephemeral port; its output goes to a log file.
    engine="ray" starts a private Ray cluster (node address 127.0.0.1) with the application on it."""

    def __init__(self, store: Path, log_path: Path, engine: str = "embedded"):
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pynomaly.cli", "serve", "--engine", engine, "--listen", "127.0.0.1:0",
             "--store", str(store),
             "--log-level", "warning", "--metrics-port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert self.proc.stdout is not None
        self.address, self.metrics_url = "", ""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the server exited during start-up; see {log_path}")
            self.log.write(line)
            if m := re.search(r"serving on (127\.0\.0\.1:\d+)", line):
                self.address = m.group(1)
            if m := re.search(r"metrics: (http://127\.0\.0\.1:\d+/metrics)", line):
                self.metrics_url = m.group(1)
            if "Press Ctrl+C" in line:
                break
        if not self.address:
            self.stop()
            raise RuntimeError(f"the server did not start in {START_S} s; see {log_path}")
        self.log.flush()
        threading.Thread(target=_copy, args=(self.proc.stdout, [self.log]), daemon=True).start()

    def scrape(self) -> dict[str, float]:
        """A few series of /metrics, summed over their labels: the server's own view of the run."""
        from prometheus_client.parser import text_string_to_metric_families

        if not self.metrics_url:
            return {}
        with urllib.request.urlopen(self.metrics_url, timeout=10) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "grpc_server_handled_total" and s.labels.get("grpc_method") in ("Detect", "Explain"):
                    key = f"{s.labels['grpc_method']} {s.labels['grpc_code']}"
                    out[key] = out.get(key, 0.0) + s.value
                elif s.name == "pynomaly_detect_rows_total":
                    out["rows scored"] = out.get("rows scored", 0.0) + s.value
        return {k: v for k, v in out.items() if v}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _copy(source: IO[str], sinks: list[IO[str]]) -> None:
    for line in source:
        for sink in sinks:
            sink.write(line)
            sink.flush()


@contextmanager
def server_for(engine: str, out: Path) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="pynomaly-load-") as store:
        server = Server(Path(store), out / "server.log", engine)
        try:
            yield server
        finally:
            server.stop()


def run_locust(address: str, args: argparse.Namespace, out: Path, extra: tuple[str, ...] = ()) -> int:
    """Locust headless, bounded by --users and --run-time; its output is shown and kept in locust.log."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", address,
        "--users", str(args.users), "--spawn-rate", str(args.spawn_rate or args.users), "--run-time", f"{args.time}s",
        "--stop-timeout", "10", "--only-summary", "--csv", str(out / "locust"), "--html", str(out / "report.html"),
        "--results-file", str(out / "results.json"), *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env["PYTHONUNBUFFERED"] = "1"
    with (out / "locust.log").open("w") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=out)
        assert proc.stdout is not None
        copier = threading.Thread(target=_copy, args=(proc.stdout, [log, sys.stdout]), daemon=True)
        copier.start()
        try:
            return proc.wait(timeout=args.time + SLACK_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            print(f"locust ran over {args.time + SLACK_S} s and was stopped", file=sys.stderr)
            return 124
        finally:
            copier.join(timeout=5)


def read_stats(out: Path) -> tuple[dict[str, dict[str, Any]], bool]:
    """Per request name: requests, failures, RPS, p50/p95/p99 (ms), from the Locust file's results.json (final,
    exact percentiles) or else Locust's stats CSV; and whether Explain was available."""
    results = out / "results.json"
    if results.is_file():
        data = json.loads(results.read_text())
        return data["requests"], bool(data["explain_available"])
    path = out / "locust_stats.csv"
    if not path.is_file():
        return {}, True
    stats: dict[str, dict[str, Any]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            stats[row["Name"]] = {
                "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]), **{p: _float(row[f"{p[1:]}%"]) for p in ("p50", "p95", "p99")},
            }
    return stats, True


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def summarize(stats: dict[str, dict[str, Any]], explain_available: bool, server: dict[str, float],
              args: argparse.Namespace, out: Path) -> str:
    lines = [f"Load test: {args.engine} engine, {args.users} users, {args.time} s on 127.0.0.1 "
             f"(reports in {out}: report.html, locust_stats.csv, …)",
             f"{'request':20} {'requests':>9} {'failures':>9} {'RPS':>9} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}"]
    for name, s in sorted(stats.items(), key=lambda kv: kv[0] == "Aggregated"):
        lines.append(f"{name:20} {s['requests']:>9,} {s['failures']:>9,} {s['rps']:>9.1f} {s['p50']:>9.2f} "
                     f"{s['p95']:>9.2f} {s['p99']:>9.2f}")
    if not explain_available:
        lines.append("Explain 1 row        not available: the server answered UNIMPLEMENTED; the task disabled itself "
                     "after the first answer (not counted as a failure)")
    if server:
        lines.append("server /metrics: " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(server.items())))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="embedded", choices=["embedded", "ray"], help="default embedded")
    parser.add_argument("--time", type=int, default=60, help=f"run time in seconds, 1..{MAX_TIME_S} (default 60)")
    parser.add_argument("--users", type=int, default=10, help=f"concurrent users, 1..{MAX_USERS} (default 10)")
    parser.add_argument("--spawn-rate", type=float, help="users started per second (default: all at once)")
    parser.add_argument("--out", default="var/load", help="reports go to OUT/ENGINE-TIMESTAMP/ (default var/load)")
    args = parser.parse_args(argv)
    if not (1 <= args.users <= MAX_USERS and 1 <= args.time <= MAX_TIME_S):
        parser.error(f"--users must be in 1..{MAX_USERS} and --time in 1..{MAX_TIME_S}")
    out = (Path(args.out) / f"{args.engine}-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    with server_for(args.engine, out) as server:
        code = run_locust(server.address, args, out)
        try:
            seen = server.scrape()
        except OSError:
            seen = {}
    stats, explain_available = read_stats(out)
    if not stats:
        print(f"error: locust wrote no statistics (exit status {code}); see {out / 'locust.log'}", file=sys.stderr)
        return code or 1
    summary = summarize(stats, explain_available, seen, args, out)
    (out / "summary.txt").write_text(summary + "\n")
    total = stats.get("Aggregated", {"requests": 0, "failures": 0})
    (out / "summary.json").write_text(json.dumps({
        "engine": args.engine, "users": args.users, "time_s": args.time, "explain_available": explain_available,
        "requests": stats, "server": seen,
    }, indent=2) + "\n")
    print("\n" + summary)
    if total["requests"] == 0 or total["failures"] > 0 or code != 0:
        print(f"load test FAILED: {total['failures']} failed of {total['requests']} requests, locust exit status "
              f"{code} (errors in locust_exceptions.csv, log in locust.log)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
