"""`make bench-batch`: batch scoring through the server vs native PyOD, Parquet → Parquet, in one run.

1. 1,000,000 rows × 20 features, IForest (100 trees), the embedded engine: a batch job's rows/s (create to
   SUCCEEDED, as the client sees it; the server reads, scores and writes the output) and the server's peak RSS,
   side by side with scoring the same file in this process with PyOD's own decision_function over pyarrow batches
   (read and score only: no output written). The first 65,536 served scores are compared with PyOD's as a check.
2. The same job over 4,000,000 rows: the server's peak RSS is bounded by the chunk size, not the file's.

Peak RSS is the server process's VmHWM, reset before each job (/proc/PID/clear_refs), so it is the job's own peak
over a server that has loaded the model. Input files have row groups of 65,536 rows (the server's chunk).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pynomaly import Client

N_TRAIN, N_FEATURES, ROW_GROUP = 10_000, 20, 65_536
FEATURES = [f"f{i}" for i in range(N_FEATURES)]


def write_input(path: Path, rows: int, seed: int) -> None:
    """`rows` × 20 features, 95 % N(0,1) and 5 % U(−6, 6), written a slice at a time (never whole in memory)."""
    rng = np.random.default_rng(seed)
    schema = pa.schema([(f, pa.float64()) for f in FEATURES])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 4 * ROW_GROUP):
            n = min(4 * ROW_GROUP, rows - start)
            X = rng.normal(size=(n, N_FEATURES))
            outliers = rng.random(n) < 0.05
            X[outliers] = rng.uniform(-6, 6, size=(int(outliers.sum()), N_FEATURES))
            writer.write_table(pa.table(dict(zip(FEATURES, X.T, strict=True)), schema=schema),
                               row_group_size=ROW_GROUP)


def _status_mb(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux ≥ 4.0)


def start_server(store: Path, data: Path, out: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pynomaly.cli", "serve", "--listen", "127.0.0.1:0", "--store", str(store),
         "--data-root", str(data), "--output-root", str(out), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := re.search(r"serving on (127\.0\.0\.1:\d+)", line):
            return proc, m.group(1)
    raise RuntimeError("the server did not start")


def server_job(client: Client, pid: int, source: str, target: str) -> tuple[float, float, float, float, int]:
    """(wall seconds, rows/s, the server's CPU seconds, its peak RSS during the job and its RSS before, MB) of one
    batch job."""
    _reset_peak(pid)
    before, cpu = _status_mb(pid, "VmRSS"), _cpu_s(pid)
    t0 = time.perf_counter()
    job = client.batch_detect("bench-iforest", source, target, wait_timeout=3600)
    wall = time.perf_counter() - t0
    return wall, job.rows_done / wall, _cpu_s(pid) - cpu, _status_mb(pid, "VmHWM"), int(before)


def native(model: object, path: Path) -> tuple[float, float, np.ndarray]:
    """(seconds, CPU seconds, the first chunk's scores): PyOD's decision_function over the file's pyarrow batches."""
    first = None
    t0, cpu = time.perf_counter(), time.process_time()
    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=ROW_GROUP):
            X = np.column_stack([batch.column(f).to_numpy() for f in FEATURES])
            scores = model.decision_function(X)  # type: ignore[attr-defined]
            first = scores if first is None else first
    return time.perf_counter() - t0, time.process_time() - cpu, first  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=4_000_000, help="the second file (0: skip it)")
    args = parser.parse_args()
    from pyod.models.iforest import IForest

    with tempfile.TemporaryDirectory(prefix="pynomaly-batch-bench-") as tmp:
        root = Path(tmp)
        data, out = root / "data", root / "out"
        data.mkdir()
        out.mkdir()
        train = np.random.default_rng(0).normal(size=(N_TRAIN, N_FEATURES))
        print(f"writing {args.rows:,} rows × {N_FEATURES} features (Parquet, row groups of {ROW_GROUP:,}) …",
              flush=True)
        write_input(data / "rows.parquet", args.rows, seed=1)
        proc, address = start_server(root / "store", data, out)
        try:
            with Client(address, timeout=600) as client:
                card = client.train("bench-iforest", train, algorithm="iforest", feature_names=FEATURES,
                                    params={"n_estimators": 100, "random_state": 0})
                # The same detector natively, fitted on the rows the server trained on (float32 on the wire).
                model = IForest(n_estimators=100, random_state=0).fit(train.astype(np.float32).astype(np.float64))
                wall, rate, cpu, peak, before = server_job(client, proc.pid, "rows.parquet", "scores.parquet")
                native_s, native_cpu, native_first = native(model, data / "rows.parquet")
                served = pq.read_table(out / "scores.parquet").column("anomaly_score").to_numpy()[:len(native_first)]
                rel = np.max(np.abs(served - native_first) / np.maximum(np.abs(native_first), 1e-6))
                print(f"\nIForest (100 trees) {card.name}@{card.version}, {args.rows:,} rows × {N_FEATURES}, Parquet → "
                      f"Parquet, embedded engine (--threads 2), one run on {os.cpu_count()} CPUs (load average "
                      f"{os.getloadavg()[0]:.1f} before it):")
                print(f"  batch job (read, score, write):   {wall:7.2f} s  {rate:>12,.0f} rows/s  {cpu:6.2f} CPU s   "
                      f"server peak RSS {peak:,.0f} MB (before the job {before:,} MB)")
                native_rate = args.rows / native_s
                print(f"  native PyOD (read, score):        {native_s:7.2f} s  {native_rate:>12,.0f} rows/s  "
                      f"{native_cpu:6.2f} CPU s")
                print(f"  ratio: {rate / native_rate:.1f}× native in rows/s (target ≥ 5×), {native_cpu / cpu:.1f}× in "
                      f"CPU time; served vs native scores: max relative error {rel:.2g} over the first "
                      f"{len(native_first):,} rows")
                if args.big_rows:
                    print(f"\nwriting {args.big_rows:,} rows …", flush=True)
                    write_input(data / "big.parquet", args.big_rows, seed=2)
                    wall4, rate4, cpu4, peak4, before4 = server_job(client, proc.pid, "big.parquet",
                                                                    "big-scores.parquet")
                    print(f"  batch job, {args.big_rows:,} rows:        {wall4:7.2f} s  {rate4:>12,.0f} rows/s  "
                          f"{cpu4:6.2f} CPU s   server peak RSS {peak4:,.0f} MB (before the job {before4:,} MB)")
                    print(f"  peak RSS, {args.big_rows // args.rows}× the rows: {peak4 / peak:.2f}× the memory")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
