"""`pynomaly batch`: score a file into another on the server, with a progress bar; and list, get or cancel jobs.

    pynomaly batch --model cardio --input in.parquet --output out.parquet [--id-column id] [--pass-through]
    pynomaly batch list | get ID | cancel ID

The files are the server's: paths under its --data-root (input) and --output-root (output), or s3:// URLs. Ctrl-C
while waiting cancels the job on the server and exits with 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from pynomaly import cli_tls
from pynomaly.cli_output import as_dict
from pynomaly.client import BatchError
from pynomaly.v1 import detect_pb2


def _state(job: detect_pb2.BatchDetectJob) -> str:
    return detect_pb2.BatchDetectJobState.Name(job.state).removeprefix("BATCH_DETECT_JOB_STATE_").lower()


def _as_json(job: detect_pb2.BatchDetectJob) -> str:
    return json.dumps(as_dict(job))


class _Progress:
    """A tqdm bar on stderr fed by the job's watch events: rows, rows/s and ETA (rows_total unknown for CSV: then
    the server's own estimate, from bytes read). Drawn from the first event: a job refused at once shows none."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, job: detect_pb2.BatchDetectJob) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(unit=" rows", unit_scale=True, file=sys.stderr, mininterval=0.5, dynamic_ncols=True)
        bar = self._bar
        if job.rows_total and bar.total != job.rows_total:
            bar.total = job.rows_total
            bar.refresh()
        if not job.rows_total and job.eta_seconds:
            bar.set_postfix_str(f"ETA {job.eta_seconds:.0f} s", refresh=False)
        if job.rows_done > bar.n:
            bar.update(job.rows_done - bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def cmd_batch(args: argparse.Namespace) -> int:
    with cli_tls.connect(args) as client:
        if args.action == "list":
            for job in client.list_batch_jobs(args.model or ""):
                print(_as_json(job) if args.json else f"{job.id}\t{_state(job)}\t{job.model_name}@"
                      f"{job.model_version}\t{job.rows_done} rows\t{job.input_uri} -> {job.output_uri}")
            return 0
        if args.action in ("get", "cancel"):
            job = client.get_batch_job(args.id) if args.action == "get" else client.cancel_batch_job(args.id)
            print(_as_json(job) if args.json else f"{job.id}\t{_state(job)}\t{job.message}")
            return 0
        missing = [f"--{n}" for n in ("model", "input", "output") if not getattr(args, n)]
        if missing:
            print(f"error: pynomaly batch needs {', '.join(missing)} (or one of: list, get ID, cancel ID)",
                  file=sys.stderr)
            return 2
        progress = None if args.json else _Progress()
        try:
            job = client.batch_detect(args.model, args.input, args.output, id_column=args.id_column or "",
                                      pass_through=args.pass_through, overwrite=args.overwrite,
                                      threshold=args.threshold, on_update=progress)
        except KeyboardInterrupt:
            if progress is not None:
                progress.close()
            print("cancelled: the batch job was cancelled on the server; no output was written", file=sys.stderr)
            return 130
        except BatchError as e:
            if progress is not None:
                progress.close()
            print(f"error: {e}", file=sys.stderr)
            return 1
        if progress is not None:
            progress.close()
    if args.json:
        print(_as_json(job))
    else:
        print(job.output_uri)
        print(f"{job.message} (threshold {job.threshold:.6g}); {job.rows_per_second:,.0f} rows/s", file=sys.stderr)
    return 0


def add_parser(sub: Any, client_parser: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The `batch` command and its actions, on the CLI's subcommand parser."""
    p = client_parser("batch", "score a file into another on the server (a batch job); or list, get, cancel jobs")
    p.add_argument("--model", help="model reference: name, name@3 or name:alias")
    p.add_argument("--input", help="input .csv or .parquet: a path under the server's --data-root, or s3://…")
    p.add_argument("--output", help="output .csv or .parquet: a path under the server's --output-root, or s3://…")
    p.add_argument("--id-column", help="input column copied into the output (e.g. a row key)")
    p.add_argument("--pass-through", action="store_true", help="copy every input column into the output")
    p.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    p.add_argument("--threshold", type=float, help="override the model's threshold")
    p.add_argument("--json", action="store_true", help="print the job as JSON (no progress bar)")
    actions = p.add_subparsers(dest="action", metavar="{list,get,cancel}")
    # The shared flags work after the action too; SUPPRESS keeps a value given before it.
    shared = cli_tls.action_options()
    shared.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")
    listing = actions.add_parser("list", parents=[shared], help="batch jobs, newest first")
    listing.add_argument("--model", default=argparse.SUPPRESS, help="only jobs of this model name")
    actions.add_parser("get", parents=[shared], help="one batch job").add_argument("id")
    actions.add_parser("cancel", parents=[shared], help="cancel a batch job").add_argument("id")
    p.set_defaults(func=cmd_batch)


__all__ = ["add_parser", "cmd_batch"]
