"""`make parity`: every exportable detector on every ADBench dataset — ONNX vs native scores, ROC-AUC, finiteness.

    python -m benchmarks.parity --datasets ../shared/datasets --out parity-results

writes parity-results/parity.md (the table) and parity.csv, and exits non-zero if any case fails.
The fast subset of the same checks runs in `make test` (tests/integration/test_parity.py).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from pynomaly import algorithms, verification

DATASETS = ("annthyroid", "breastw", "cardio", "ionosphere", "mammography", "pendigits", "pima", "satellite",
            "shuttle", "thyroid", "vowels", "wbc")
# Native scores are compared on a seeded sample of rows (ECOD/COPOD score natively one row at a time).
PARITY_SAMPLE = 2000
AUC_DECIMALS = 3


@dataclass
class ParityRow:
    dataset: str
    algorithm: str
    rows: int
    features: int
    max_rel_error: float = float("nan")
    max_abs_error: float = float("nan")
    auc_native: float = float("nan")
    auc_served: float = float("nan")
    finite: bool = False
    fit_s: float = 0.0
    export_s: float = 0.0
    # Training refuses to serve the model: the export refuses the fit, or the platform's own export check
    # (pynomaly.verification) fails.
    refused: bool = False
    error: str = ""
    # The converter itself refuses the model, for a limit the algorithm declares (ABOD: rows PyOD scores NaN).
    refusal: str = ""
    # Which rows the served scores were compared on: "all rows" (every row served, the reference on a sample of
    # PARITY_SAMPLE), or "check rows" (--check-rows: the export check's 256 sampled + 256 synthetic rows).
    basis: str = ""

    @property
    def exact(self) -> bool:
        return (self.finite and self.max_rel_error <= verification.TOLERANCE
                and abs(self.auc_served - self.auc_native) <= 0.5 * 10**-AUC_DECIMALS)

    @property
    def ok(self) -> bool:
        """Exact, or refused by the export check where the algorithm declares that limit (never served wrong)."""
        if self.error:
            return False
        return self.exact or (self.refused and bool(algorithms.get(self.algorithm).export_limit))


def exportable() -> list[str]:
    return [name for name, a in algorithms.ALGORITHMS.items() if a.exportable]


# The suites that fit every detector on every data set (tests/integration/test_every_detector.py, test_parity.py)
# train these networks for fewer epochs: export parity and finite scores need a fitted network, not a converged
# one. With PyOD's defaults, AnoGAN alone takes minutes on 1,000 rows here, and VAE's 30 epochs 20 minutes on
# mammography's 11k rows. `make parity` uses the defaults unless given --quick.
QUICK = {
    "so_gaal": {"stop_epochs": 2}, "mo_gaal": {"stop_epochs": 2}, "alad": {"epochs": 5},
    "anogan": {"epochs": 3, "epochs_query": 3}, "ae1svm": {"epochs": 5}, "lunar": {"n_epochs": 10},
    "dif": {"n_ensemble": 5}, "vae": {"epoch_num": 10}, "deep_svdd": {"epochs": 10},
}
# DevNet keeps PyOD's 50 epochs: 27 s on shuttle's 49k rows, and with 5, wbc's 378 rows took 5 gradient steps
# (training ROC-AUC 0.17 against 0.997).


def parity_params(algo: algorithms.Algorithm, quick: bool = False) -> dict[str, Any]:
    """Library defaults, seeded where the algorithm takes a seed; with `quick`, the QUICK epochs."""
    given = {"random_state": 0} if any(p.name == "random_state" for p in algo.params) else {}
    return algo.resolve_params(given | (QUICK.get(algo.name, {}) if quick else {}))


def load(datasets: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(datasets / f"{name}.npz", allow_pickle=False) as data:
        return data["X"].astype(np.float64), data["y"].astype(int)


def run_case(algorithm: str, dataset: str, X: np.ndarray, y: np.ndarray, contamination: float = 0.1,
             quick: bool = False, check_rows: bool | None = None) -> ParityRow:
    """Fit natively on X, export, score every row with onnxruntime; compare with the native reference scores
    on a sample of PARITY_SAMPLE rows. With `quick` (the test suite's subset), the QUICK epochs. With
    `check_rows` (default: as `quick`), a detector with a one-row-at-a-time reference is compared on the export
    check's rows only (not scored on every row). A detector of a fixed width (MAD: one feature) takes the first
    column(s)."""
    from sklearn.metrics import roc_auc_score

    from pynomaly import export
    from pynomaly.runtime import chunk_rows, run_chunked

    algo = algorithms.get(algorithm)
    X = X[:, : algo.n_features] if algo.n_features else X
    row = ParityRow(dataset, algorithm, X.shape[0], X.shape[1])
    try:
        t0 = time.perf_counter()
        detector = algo.build(parity_params(algo, quick), contamination)
        fit = np.arange(len(X))
        if algo.max_training_rows and len(X) > algo.max_training_rows:  # as a user must: fit on a seeded sample
            fit = np.sort(np.random.default_rng(0).choice(len(X), size=algo.max_training_rows, replace=False))
        try:  # XGBOD, DevNet learn from the labels
            detector.fit(X[fit], y[fit]) if algo.needs_labels else detector.fit(X[fit])
        except Exception as e:
            if not algo.export_limit:
                raise
            # The library's own fit fails (LSCP's np.histogram on breastw): training fails the same way, saying
            # "could not fit the data"; nothing is served.
            row.refused, row.refusal = True, f"the library's fit fails: {type(e).__name__}: {e}"
            return row
        t1 = time.perf_counter()
        try:
            graph = export.to_onnx(detector, X.shape[1]).SerializeToString()
        except export.ExportError as e:
            if not algo.export_limit:
                raise
            # Training refuses the model the same way: nothing is served.
            row.refused, row.refusal, row.fit_s = True, str(e), t1 - t0
            return row
        row.fit_s, row.export_s = t1 - t0, time.perf_counter() - t1
        by_check = quick if check_rows is None else check_rows
        row.basis = "check rows" if by_check and algo.slow_reference else "all rows"
        session = verification.session(graph)
        X = verification.seen(session, X)  # float64 rows, as served
        rows = chunk_rows(graph)  # as the server scores: bounded memory per run (shuttle × OCSVM: >20 GB in one)
        # The same verdict as training's export check, on the same verification rows (a sample of X, then synthetic).
        check = verification.verification_rows(
            X, sample=verification.SLOW_SAMPLE_ROWS if algo.slow_reference else verification.SAMPLE_ROWS)
        if row.basis == "check rows":
            # The test suite's subset: a one-row-at-a-time reference (and its per-row graph: LMDD over cardio's
            # 1,831 rows, 76 s) scores only the check's rows; their first rows are the sample of X, with labels.
            sample = np.random.default_rng(0).choice(len(X), size=min(len(X), verification.SLOW_SAMPLE_ROWS),
                                                     replace=False)
            assert np.array_equal(check[: len(sample)], X[sample])
            served, native = run_chunked(session, "X", check, rows).astype(np.float64), algo.score(detector, check)
            row.finite = bool(np.all(np.isfinite(served)))
            row.max_abs_error, row.max_rel_error = verification.compare(served, native)
            row.auc_native = float(roc_auc_score(y[sample], native[: len(sample)]))
            row.auc_served = float(roc_auc_score(y[sample], served[: len(sample)])) if row.finite else float("nan")
            row.refused = not verification.check(served, native).passed
            return row
        served = run_chunked(session, "X", X, rows).astype(np.float64)
        row.finite = bool(np.all(np.isfinite(served)))
        sample = np.random.default_rng(0).choice(len(X), size=min(len(X), PARITY_SAMPLE), replace=False)
        native_sample = algo.score(detector, X[sample])
        row.max_abs_error, row.max_rel_error = verification.compare(served[sample], native_sample)
        if len(sample) == len(X) or algo.slow_reference:
            # Both AUCs on the sample: a one-row-at-a-time reference over 49k rows (shuttle) takes hours.
            row.auc_native = float(roc_auc_score(y[sample], native_sample))
            row.auc_served = float(roc_auc_score(y[sample], served[sample])) if row.finite else float("nan")
        else:
            row.auc_native = float(roc_auc_score(y, algo.score(detector, X)))
            row.auc_served = float(roc_auc_score(y, served)) if row.finite else float("nan")
        row.refused = not verification.check(run_chunked(session, "X", check, rows), algo.score(detector, check)).passed
    except Exception as e:  # a failing case is a row of the report, not the end of the run
        row.error = f"{type(e).__name__}: {e}"
    return row


def markdown(rows: list[ParityRow]) -> str:
    lines = [
        "| dataset | algorithm | rows × features | compared on | max rel error | max abs error | ROC-AUC native "
        "| ROC-AUC served | fit s | export s | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        refused = f"refused ({r.refusal})" if r.refusal else "refused (export check)"
        verdict = "yes" if r.exact and r.ok else refused if r.ok else f"NO: {r.error or 'mismatch'}"
        lines.append(
            f"| {r.dataset} | {r.algorithm} | {r.rows} × {r.features} | {r.basis or '-'} | {r.max_rel_error:.2e} "
            f"| {r.max_abs_error:.2e} | {r.auc_native:.4f} | {r.auc_served:.4f} | {r.fit_s:.2f} | {r.export_s:.2f} | "
            f"{verdict} |"
        )
    return "\n".join(lines) + "\n"


def summary(rows: list[ParityRow]) -> str:
    by_algo: dict[str, list[ParityRow]] = {}
    for r in rows:
        by_algo.setdefault(r.algorithm, []).append(r)
    lines = ["| algorithm | exact | refused (declared limit) | worst max rel error | worst ROC-AUC gap |",
             "|---|---|---|---|---|"]
    for name, rs in by_algo.items():
        exact = [r for r in rs if r.exact and not r.error]
        worst_rel = max((r.max_rel_error for r in exact), default=float("nan"))
        worst_gap = max((abs(r.auc_served - r.auc_native) for r in exact), default=float("nan"))
        refused = sum(r.ok and not r.exact for r in rs)
        lines.append(f"| {name} | {len(exact)} / {len(rs)} | {refused} | {worst_rel:.2e} | {worst_gap:.1e} |")
    return "\n".join(lines) + "\n"


def coverage(rows: list[ParityRow]) -> str:
    """What the table holds, in a sentence: the cases, the sets with every detector and those in part, the
    verdicts."""
    algos = {r.algorithm for r in rows}
    per_set: dict[str, set[str]] = {}
    for r in rows:
        per_set.setdefault(r.dataset, set()).add(r.algorithm)
    order = sorted(per_set, key=lambda d: (DATASETS.index(d) if d in DATASETS else len(DATASETS), d))
    whole = [d for d in order if per_set[d] == algos]
    part = [f"{d} ({len(per_set[d])} of {len(algos)})" for d in order if per_set[d] != algos]
    exact = sum(r.ok and r.exact for r in rows)
    refused = sum(r.ok and not r.exact for r in rows)
    failed = len(rows) - exact - refused
    sets = "whole set" if len(whole) == 1 else "whole sets"
    return (f"{len(rows)} cases: {len(algos)} detectors on {len(whole)} {sets} ({', '.join(whole) or 'none'})"
            + (f"; in part: {', '.join(part)}" if part else "")
            + f". {exact + refused} of {len(rows)} ok: {exact} exact, {refused} refused as their detector declares"
            + (f"; {failed} FAILED" if failed else "") + ".\n")


def write(out: Path, rows: list[ParityRow]) -> None:
    (out / "parity.md").write_text("# Parity: ONNX (served) vs native\n\n" + coverage(rows) + "\n" + summary(rows)
                                   + "\n" + markdown(rows))
    with open(out / "parity.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(ParityRow)] + ["ok"], lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**asdict(r), "ok": r.ok})


def read(out: Path) -> list[ParityRow]:
    """The rows of an earlier run's parity.csv (none if there is none): `--resume` goes on from them."""
    path = out / "parity.csv"
    if not path.exists():
        return []
    types = {fl.name: str(fl.type) for fl in fields(ParityRow)}  # annotations are strings (__future__)
    parse: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": lambda v: v == "True", "str": str}
    with open(path, newline="") as f:
        return [ParityRow(**{k: parse[types[k]](v) for k, v in rec.items() if k in types}) for rec in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="../shared/datasets", help="directory of the ADBench .npz files")
    parser.add_argument("--out", default="parity-results", help="where to write parity.md and parity.csv")
    parser.add_argument("--algorithm", action="append", help="only these algorithms (repeatable)")
    parser.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    parser.add_argument("--check-rows", action="store_true",
                        help="compare the detectors whose reference scores one row at a time (ECOD, COPOD, DIF, COF, "
                             "CD, ROD, SOS, LOCI, LMDD) on the export check's rows (256 sampled + 256 synthetic), "
                             "as `make test` does, instead of serving every row: hours less on the large sets")
    parser.add_argument("--quick", action="store_true",
                        help="train the deep detectors for the test suites' few epochs (parity.QUICK) rather than "
                             "PyOD's defaults: parity needs a fitted network, not a converged one (AnoGAN's defaults "
                             "take minutes a set)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the cases already in OUT/parity.csv and run only the others (a run of every "
                             "detector on the 12 sets takes hours: it can be stopped and resumed)")
    args = parser.parse_args(argv)
    datasets = Path(args.datasets)
    if not datasets.is_dir():
        print(f"error: datasets directory {datasets} not found (give --datasets DIR)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read(out) if args.resume else []
    done = {(r.dataset, r.algorithm) for r in rows}
    for dataset in args.dataset or DATASETS:
        todo = [a for a in args.algorithm or exportable() if (dataset, a) not in done]
        if not todo:
            continue
        X, y = load(datasets, dataset)
        for algorithm in todo:
            row = run_case(algorithm, dataset, X, y, quick=args.quick, check_rows=args.check_rows)
            rows.append(row)
            print(f"{dataset:12} {algorithm:28} rel {row.max_rel_error:.1e}  auc {row.auc_native:.4f}/"
                  f"{row.auc_served:.4f}  {'ok' if row.ok else 'FAIL ' + row.error}", flush=True)
            write(out, rows)  # after every case: a long run cut short keeps its table
    failed = [r for r in rows if not r.ok]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} cases ok; table in {out / 'parity.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
