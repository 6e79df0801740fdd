"""`make parity`'s command line (benchmarks/parity.py) on a small set written here: the table, resuming a run cut
short, and a missing datasets directory."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from benchmarks import parity


@pytest.fixture
def datasets(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(180, 4)), rng.normal(4.0, 1.0, size=(20, 4))])
    y = np.r_[np.zeros(180), np.ones(20)]
    (tmp_path / "sets").mkdir()
    np.savez(tmp_path / "sets" / "wbc.npz", X=X, y=y)
    return tmp_path / "sets"


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "parity.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_resumed_run_keeps_the_cases_done_and_runs_the_rest(datasets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    common = ["--datasets", str(datasets), "--out", str(out), "--dataset", "wbc"]
    assert parity.main([*common, "--algorithm", "hbos"]) == 0
    first = _rows(out)
    assert [(r["dataset"], r["algorithm"], r["ok"]) for r in first] == [("wbc", "hbos", "True")]
    assert parity.main([*common, "--algorithm", "hbos", "--algorithm", "iforest", "--resume"]) == 0
    rows = _rows(out)
    assert [(r["algorithm"], r["ok"]) for r in rows] == [("hbos", "True"), ("iforest", "True")]
    assert rows[0] == first[0]  # read back, not run again: the same timings to the digit
    assert float(rows[1]["max_rel_error"]) <= 1e-5
    table = (out / "parity.md").read_text()
    assert "| wbc | hbos | 200 × 4 | all rows |" in table and "| wbc | iforest | 200 × 4 | all rows |" in table
    assert table.splitlines()[2] == "2 cases: 2 detectors on 1 whole set (wbc). 2 of 2 ok: 2 exact, 0 refused as " \
        "their detector declares."
    assert parity.read(out)[0].finite is True and parity.read(out)[0].rows == 200


def test_without_resume_a_run_starts_over(datasets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    common = ["--datasets", str(datasets), "--out", str(out), "--dataset", "wbc"]
    assert parity.main([*common, "--algorithm", "hbos"]) == 0
    assert parity.main([*common, "--algorithm", "iforest"]) == 0
    assert [r["algorithm"] for r in _rows(out)] == ["iforest"]


def test_a_missing_datasets_directory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parity.main(["--datasets", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    missing = tmp_path / "nowhere"
    assert capsys.readouterr().err == f"error: datasets directory {missing} not found (give --datasets DIR)\n"


def test_the_coverage_line_names_the_sets_in_part_and_what_failed() -> None:
    def row(dataset: str, algorithm: str, **kw: object) -> parity.ParityRow:
        return parity.ParityRow(dataset, algorithm, 10, 2, **kw)  # type: ignore[arg-type]

    exact = {"finite": True, "max_rel_error": 0.0, "auc_native": 0.9, "auc_served": 0.9}
    rows = [row("shuttle", "hbos", **exact), row("wbc", "hbos", **exact), row("wbc", "iforest", **exact),
            row("breastw", "lof", refused=True), row("breastw", "hbos", error="ValueError: bad")]
    assert parity.coverage(rows) == (
        "5 cases: 3 detectors on 0 whole sets (none); in part: breastw (2 of 3), shuttle (1 of 3), wbc (2 of 3). "
        "4 of 5 ok: 3 exact, 1 refused as their detector declares; 1 FAILED.\n")
    assert parity.coverage(rows[1:3]) == ("2 cases: 2 detectors on 1 whole set (wbc). 2 of 2 ok: 2 exact, 0 refused "
                                          "as their detector declares.\n")
