"""`pynomaly serve`: its flags and the command (the embedded engine in this process, or the Ray engine)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pynomaly import cli_limits

if TYPE_CHECKING:
    from pynomaly.server.app import ServerConfig


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be 1 to 256 processes, got {value}")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _seconds(text: str) -> float:
    """A number of seconds ≥ 0 (0: none)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or a positive number of seconds, got {text}")
    return value


def _missing_root(args: argparse.Namespace) -> str | None:
    """A --data-root or --output-root that is not a directory here: a typo would otherwise surface only at the
    first job. (A Ray cluster joined with --ray-address resolves them on its own nodes.)"""
    if args.engine == "ray" and args.ray_address:
        return None
    for flag, value in (("--data-root", args.data_root), ("--output-root", args.output_root)):
        if value and not Path(value).is_dir():
            what = "is not a directory" if Path(value).exists() else "does not exist"
            return f"{flag} {value!r} {what}"
    return None


# Flags that one engine reads and the other never would: given with the other engine, serve refuses to start
# rather than run without them. Their parser default is None ("not given"): ServerConfig and AppArgs hold the
# defaults.
_EMBEDDED_ONLY = ("train_workers", "train_idle_s")
_RAY_ONLY = ("ray_address", "min_replicas", "max_replicas")


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def engine_problem(args: argparse.Namespace) -> str | None:
    """A flag given that the chosen engine never reads, named."""
    if args.engine == "ray" and args.workers != 1:
        return "--workers is the embedded engine's: the Ray engine scales with replicas (--min-replicas, " \
               "--max-replicas)"
    other, why = ((_EMBEDDED_ONLY, "the embedded engine's: the Ray engine trains each job in a Ray task")
                  if args.engine == "ray" else (_RAY_ONLY, "the Ray engine's (--engine ray)"))
    given = list(_given(args, *other))
    return f"--{given[0].replace('_', '-')} is {why}" if given else None


def _security_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the TLS files or the token file, checked before anything starts (both engines)."""
    from pynomaly.server.security import Security

    try:
        Security.load(args.tls_cert, args.tls_key, args.tls_client_ca, args.auth_tokens, args.auth_reflection)
    except ValueError as e:
        return str(e)
    return None


def _security_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"tls_cert": args.tls_cert, "tls_key": args.tls_key, "tls_client_ca": args.tls_client_ca,
            "health_listen": args.health_listen, "auth_tokens": args.auth_tokens,
            "auth_reflection": args.auth_reflection}


def embedded_config(args: argparse.Namespace) -> ServerConfig:
    """The embedded engine's ServerConfig from `serve`'s flags; a flag not given keeps ServerConfig's default."""
    from pynomaly.server.app import ServerConfig

    return ServerConfig(
        listen=args.listen,
        store=args.store,
        data_root=Path(args.data_root) if args.data_root else None,
        output_root=Path(args.output_root) if args.output_root else None,
        workers=args.workers,
        threads=args.threads,
        max_message_bytes=int(args.max_message_mb * 1024 * 1024),
        metrics_port=args.metrics_port,
        http_listen=args.http_listen,
        store_check_seconds=args.store_check_seconds,
        **cli_limits.fields(args),
        grace_s=args.grace_s, shutdown_delay_s=args.shutdown_delay_s,
        **_security_settings(args),
        **_given(args, "train_workers", "train_idle_s", "max_models"),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from pynomaly.server.app import serve

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if problem := _missing_root(args) or _security_problem(args):
        print(f"error: {problem}", file=sys.stderr)
        return 1
    if args.shutdown_delay_s >= args.grace_s:
        print(f"error: --shutdown-delay-s {args.shutdown_delay_s:g} must be less than --grace-s {args.grace_s:g}",
              file=sys.stderr)
        return 1
    if problem := engine_problem(args):
        print(f"error: {problem}", file=sys.stderr)
        return 1
    if args.engine == "ray":
        return _serve_ray(args)
    config = embedded_config(args)
    try:
        if config.workers > 1:
            from pynomaly.server import processes

            asyncio.run(processes.serve(config))
        else:
            asyncio.run(serve(config))
    except (OSError, ValueError) as e:  # ValueError: an OTEL_* variable we cannot honour
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _serve_ray(args: argparse.Namespace) -> int:
    try:
        from pynomaly.ray_engine import local
        from pynomaly.ray_engine.config import AppArgs
    except ImportError as e:
        print(f"error: the Ray engine needs Ray Serve: pip install 'pynomaly[ray]' ({e})", file=sys.stderr)
        return 1
    try:
        app_args = AppArgs(
            listen=args.listen, store=args.store, data_root=args.data_root, output_root=args.output_root,
            **_given(args, "min_replicas", "max_replicas"), ort_threads=args.threads,
            **({} if args.max_models is None else {"max_models_per_replica": args.max_models}),
            max_message_mb=args.max_message_mb, metrics_port=args.metrics_port, http_listen=args.http_listen,
            store_check_seconds=args.store_check_seconds, **cli_limits.fields(args),
            grace_s=args.grace_s, shutdown_delay_s=args.shutdown_delay_s, **_security_settings(args),
        )
        local.run(app_args, ray_address=args.ray_address, log_level=args.log_level)
    except (OSError, ValueError, RuntimeError) as e:  # pydantic's ValidationError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any) -> None:
    """The `serve` subcommand on the CLI's subparsers."""
    p = sub.add_parser("serve", help="run the platform", description="Run the platform: the embedded engine (one "
                       "process) or the Ray engine (Ray Serve replicas; needs pynomaly[ray]).")
    p.add_argument("--engine", choices=["embedded", "ray"], default="embedded", help="(default embedded)")
    p.add_argument("--listen", default="127.0.0.1:50051", help="host:port to listen on (default 127.0.0.1:50051)")
    p.add_argument("--http-listen", metavar="HOST:PORT",
                   help="also serve the REST API (the Open Inference Protocol v2 over HTTP/JSON) on HOST:PORT, in the "
                        "same process; port 0 picks a free one (default: off)")
    p.add_argument("--store", default="var/store",
                   help="model store: a directory, or s3://bucket/prefix with the AWS_* variables (default var/store)")
    p.add_argument("--data-root", help="directory that training data_uri and batch input_uri may read (default: none)")
    p.add_argument("--output-root", help="directory that batch jobs may write their outputs under (default: none)")
    p.add_argument("--train-workers", type=_at_least_one,
                   help="training worker processes (default 1; the embedded engine's)")
    p.add_argument("--workers", type=_workers, default=1, metavar="N",
                   help="processes serving --listen (SO_REUSEPORT; the kernel spreads connections over them), for "
                        "machines with more cores: the first also trains, runs batch jobs and serves --http-listen "
                        "and metrics, the others score (Detect, Explain, OIP) and forward the rest to it (default 1)")
    p.add_argument("--train-idle-s", type=_seconds, metavar="SECONDS",
                   help="training workers (each holds the training stack, ~400 MB) exit after this many seconds "
                        "without a job, and the next job starts them again (~3 s more for it); 0 keeps them "
                        "running (default 60; the embedded engine's)")
    p.add_argument("--threads", type=int, default=2, help="threads scoring one large batch in parallel (default 2)")
    p.add_argument("--max-message-mb", type=float, default=64, help="largest request in MiB (default 64)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics at http://HOST:PORT/metrics, HOST from --listen (default: off). "
                        "Tracing is set by the standard OTEL_* variables, e.g. OTEL_EXPORTER_OTLP_ENDPOINT")
    p.add_argument("--store-check-seconds", type=_positive_seconds, default=10.0, metavar="SECONDS",
                   help="how often to check that the model store can be read; grpc.health.v1 answers NOT_SERVING "
                        "(\"liveness\" stays SERVING) while it cannot (default 10)")
    p.add_argument("--grace-s", type=_positive_seconds, default=25.0, metavar="SECONDS",
                   help="on SIGTERM, seconds until the server has stopped: health answers NOT_SERVING at once, calls "
                        "in flight may finish, running training jobs are marked interrupted; keep it below the pod's "
                        "terminationGracePeriodSeconds (default 25)")
    p.add_argument("--shutdown-delay-s", type=_seconds, default=5.0, metavar="SECONDS",
                   help="the first part of --grace-s during which new calls are still taken while health answers "
                        "NOT_SERVING, so load balancers see it and move away (default 5)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    cli_limits.add_arguments(p)
    security = p.add_argument_group("security (README: Security)")
    security.add_argument("--tls-cert", metavar="FILE", help="serve gRPC and HTTP over TLS with this PEM certificate "
                          "chain (reloaded when the file changes; default: plaintext)")
    security.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    security.add_argument("--tls-client-ca", metavar="FILE",
                          help="mutual TLS: clients must present a certificate this PEM CA bundle signed")
    security.add_argument("--health-listen", metavar="HOST:PORT",
                          help="also answer grpc.health.v1 (only) in plaintext on HOST:PORT, for probes that cannot "
                               "speak TLS, such as Kubernetes' gRPC probes (default: off)")
    security.add_argument("--auth-tokens", metavar="FILE",
                          help="require bearer tokens: one `TOKEN SCOPE[,SCOPE]` a line, scopes detect, explain, "
                               "train, admin (reloaded when the file changes; default: no auth)")
    security.add_argument("--auth-reflection", choices=["open", "token"], default="open",
                          help="with --auth-tokens: server reflection open to all, or for a valid token (default open)")
    ray = p.add_argument_group("Ray engine")
    ray.add_argument("--ray-address", help="join this Ray cluster (default: start a private one on 127.0.0.1)")
    ray.add_argument("--min-replicas", type=int, help="Scorer replicas kept up (default 1)")
    ray.add_argument("--max-replicas", type=int, help="Scorer replicas at most (default 2)")
    ray.add_argument("--max-models", type=_at_least_one,
                     help="model versions kept loaded, the least recently used evicted beyond them: per Scorer "
                          "replica (default 16); the embedded engine's processes each (default 64)")
    p.set_defaults(func=cmd_serve)
