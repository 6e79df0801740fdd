import numpy as np
import pandas as pd
import pytest

from pynomaly.data import read_table
from pynomaly.errors import InvalidArgument

X = np.array([[1.0, 2.0], [3.0, 4.5]])


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_reads_each_format(tmp_path, suffix):
    path = tmp_path / f"d{suffix}"
    frame = pd.DataFrame(X, columns=["a", "b"])
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        np.savez(path, X=X, y=np.array([0, 1]))
    out, names = read_table(path)
    np.testing.assert_array_equal(out, X)
    assert out.dtype == np.float64
    assert names == (["f0", "f1"] if suffix == ".npz" else ["a", "b"])


def _write(path, content):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, r"--data: cannot read missing.csv: .*No such file"),
        ("d.txt", b"1,2\n", r"unsupported file type '.txt'; use one of .csv, .parquet, .npz"),
        ("d.csv", b"a,b\n1,x\n", r"column 'b' is not numeric"),
        ("d.parquet", b"not parquet", r"cannot read d.parquet"),
        ("d.npz", b"not a zip", r"^--data: d.npz is not a valid .npz file \(a zip archive of .npy arrays, as "
                                r"numpy.savez writes\)$"),  # never numpy's advice to allow pickles
        ("missing.npz", None, r"--data: cannot read missing.npz: .*No such file"),
        ("d.csv", b"", r"cannot read d.csv"),
        ("d.csv", b"a,b\n", r"^--data: d.csv has no rows$"),  # not "column 'a' is not numeric"
    ],
)
def test_unreadable_files_name_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidArgument, match=message):
        read_table(path, "--data")


def test_npz_of_python_objects(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.array([[1, "a"]], dtype=object))
    with pytest.raises(InvalidArgument, match="^--data: d.npz: array 'X' holds Python objects, not numbers$"):
        read_table(tmp_path / "d.npz", "--data")


def test_npz_without_X(tmp_path):
    np.savez(tmp_path / "d.npz", data=X)
    with pytest.raises(InvalidArgument, match="has no array 'X' \\(it has: data\\)"):
        read_table(tmp_path / "d.npz")


@pytest.mark.parametrize(
    "suffix, dtypes, expected",
    [
        (".parquet", ["float32", "float32"], np.float32),  # float32 data stays float32: sent as float32 rows
        (".parquet", ["float32", "float64"], np.float64),  # one double column: float64
        (".parquet", ["float32", "int64"], np.float64),
        (".npz", ["float32"], np.float32),
        (".npz", ["int32"], np.float64),
        (".csv", ["float32", "float32"], np.float64),  # CSV numbers are read as float64
    ],
)
def test_precision_follows_the_data(tmp_path, suffix, dtypes, expected):
    path = tmp_path / f"d{suffix}"
    values = np.array([[1.5, 2.0], [-3.25, 4.0]])  # exact in every dtype used
    if suffix == ".npz":
        np.savez(path, X=values.astype(dtypes[0]))
    else:
        frame = pd.DataFrame({name: values[:, i].astype(t) for i, (name, t) in enumerate(zip("ab", dtypes,
                                                                                              strict=True))})
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path)
    out, _ = read_table(path)
    assert out.dtype == expected
    np.testing.assert_array_equal(out, values.astype(dtypes[0]) if suffix == ".npz" else values)
