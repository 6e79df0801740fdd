"""The batch package's parts without a server: roots, outputs that appear whole or not at all, a chunk's first bad
row, the read-ahead, and cancel against commit. End to end: tests/integration/test_batch*.py."""

from __future__ import annotations

import os
import threading
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pynomaly.batch import tables
from pynomaly.batch.embedded import read_ahead
from pynomaly.batch.jobs import Cancelled, Control
from pynomaly.batch.locations import (
    LocalOutput,
    Location,
    discard_partial,
    input_location,
    output_location,
    partial_path,
)
from pynomaly.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    data, out = tmp_path / "data", tmp_path / "out"
    (data / "sub").mkdir(parents=True)
    out.mkdir()
    (data / "sub" / "rows.csv").write_text("a\n1\n")
    os.symlink(tmp_path, data / "up")
    return data, out


@pytest.mark.parametrize("uri, ok", [
    ("sub/rows.csv", True),
    ("file://sub/rows.csv", True),
    ("sub/../sub/rows.csv", True),
    ("{data}/sub/rows.csv", True),
    ("file://{data}/sub/rows.csv", True),
    ("../data/sub/rows.csv", True),  # leaves the root and comes back: what counts is where it lands
    ("../out/x.csv", False),
    ("up/out/x.csv", False),  # a symlink out of the root
    ("/etc/hosts.csv", False),
])
def test_inputs_resolve_inside_the_data_root_only(roots, uri, ok):
    data, _ = roots
    uri = uri.format(data=data)
    if ok:
        location = input_location(uri, data)
        assert location.local and location.path == str((data / "sub" / "rows.csv").resolve())
    else:
        with pytest.raises(PermissionDenied, match=r"is outside the server's --data-root$"):
            input_location(uri, data)


def test_without_a_root_local_paths_are_refused(roots):
    with pytest.raises(FailedPrecondition, match="^input_uri: this server has no --data-root, so it takes no local"):
        input_location("sub/rows.csv", None)
    with pytest.raises(FailedPrecondition, match="^output_uri: this server has no --output-root"):
        output_location("x.csv", None, False, "store")


def test_an_output_inside_the_model_store_is_refused(roots, tmp_path):
    _, out = roots
    (out / "store").mkdir()
    with pytest.raises(PermissionDenied, match="^output_uri: 'store/x.parquet' is inside the model store$"):
        output_location("store/x.parquet", out, True, str(out / "store"))
    assert output_location("elsewhere/x.parquet", out, False, str(out / "store")).local
    assert (out / "elsewhere").is_dir()  # the output's directory is made


def _output(out: Path, name: str, overwrite: bool, job: str = "batch-1") -> LocalOutput:
    return LocalOutput(Location(name, str(out / name)), job, overwrite)


def test_a_local_output_appears_only_when_committed(roots):
    _, out = roots
    output = _output(out, "x.csv", overwrite=False)
    assert os.listdir(out) == [".x.csv.batch-1.partial"]
    Path(output.sink).write_text("all of it")
    assert not (out / "x.csv").exists()
    output.commit()
    assert os.listdir(out) == ["x.csv"] and (out / "x.csv").read_text() == "all of it"


def test_without_overwrite_a_file_that_appeared_meanwhile_is_kept(roots):
    _, out = roots
    output = _output(out, "x.csv", overwrite=False)
    (out / "x.csv").write_text("someone else's")
    with pytest.raises(AlreadyExists, match="^output_uri: 'x.csv' appeared while the job ran"):
        output.commit()
    assert os.listdir(out) == ["x.csv"] and (out / "x.csv").read_text() == "someone else's"


def test_with_overwrite_the_file_is_replaced_and_discard_removes_the_partial(roots):
    _, out = roots
    (out / "x.csv").write_text("old")
    output = _output(out, "x.csv", overwrite=True)
    Path(output.sink).write_text("new")
    output.commit()
    assert (out / "x.csv").read_text() == "new"
    dropped = _output(out, "x.csv", overwrite=True, job="batch-2")
    dropped.discard()
    dropped.discard()  # twice is harmless
    assert os.listdir(out) == ["x.csv"]


def test_a_crash_leftover_is_found_by_job_id(roots):
    _, out = roots
    Path(partial_path(str(out / "x.csv"), "batch-9")).write_text("half")
    discard_partial(str(out / "x.csv"), "batch-9")
    assert os.listdir(out) == []


# --- a chunk's features and its first bad row ---


@pytest.mark.parametrize("columns, problem", [
    ({"a": [1.0, 2.0], "b": [3, 4]}, None),  # integers are numbers
    ({"a": pa.array([Decimal("1.5"), Decimal("2")], pa.decimal128(3, 1)), "b": [3, 4]}, None),
    ({"a": [1.0, np.nan], "b": [3, 4]}, (1, "column 'a' is nan; values must be finite (no NaN or inf)")),
    ({"a": [1.0, 2.0], "b": pa.array([3, None])}, (1, "column 'b' has no value (empty, NA, NaN or null)")),
    ({"a": [1.0, 1e300], "b": [np.inf, 4]}, (0, "column 'b' is inf; values must be finite (no NaN or inf)")),
    ({"a": [1.0, 1e300], "b": [3, 4]},
     (1, "column 'a' is 1e+300; values must be within float32's range (|x| ≤ 3.40282e+38)")),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # old float32 graphs and float64 ones: the same rules
def test_feature_matrix_names_the_first_bad_row(columns, problem, dtype):
    batch = pa.record_batch({k: pa.array(v) if not isinstance(v, pa.Array) else v for k, v in columns.items()})
    X, found = tables.feature_matrix(batch, ["b", "a"], np.dtype(dtype))
    assert X.dtype == dtype and X.shape == (2, 2) and found == problem
    if problem is None:
        np.testing.assert_array_equal(X[:, 1], np.asarray(batch.column("a").cast(pa.float64()), dtype=dtype))


def test_where_names_the_row_group():
    layout = tables.Layout(("a",), {"a": pa.float64()}, 250, (100, 200, 250), 0)
    assert [layout.where(r) for r in (0, 99, 100, 249)] == [
        "row 0 (row group 0)", "row 99 (row group 0)", "row 100 (row group 1)", "row 249 (row group 2)"]
    assert tables.Layout(("a",), {}, 0, (), 0).where(7) == "row 7"


def test_a_csv_cell_that_is_not_a_number_is_found_by_row(tmp_path):
    lines = ["a,b,note"] + [f"{i}.5,{i},n/a" for i in range(50_000)] + ["1,x2,ok"]
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    location = Location("rows.csv", str(tmp_path / "rows.csv"))
    with pytest.raises(InvalidArgument, match=r"^input_uri: row 50000: column 'b' is 'x2', not a number$"):
        tables.read_layout(location, ["a", "b"])  # the first block holds the whole file: found at once


# --- the read-ahead, cancel and commit ---


def test_read_ahead_keeps_order_and_reraises():
    assert list(read_ahead(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise InvalidArgument("row 2: bad")

    with pytest.raises(InvalidArgument, match="row 2: bad"):
        list(read_ahead(failing()))


def test_closing_the_read_ahead_stops_its_producer():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    ahead = read_ahead(endless(), depth=2)
    assert next(ahead) == 0
    ahead.close()
    count = len(produced)
    threading.Event().wait(0.3)
    assert len(produced) == count <= 4


class _Output:
    def __init__(self) -> None:
        self.committed = False

    def commit(self) -> None:
        self.committed = True


def test_cancel_and_commit_exclude_each_other():
    plan = type("Plan", (), {"output": _Output()})()
    control = Control()
    assert control.cancel() is True
    with pytest.raises(Cancelled):
        control.commit(plan)  # type: ignore[arg-type]
    assert not plan.output.committed
    control = Control()
    control.commit(plan)  # type: ignore[arg-type]
    assert plan.output.committed and control.cancel() is False  # too late: the job succeeds
