"""`pynomaly` command line: serve, train, detect, batch, models, algorithms. Built on the SDK."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from pynomaly import cli_batch, cli_serve, cli_tls
from pynomaly.cli_output import EXIT_CODES, OutputError, as_dict, broken_pipe, typed, write_output
from pynomaly.client import TrainingError
from pynomaly.errors import InvalidArgument
from pynomaly.v1 import train_pb2


def _parse_param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected NAME=VALUE, e.g. n_estimators=200")
    try:
        value = json.loads(raw)  # 200 → int, 0.5 → float, true → bool, null → None
    except json.JSONDecodeError:
        value = raw  # a bare word such as auto
    return name, value


def _stage(job: Any) -> str:
    from pynomaly.v1 import train_pb2

    state = train_pb2.TrainingJobState.Name(job.state).removeprefix("TRAINING_JOB_STATE_").lower()
    stage = train_pb2.TrainingStage.Name(job.stage).removeprefix("TRAINING_STAGE_").lower()
    return state if stage == "unspecified" else f"{state}: {stage}"


def _candidate(c: Any) -> str:
    """One line per candidate of an "auto" job: what became of it, in how long, and why."""
    from pynomaly.v1 import common_pb2

    outcome = common_pb2.CandidateOutcome.Name(c.outcome).removeprefix("CANDIDATE_OUTCOME_").lower()
    what = f"trial {c.trial} {c.algorithm}" if c.trial and c.outcome != common_pb2.CANDIDATE_OUTCOME_KEPT else (
        f"candidate {c.algorithm}")
    return f"{what}: {outcome} ({c.fit_seconds:.2f} s)" + (f": {c.message}" if c.message else "")


def _bar(p: Any, width: int = 30) -> str:
    """A fit's progress: `    epoch 3/10 [#########.....................]`."""
    filled = width * p.done // p.total
    return f"    {p.unit} {p.done}/{p.total} [{'#' * filled}{'.' * (width - filled)}]"


def cmd_train(args: argparse.Namespace) -> int:
    from pynomaly.data import read_labelled

    X, names, y = read_labelled(args.data, "--data", args.label_column)
    with cli_tls.connect(args) as client:
        job = client.start_training(
            args.name, X, algorithm=args.algorithm, params=dict(args.param), contamination=args.contamination or 0.0,
            feature_names=names, description=args.description, labels=y, threshold_method=args.threshold_method,
        )
        if not args.json:
            print(f"training job {job.id}: {args.algorithm} on {len(X)} rows × {X.shape[1]} features", file=sys.stderr)
        last, shown, tenth, tty = "", 0, -1, sys.stderr.isatty()

        def show(j: Any) -> None:
            nonlocal last, shown, tenth
            if args.json:
                return
            if _stage(j) != last:
                last = _stage(j)
                print(("\n" if tty and tenth >= 0 else "") + f"  {last}", file=sys.stderr)
                tenth = -1
            for c in j.candidates[shown:]:
                print(f"    {_candidate(c)}", file=sys.stderr)
            shown = len(j.candidates)
            if j.HasField("fit_progress"):  # a bar redrawn in a terminal; a line per tenth of the fit in a log
                p = j.fit_progress
                if tty or 10 * p.done // p.total != tenth:
                    tenth = 10 * p.done // p.total
                    print(("\r" if tty else "") + _bar(p), end="" if tty else "\n", file=sys.stderr, flush=True)

        job = client.wait(job.id, show)
        card = client.get_model(f"{job.model_name}@{job.model_version}")
        algorithms = client.list_algorithms() if args.json and card.candidates else []
    if args.json:
        print(json.dumps({
            "model": card.name, "version": card.version, "threshold": card.threshold,
            "export_max_abs_error": card.export_check.max_abs_error,
            "export_max_rel_error": card.export_check.max_rel_error, "job_id": job.id,
            **({"candidates": _card(card, algorithms)["candidates"]} if card.candidates else {}),
        }))
    else:
        print(f"{card.name}@{card.version}")
        if card.HasField("tuning"):
            t = card.tuning
            print(f"  chosen by {t.trials} trials on labels: {card.candidates[-1].algorithm}, held-out ROC-AUC "
                  f"{t.best_roc_auc:.4f} ({t.held_out_rows} rows, {t.held_out_anomalies} anomalies)", file=sys.stderr)
        elif card.candidates:
            kept = [c.algorithm for c in card.candidates if c.weight > 0]
            print(f"  ensemble of {len(kept)}: {', '.join(kept)} (mean of standardised scores)", file=sys.stderr)
        if card.HasField("labels"):
            print(f"  labels: {card.labels.anomalies} of {card.labels.rows} rows anomalous; training ROC-AUC "
                  f"{card.labels.roc_auc:.4f}", file=sys.stderr)
        print(f"  threshold {card.threshold:.6g} ({card.threshold_method}: flags {card.flagged_share:.2%} of the "
              "training rows)", file=sys.stderr)
        print(f"  ONNX vs {card.algorithm}: max abs error "
              f"{card.export_check.max_abs_error:.3g} over {card.export_check.rows} rows", file=sys.stderr)
    return 0


def _align(X: np.ndarray, names: list[str], features: list[str], has_header: bool) -> np.ndarray:
    """Pick the model's features by name when the file names them all; otherwise keep the column order."""
    if has_header and set(features) <= set(names) and names != features:
        index = {n: i for i, n in enumerate(names)}
        return X[:, [index[f] for f in features]]
    return X


def cmd_detect(args: argparse.Namespace) -> int:
    from pynomaly.data import read_table

    X, names = read_table(args.data, "--data")
    with cli_tls.connect(args) as client:
        card = client.get_model(args.model)
        X = _align(X, names, list(card.feature_names), Path(args.data).suffix.lower() != ".npz")
        # Pin the version resolved above so both calls see the same model.
        result = client.detect(f"{card.name}@{card.version}", X, threshold=args.threshold)
    if args.json:
        out = json.dumps({
            "model": result.model_name, "version": result.model_version, "threshold": result.threshold,
            "anomaly_scores": result.anomaly_scores.tolist(), "is_anomaly": result.is_anomaly.tolist(),
        })
        if args.output:
            write_output(args.output, lambda f: f.write(out + "\n"))
        else:
            print(out)
    else:
        import pandas as pd

        frame = pd.DataFrame({"anomaly_score": result.anomaly_scores,
                              "is_anomaly": np.where(result.is_anomaly, "true", "false")})
        if args.output:
            write_output(args.output, lambda f: frame.to_csv(f, index=False))
        else:
            frame.to_csv(sys.stdout, index=False)
        print(f"{result.model_name}@{result.model_version}: {int(result.is_anomaly.sum())} of {len(X)} rows "
              f"anomalous (score > threshold {result.threshold:.6g})", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from pynomaly.data import read_table

    X, names = read_table(args.data, "--data")
    with cli_tls.connect(args) as client:
        card = client.get_model(args.model)
        X = _align(X, names, list(card.feature_names), Path(args.data).suffix.lower() != ".npz")
        r = client.explain(f"{card.name}@{card.version}", X, top_k=args.top_k, method=args.method)
    rows = []
    for i in range(len(X)):
        order = [j for j in np.argsort(-np.nan_to_num(r.contributions[i], nan=-np.inf)) if
                 not np.isnan(r.contributions[i, j])]
        rows.append({"anomaly_score": float(r.anomaly_scores[i]), "base_value": float(r.base_values[i]),
                     "attributions": [{"feature": r.feature_names[j], "value": float(X[i, j]),
                                       "contribution": float(r.contributions[i, j])} for j in order]})
    if args.json:
        print(json.dumps({"model": r.model_name, "version": r.model_version, "method": r.method,
                          "evaluations_per_row": r.evaluations_per_row, "rows": rows}))
        return 0
    print(f"{r.model_name}@{r.model_version} — method {r.method}", file=sys.stderr)
    for i, row in enumerate(rows):
        print(f"row {i}: anomaly_score {row['anomaly_score']:.6g} = base {row['base_value']:.6g} + contributions")
        for a in row["attributions"]:
            print(f"  {a['feature']:>24} = {a['value']:<12.6g} {a['contribution']:+.6g}")
    return 0


def _typed(params: dict[str, Any], algorithm: str, algorithms: list[Any]) -> dict[str, Any]:
    """Hyperparameters typed as their algorithm declares them (google.protobuf.Value makes every number a double)."""
    types = {p.name: p.type for a in algorithms if a.name == algorithm for p in a.parameters}
    return {k: typed(v, types.get(k, "")) for k, v in params.items()}


def _card(card: Any, algorithms: list[Any]) -> dict[str, Any]:
    """A model card for --json: hyperparameters (an "auto" model's candidates' too) typed as declared."""
    d = as_dict(card)
    d["params"] = _typed(d["params"], card.algorithm, algorithms)
    for c in d["candidates"]:
        c["params"] = _typed(c["params"], c["algorithm"], algorithms)
    return d


def _aliases(client: Any, name: str) -> str:
    """Every alias of a model and the version it points at: "production=@2, staging=@3"."""
    aliases = sorted((a, v.version) for v in client.list_model_versions(name) for a in v.aliases)
    return ", ".join(f"{a}=@{v}" for a, v in aliases) or "-"


def cmd_models(args: argparse.Namespace) -> int:
    with cli_tls.connect(args) as client:
        if args.action == "list":
            cards = client.list_models()
            algorithms = client.list_algorithms() if args.json and cards else []
            for card in cards:
                if args.json:
                    print(json.dumps(_card(card, algorithms)))
                    continue
                print(f"{card.name}@{card.version}\t{card.algorithm}\t{len(card.feature_names)} features\t"
                      f"threshold {card.threshold:.6g}\taliases {_aliases(client, card.name)}")
        elif args.action == "get":
            card = client.get_model(args.ref)
            print(json.dumps(_card(card, client.list_algorithms()), indent=None if args.json else 2))
        elif args.action == "delete":
            client.delete_model(args.ref)
            print(f"deleted {args.ref}")
        elif args.action == "import":
            reference, names = None, args.feature_names.split(",") if args.feature_names else None
            if args.reference:
                from pynomaly.data import read_table

                reference, header = read_table(args.reference, "--reference")
                if names is None and Path(args.reference).suffix.lower() != ".npz":
                    names = header  # a CSV's header, a Parquet file's columns
            card = client.import_model(
                args.name, Path(args.onnx).read_bytes(), score_output=args.score_output, feature_names=names,
                threshold=args.threshold, reference_rows=reference, contamination=args.contamination,
                lower_is_anomalous=args.lower_is_anomalous,
            )
            print(f"{card.name}@{card.version}")
        elif args.action == "alias":
            card = client.set_alias(args.name, args.alias, args.version)
            print(f"{card.name}:{args.alias} -> {card.name}@{card.version}")
    return 0


def cmd_algorithms(args: argparse.Namespace) -> int:
    with cli_tls.connect(args) as client:
        for a in client.list_algorithms():
            d = as_dict(a)
            for p in d["parameters"]:
                p["default_value"] = typed(p.get("default_value"), p["type"])
            if args.json:
                print(json.dumps(d))
                continue
            served = {train_pb2.SERVING_FROZEN: "served frozen", train_pb2.SERVING_REFUSED: "NOT SERVED: training fails"
                      }.get(a.serving, "served exactly")
            explain = "exact" if a.exact_explanation else "SHAP (approximate)"
            params = ", ".join(f"{p['name']}={json.dumps(p['default_value'])}" for p in d["parameters"])
            labels = "; learns from labels (--label-column)" if a.needs_labels else ""
            print(f"{a.name:28} {a.implementation}\n{'':28} {served} ({a.export_note}); explain: {explain}{labels}\n"
                  f"{'':28} params: {params}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pynomaly", description="Anomaly-detection model serving over gRPC.",
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def client_parser(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        cli_tls.add_options(p)
        return p

    cli_serve.add_parser(sub)

    p = client_parser("train", "train a detector on a file and wait for the model version")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--algorithm", default="iforest", help="algorithm (see `pynomaly algorithms`)")
    p.add_argument("--data", required=True, help="training data: .csv (header row), .parquet or .npz (array X)")
    p.add_argument("--param", action="append", default=[], type=_parse_param, metavar="NAME=VALUE",
                   help="hyperparameter, repeatable; VALUE is JSON (200, 0.5, true, null) or a bare word (auto)")
    p.add_argument("--contamination", type=float, default=None,
                   help="expected anomaly share (default 0.1; with --label-column, the labels' share)")
    p.add_argument("--threshold-method", default="", metavar="NAME",
                   help="how the threshold is set: contamination (default) or a pythresh method (iqr, zscore, …)")
    p.add_argument("--label-column", default="", metavar="NAME",
                   help="the column (CSV/Parquet) or array (.npz) of 0/1 labels, 1 = anomaly: never a feature; "
                        "with --algorithm auto they choose the detector")
    p.add_argument("--description", default="", help="free text kept with the model version")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=cmd_train)

    p = client_parser("detect", "score the rows of a file")
    p.add_argument("--model", required=True, help="model reference: name, name@3 or name:alias")
    p.add_argument("--data", required=True, help="rows to score: .csv, .parquet or .npz")
    p.add_argument("--output", help="write results here (CSV, or JSON with --json); default stdout")
    p.add_argument("--threshold", type=float, help="override the model's threshold")
    p.add_argument("--json", action="store_true", help="write JSON instead of CSV")
    p.description = ("score the rows of a file: CSV columns anomaly_score and is_anomaly (true or false, "
                     "as in --json), one line per input row")
    p.set_defaults(func=cmd_detect)

    cli_batch.add_parser(sub, client_parser)

    p = client_parser("explain", "per-feature contributions to the scores of a file's rows")
    p.add_argument("--model", required=True, help="model reference: name, name@3 or name:alias")
    p.add_argument("--data", required=True, help="rows to explain: .csv, .parquet or .npz")
    p.add_argument("--top-k", type=int, default=0, help="only the k largest contributions per row (default all)")
    p.add_argument("--method", choices=["exact", "tree_shap", "kernel_shap"], help="default: the model's best")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=cmd_explain)

    p = client_parser("models", "list, show, delete or alias model versions")
    actions = p.add_subparsers(dest="action", required=True)
    shared = [cli_tls.action_options()]
    listing = actions.add_parser("list", parents=shared, help="latest version of every model, and its aliases")
    listing.add_argument("--json", action="store_true", help="one JSON model card per line")
    get = actions.add_parser("get", parents=shared, help="a model card as JSON")
    get.add_argument("ref")
    get.add_argument("--json", action="store_true", help="on one line (default: indented)")
    actions.add_parser("delete", parents=shared, help="delete one version (name@N)").add_argument("ref")
    imp = actions.add_parser("import", parents=shared, help="import an ONNX model trained elsewhere as a new version")
    imp.add_argument("--name", required=True, help="model name")
    imp.add_argument("--onnx", required=True, help="the .onnx file")
    imp.add_argument("--score-output", default="", help="graph output holding the scores (default: the only one)")
    imp.add_argument("--feature-names", help="comma-separated feature names (needed for a dynamic input width)")
    imp.add_argument("--threshold", type=float, help="anomalous when score > threshold")
    imp.add_argument("--reference", help="rows (.csv/.parquet/.npz) to set the threshold from --contamination, "
                     "kept as Kernel SHAP's background rows; a CSV's header names the features")
    imp.add_argument("--contamination", type=float, default=0.1, help="anomaly share of --reference (default 0.1)")
    imp.add_argument("--lower-is-anomalous", action="store_true", help="the model scores anomalies low: negate")
    alias = actions.add_parser("alias", parents=shared, help="point NAME:ALIAS at a version")
    alias.add_argument("name")
    alias.add_argument("alias")
    alias.add_argument("version", type=int)
    p.set_defaults(func=cmd_models)

    p = client_parser("algorithms", "list the algorithms the server trains")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_algorithms)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr and an exit code of EXIT_CODES."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at interpreter exit
        return code
    except BrokenPipeError:
        return broken_pipe(sys.stdout)
    except (InvalidArgument, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1
    except (TrainingError, OutputError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug of ours: still one line (the server side logs its own with an error id)
        print(f"error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
