"""`make soak`: does the embedded server hold a steady load without errors or memory growth? Starts the server on
127.0.0.1, measures its closed-loop throughput with Locust (--users, --probe-time), then runs Locust paced at
--share (80 %) of that rate for --time seconds (default 10 minutes) while sampling the server's resident memory
(the server and its training workers) every 5 s. Passes when no call failed and the RSS at the end is within 5 %
of the RSS once warm (after the first --warm-up seconds). Not part of CI (it runs for minutes by design).

    python load_tests/soak.py [--time 600] [--users 8] [--share 0.8] [--out var/soak]

Writes OUT/TIMESTAMP/: probe/ and soak/ (Locust reports as `make load` writes them), rss.csv, soak.json, and
rss.txt, a text plot of the RSS over the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import read_stats, run_locust, server_for  # noqa: E402

GROWTH_LIMIT = 0.05


def rss(pid: int) -> int:
    """Resident bytes of the process and its children (training workers, the resource tracker)."""
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def sample(pid: int, every: float, stop: threading.Event, out: list[tuple[float, int]]) -> None:
    start = time.monotonic()
    while not stop.is_set():
        out.append((time.monotonic() - start, rss(pid)))
        stop.wait(every)


def text_plot(points: list[tuple[float, int]], width: int = 60, height: int = 12) -> str:
    """RSS (MiB) over time as characters: the shape of the curve is what matters (a leak is a slope)."""
    ys = [b / 2**20 for _, b in points]
    lo, hi = min(ys), max(ys)
    span = (hi - lo) or 1.0
    cols = [ys[min(len(ys) - 1, i * len(ys) // width)] for i in range(width)]
    rows = []
    for r in range(height, -1, -1):
        level = lo + span * r / height
        rows.append(f"{level:8.1f} MiB |" + "".join("*" if abs(c - level) <= span / height / 2 else " "
                                                     for c in cols))
    rows.append(" " * 13 + "+" + "-" * width)
    rows.append(" " * 14 + f"0 s{'':>{width - 12}}{points[-1][0]:.0f} s")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", type=int, default=600, help="soak seconds, 60..7200 (default 600)")
    parser.add_argument("--users", type=int, default=8, help="Locust users, 1..200 (default 8)")
    parser.add_argument("--probe-time", type=int, default=30, help="seconds measuring the top rate (default 30)")
    parser.add_argument("--share", type=float, default=0.8, help="share of the top rate to hold, (0, 1] (default 0.8)")
    parser.add_argument("--warm-up", type=int, default=60, help="seconds before the RSS baseline (default 60)")
    parser.add_argument("--out", default="var/soak", help="reports go to OUT/TIMESTAMP/ (default var/soak)")
    args = parser.parse_args(argv)
    if not (60 <= args.time <= 7200 and 1 <= args.users <= 200 and 0 < args.share <= 1
            and 5 <= args.probe_time <= 600 and 0 <= args.warm_up < args.time):
        parser.error("--time 60..7200, --users 1..200, --share in (0, 1], --probe-time 5..600, --warm-up < --time")
    out = (Path(args.out) / time.strftime("%Y%m%d-%H%M%S")).resolve()
    (out / "probe").mkdir(parents=True)
    (out / "soak").mkdir()
    locust = argparse.Namespace(users=args.users, spawn_rate=None, engine="embedded")
    with server_for("embedded", out) as server:
        run_locust(server.address, argparse.Namespace(**vars(locust), time=args.probe_time), out / "probe")
        probe, _ = read_stats(out / "probe")
        top = probe.get("Aggregated", {}).get("rps", 0.0)
        if not top or probe["Aggregated"]["failures"]:
            print(f"error: the probe run measured no rate or had failures; see {out / 'probe'}", file=sys.stderr)
            return 1
        target = args.share * top
        print(f"\ntop rate {top:.1f} calls/s with {args.users} users; "
              f"soaking at {target:.1f} calls/s for {args.time} s")
        points: list[tuple[float, int]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample, args=(server.proc.pid, 5.0, stop, points), daemon=True)
        sampler.start()
        code = run_locust(server.address, argparse.Namespace(**vars(locust), time=args.time), out / "soak",
                          ("--rate-per-user", f"{target / args.users:.4f}"))
        stop.set()
        sampler.join()
    stats, _ = read_stats(out / "soak")
    total = stats.get("Aggregated", {"requests": 0, "failures": 0, "rps": 0.0})
    warm = [b for t, b in points if t >= args.warm_up]
    base, end = warm[0], warm[-1]
    growth = (end - base) / base
    (out / "rss.csv").write_text("seconds,rss_bytes\n" + "".join(f"{t:.1f},{b}\n" for t, b in points))
    plot = text_plot(points)
    (out / "rss.txt").write_text(plot + "\n")
    result = {"top_rps": top, "target_rps": target, "soak_rps": total["rps"], "requests": total["requests"],
              "failures": total["failures"], "rss_warm_bytes": base, "rss_end_bytes": end,
              "rss_peak_bytes": max(b for _, b in points), "rss_growth": growth, "seconds": args.time}
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{plot}\n\nsoak: {total['requests']:,} calls at {total['rps']:.1f}/s ({args.share:.0%} of {top:.1f}/s), "
          f"{total['failures']} failed; RSS warm {base / 2**20:.1f} MiB -> end {end / 2**20:.1f} MiB "
          f"({growth:+.2%}, limit +{GROWTH_LIMIT:.0%}); reports in {out}")
    if code != 0 or total["failures"] or growth >= GROWTH_LIMIT:
        print("soak FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
