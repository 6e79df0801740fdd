"""`make parity` (its second half): algorithm "auto" against single detectors on the 12 ADBench sets; with
--labels, its search on labels against them (`make automl-labels`).

    python -m benchmarks.automl --datasets ../shared/datasets --out parity-results

For each set, side by side in one run:
- "auto": trained through the platform's own path (fit → export → verify, pynomaly.training.train) with its
  defaults, every row scored by the served ONNX graph;
- each single default detector (PyOD defaults, seeded: IForest, ECOD, HBOS, KNN, LOF, COPOD), fitted on all rows
  and scored by its training scores — the datasets README's protocol A, measured here again;
- ADBench's published column (its own protocol: a 70/30 split, min-max scaled), for reference.

ROC-AUC throughout, with the labels used for scoring only. The targets, checked at the end (exit 1 when missed):
"auto" at or above the median single detector on every set, and its mean above every single detector's mean.
Writes automl.md (the table) into --out.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.parity import DATASETS, load, parity_params
from pynomaly import algorithms, training, verification

SINGLES = ("iforest", "ecod", "hbos", "knn", "lof", "copod")
PUBLISHED = {"iforest": "IForest", "ecod": "ECOD", "hbos": "HBOS", "knn": "KNN", "lof": "LOF", "copod": "COPOD"}


def auto_auc(X: np.ndarray, y: np.ndarray) -> tuple[float, float, dict]:
    """(ROC-AUC of the served scores over every row, seconds to train, the model card's AutoML part)."""
    from sklearn.metrics import roc_auc_score

    algo = algorithms.get("auto")
    spec = training.TrainSpec("auto", "auto", algo.resolve_params({}), 0.1, [f"f{i}" for i in range(X.shape[1])])
    t = time.perf_counter()
    result = training.train(spec, X)
    seconds = time.perf_counter() - t
    served = verification.scores(verification.session(result.onnx_model), X)
    return float(roc_auc_score(y, served)), seconds, result.manifest


def single_auc(name: str, X: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    algo = algorithms.get(name)
    detector = algo.build(parity_params(algo), 0.1).fit(X)
    return float(roc_auc_score(y, detector.decision_scores_))


def published(datasets: Path) -> dict[tuple[str, str], float]:
    path = datasets / "reference_roc_auc.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {(r["dataset"], r["detector"]): float(r["adbench_published"]) for r in csv.DictReader(f)}


def table(rows: list[dict]) -> str:
    head = "| dataset | auto | median single | " + " | ".join(SINGLES) + " | auto members | auto s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['dataset']} | **{r['auto']:.4f}** | {r['median']:.4f} | "
                     + " | ".join(f"{r[s]:.4f}" + (f" ({r['pub_' + s]:.3f})" if 'pub_' + s in r else "")
                                  for s in SINGLES)
                     + f" | {r['members']} | {r['seconds']:.1f} |")
    means = {k: float(np.mean([r[k] for r in rows])) for k in ("auto", "median", *SINGLES)}
    lines.append("| **mean** | **{auto:.4f}** | {median:.4f} | ".format(**means)
                 + " | ".join(f"{means[s]:.4f}" for s in SINGLES) + " | | |")
    return "\n".join(lines) + "\n"


def verdict(rows: list[dict]) -> tuple[bool, str]:
    below = [r["dataset"] for r in rows if r["auto"] < r["median"]]
    mean_auto = float(np.mean([r["auto"] for r in rows]))
    best_name, best_mean = max(((s, float(np.mean([r[s] for r in rows]))) for s in SINGLES), key=lambda p: p[1])
    ok = not below and mean_auto > best_mean
    text = (f"auto at or above the median single detector on {len(rows) - len(below)} of {len(rows)} sets"
            + (f" (below on {', '.join(below)})" if below else "")
            + f"; mean ROC-AUC {mean_auto:.4f} vs the best single detector's mean {best_mean:.4f} ({best_name})")
    return ok, text


def held_out_auc(name: str, X: np.ndarray, y: np.ndarray, train: np.ndarray, held: np.ndarray) -> float:
    """A single default detector as a search trial is scored: fitted on the training split, its served graph's
    ROC-AUC on the held-out rows."""
    from sklearn.metrics import roc_auc_score

    from pynomaly import export

    algo = algorithms.get(name)
    detector = algo.build(parity_params(algo), 0.1).fit(X[train])
    session = verification.session(export.to_onnx(detector, X.shape[1]).SerializeToString())
    return float(roc_auc_score(y[held], verification.scores(session, X[held])))


def labelled(datasets: Path, names: list[str], out: Path) -> int:
    """"auto" with labels (its defaults: 30 trials) vs the best single default detector on the same held-out split;
    target: at or above it on at least 10 of the 12 sets."""
    from pynomaly import labels
    from pynomaly.algorithms import tuning

    lines = ["| dataset | auto, tuned (held-out ROC-AUC) | best single default | trials | job s |",
             "|---|---|---|---|---|"]
    wins = 0
    for name in names:
        X, y = load(datasets, name)
        y = labels.check_labels(y, len(X))
        algo = algorithms.get("auto")
        spec = training.TrainSpec("auto", "auto", algo.resolve_params({}), labels.contamination(y, 0.0),
                                  [f"f{i}" for i in range(X.shape[1])], labels=y)
        t = time.perf_counter()
        result = training.train(spec, X)
        seconds = time.perf_counter() - t
        tuned = result.manifest["automl"]["tuning"]
        train, held = tuning.split(y, tuned["seed"])
        singles = {s: held_out_auc(s, X, y, train, held) for s in SINGLES}
        best = max(singles, key=singles.__getitem__)
        wins += tuned["best_roc_auc"] >= singles[best]
        winner = result.manifest["candidates"][-1]["algorithm"]
        lines.append(f"| {name} | **{tuned['best_roc_auc']:.4f}** ({winner}) | {singles[best]:.4f} ({best}) | "
                     f"{tuned['trials']} | {seconds:.1f} |")
        print(lines[-1], flush=True)
    text = f"tuned at or above the best single default detector on {wins} of {len(names)} sets"
    (out / "automl-labels.md").write_text("# AutoML with labels: the search's best held-out ROC-AUC vs single "
                                          "detectors on the same split\n\n" + "\n".join(lines) + "\n\n" + text + "\n")
    print("\n".join(lines) + "\n\n" + text)
    return 0 if wins >= min(10, len(names)) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="../shared/datasets", help="directory of the ADBench .npz files")
    parser.add_argument("--out", default="parity-results", help="where to write automl.md")
    parser.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    parser.add_argument("--labels", action="store_true", help="the search with labels instead (automl-labels.md)")
    args = parser.parse_args(argv)
    datasets = Path(args.datasets)
    if not datasets.is_dir():
        print(f"error: datasets directory {datasets} not found (give --datasets DIR)", file=sys.stderr)
        return 2
    if args.labels:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        return labelled(datasets, args.dataset or list(DATASETS), Path(args.out))
    reference = published(datasets)
    rows = []
    for name in args.dataset or DATASETS:
        X, y = load(datasets, name)
        auc, seconds, manifest = auto_auc(X, y)
        row = {"dataset": name, "auto": auc, "seconds": seconds,
               "members": ", ".join(c["algorithm"] for c in manifest["candidates"] if c["outcome"] == "kept")}
        for s in SINGLES:
            row[s] = single_auc(s, X, y)
            if (name, PUBLISHED[s]) in reference:
                row["pub_" + s] = reference[name, PUBLISHED[s]]
        row["median"] = float(np.median([row[s] for s in SINGLES]))
        rows.append(row)
        print(f"{name:12} auto {auc:.4f}  median single {row['median']:.4f}  ({row['members']}; {seconds:.1f} s)",
              flush=True)
    ok, text = verdict(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "automl.md").write_text(
        "# AutoML without labels: \"auto\" vs single detectors (ROC-AUC, every row)\n\n"
        "Single detectors: PyOD defaults, fitted on all rows (in parentheses: ADBench's published value).\n\n"
        + table(rows) + "\n" + text + "\n")
    print("\n" + table(rows) + "\n" + text + f"\ntable in {out / 'automl.md'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
