"""The tables of a batch job, read and written with pyarrow a chunk at a time, never whole: Parquet by record
batches within its row groups, CSV by blocks. What both engines share: the input's layout, the columns a job reads
and keeps, a chunk's feature matrix and its first bad row, the output's columns and its writer.

Rows are numbered from 0 in file order, the header excluded (as Detect numbers the rows of a request); Parquet
messages add the row group.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from pynomaly.batch.locations import Location
from pynomaly.errors import InvalidArgument
from pynomaly.rows import F32_MAX

CHUNK_ROWS = 65536  # rows scored at a time: with the read-ahead, what bounds a job's memory, whatever the file's size
CSV_BLOCK_BYTES = 4 << 20  # a CSV block (~10-40k rows of 20 features)
SCORE, FLAG = "anomaly_score", "is_anomaly"
FIELD = "input_uri"

Table: TypeAlias = Any  # a pa.Table or a pa.RecordBatch (pyarrow has no type stubs)


@dataclass(frozen=True)
class Layout:
    """What the input holds, read from its footer (Parquet) or its header and first block (CSV)."""

    columns: tuple[str, ...]
    types: dict[str, pa.DataType]
    rows: int  # 0: unknown until read (CSV)
    row_groups: tuple[int, ...]  # Parquet: the end row (exclusive) of each row group
    size: int  # bytes

    def where(self, row: int) -> str:
        """'row 1234', with its row group in a Parquet file."""
        if not self.row_groups:
            return f"row {row}"
        group = next((g for g, end in enumerate(self.row_groups) if row < end), len(self.row_groups) - 1)
        return f"row {row} (row group {group})"


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _kind(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    return "true/false" if pa.types.is_boolean(t) else str(t)


def csv_options(features: list[str], columns: list[str] | None = None) -> dict[str, Any]:
    return {
        "read_options": pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        # Features are read as float64 whatever they look like; a column absent from the file is ignored here.
        "convert_options": pcsv.ConvertOptions(column_types={f: pa.float64() for f in features},
                                               include_columns=columns or []),
    }


@contextmanager
def _opened(location: Location) -> Iterator[Any]:
    """The input as pyarrow reads it (a local path, or an fsspec file closed afterwards)."""
    source = location.open_read()
    try:
        yield source
    finally:
        if not isinstance(source, str):
            source.close()


def read_layout(location: Location, features: list[str]) -> Layout:
    """The input's columns, their types and its row count; InvalidArgument if it cannot be read or has no rows."""
    try:
        if location.suffix == ".parquet":
            with _opened(location) as source, pq.ParquetFile(source) as parquet:
                meta, schema = parquet.metadata, parquet.schema_arrow
            ends = tuple(int(e) for e in np.cumsum([meta.row_group(g).num_rows for g in range(meta.num_row_groups)]))
            layout = Layout(tuple(schema.names), {f.name: f.type for f in schema}, int(meta.num_rows), ends, 0)
            empty = meta.num_rows == 0
        else:
            with _opened(location) as source:
                reader = pcsv.open_csv(source, **csv_options(features))
                schema = reader.schema
                empty = all(batch.num_rows == 0 for batch in _first(reader))
            layout = Layout(tuple(schema.names), {f.name: f.type for f in schema}, 0, (), 0)
    except pa.ArrowInvalid as e:
        if location.suffix == ".csv" and _CSV_CONVERSION.search(str(e)):
            raise InvalidArgument(explain_csv_error(location, features, None, e, 0)) from None
        raise InvalidArgument(f"{FIELD}: cannot read {location.uri!r}: {e}") from None
    except (OSError, pa.ArrowException) as e:
        raise InvalidArgument(f"{FIELD}: cannot read {location.uri!r}: {e}") from None
    if empty:
        raise InvalidArgument(f"{FIELD}: {location.uri!r} has no rows")
    size = os.path.getsize(location.path) if location.local else int(location.fs.size(location.path))
    return Layout(layout.columns, layout.types, layout.rows, layout.row_groups, size)


def _first(reader: Any) -> Iterator[pa.RecordBatch]:
    """The CSV reader's batches up to the first one with rows (an empty first block is possible, if rare)."""
    for batch in reader:
        yield batch
        if batch.num_rows:
            return


def select_columns(layout: Layout, features: list[str], id_column: str, pass_through: bool,
                   uri: str) -> tuple[list[str], list[str]]:
    """(columns to read, in file order; columns copied into the output). InvalidArgument naming what is wrong."""
    seen: set[str] = set()
    for c in layout.columns:
        if c in seen:
            raise InvalidArgument(f"{FIELD}: {uri!r} has two columns named {c!r}")
        seen.add(c)
    if id_column and id_column not in seen:
        raise InvalidArgument(f"id_column: {id_column!r} is not a column of {uri!r}")
    missing = [f for f in features if f not in seen]
    if missing:
        raise InvalidArgument(f"{FIELD}: {uri!r} lacks {len(missing)} of the model's feature columns: "
                              f"{', '.join(map(repr, missing[:5]))}{', …' if len(missing) > 5 else ''}")
    extra = [c for c in layout.columns if c not in features and c != id_column]
    if extra and not pass_through:
        raise InvalidArgument(f"{FIELD}: {uri!r} has column(s) that are not features of the model: "
                              f"{', '.join(map(repr, extra[:5]))}{', …' if len(extra) > 5 else ''}; name one as "
                              "id_column, set pass_through to copy them all, or drop them")
    for f in features:
        if not _numeric(layout.types[f]):
            raise InvalidArgument(f"{FIELD}: feature column {f!r} of {uri!r} is {_kind(layout.types[f])}, not numeric")
    keep = list(layout.columns) if pass_through else [id_column] if id_column else []
    clash = [c for c in keep if c in (SCORE, FLAG)]
    if clash:
        raise InvalidArgument(f"{FIELD}: column {clash[0]!r} of {uri!r} would clash with the output's own; "
                              "rename it or copy only an id_column")
    wanted = set(features) | set(keep)
    return [c for c in layout.columns if c in wanted], keep


# --- reading ---


def read_batches(location: Location, layout: Layout, columns: list[str], features: list[str],
                 chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[pa.RecordBatch, float]]:
    """The input's rows a chunk at a time, each with the share of the input read so far."""
    if location.suffix == ".parquet":
        with _opened(location) as source, pq.ParquetFile(source, pre_buffer=False, buffer_size=1 << 20) as parquet:
            done = 0
            for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns, use_threads=False):
                done += batch.num_rows
                yield batch, done / max(layout.rows, 1)
        return
    source = pa.OSFile(location.path) if location.local else location.open_read()
    done = 0
    try:
        reader = pcsv.open_csv(source, **csv_options(features, columns))
        for batch in reader:
            done += batch.num_rows
            yield batch, source.tell() / max(layout.size, 1)
    except pa.ArrowInvalid as e:
        raise InvalidArgument(explain_csv_error(location, features, layout, e, done)) from None
    finally:
        source.close()


_CSV_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to ([^:]+): invalid value")


def explain_csv_error(location: Location, features: list[str], layout: Layout | None, error: Exception,
                      done: int) -> str:
    """A CSV reader's error as a message naming the row: pyarrow names the column and value of a cell it cannot
    convert but not its row (or, reading serially, its line), so the column is read once more, as text, to find
    it (an error path only)."""
    m = _CSV_CONVERSION.search(str(error))
    if m is None:
        return f"{FIELD}: cannot read {location.uri!r} after row {done}: {error}"
    with _opened(location) as source:
        names = pcsv.open_csv(source, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES)).schema.names
    name = names[int(m.group(1))]
    target = pa.float64() if name in features else layout.types[name] if layout else pa.string()
    found = _first_bad_cell(location, name, target)
    if found is None:
        return f"{FIELD}: cannot read {location.uri!r} after row {done}: {error}"
    row, text = found
    if name in features:
        return f"{FIELD}: row {row}: column {name!r} is {text!r}, not a number"
    return f"{FIELD}: row {row}: column {name!r} is {text!r}, not {target} as in the rows before it"


def _first_bad_cell(location: Location, name: str, target: pa.DataType) -> tuple[int, str] | None:
    nulls = set(pcsv.ConvertOptions().null_values)
    options = pcsv.ConvertOptions(column_types={name: pa.string()}, include_columns=[name])
    with _opened(location) as source:
        offset = 0
        for batch in pcsv.open_csv(source, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                                   convert_options=options):
            texts = batch.column(0)
            try:
                pc.cast(pc.if_else(pc.is_in(texts, pa.array(sorted(nulls))), None, texts), target)
            except pa.ArrowInvalid:
                for i, text in enumerate(texts.to_pylist()):
                    if text in nulls:
                        continue
                    try:
                        pc.cast(pa.array([text]), target)
                    except pa.ArrowInvalid:
                        return offset + i, text
            offset += batch.num_rows
    return None


# --- a chunk's features, its scores ---


def feature_matrix(batch: Table, features: list[str],
                   dtype: np.dtype[Any]) -> tuple[np.ndarray, tuple[int, str] | None]:
    """(the chunk's rows × features in the model's dtype, its first bad row as (index in chunk, problem) or None).
    A missing value, NaN, inf, or a value beyond float32's range (the rows every graph is built for, whatever its
    input type: as Detect's check_rows) is bad."""
    X = np.empty((batch.num_rows, len(features)), dtype=dtype)
    for j, name in enumerate(features):
        column = batch.column(name)
        if column.type != pa.float64():
            column = pc.cast(column, pa.float64(), safe=False)
        with np.errstate(over="ignore"):  # 1e300 in float32 becomes inf, and is reported below
            X[:, j] = column.to_numpy(zero_copy_only=False)  # nulls become NaN
    ok = np.abs(X) <= F32_MAX  # False for NaN and inf too
    if ok.all():
        return X, None
    row, col = (int(i) for i in np.argwhere(~ok)[0])
    name = features[col]
    value = batch.column(name)[row].as_py()
    if value is None:
        return X, (row, f"column {name!r} has no value (empty, NA, NaN or null)")
    value = float(value)
    if math.isfinite(value):
        return X, (row, f"column {name!r} is {value:g}; values must be within float32's range (|x| ≤ {F32_MAX:g})")
    return X, (row, f"column {name!r} is {value}; values must be finite (no NaN or inf)")


def scored(batch: Table, keep: list[str], scores: np.ndarray, threshold: float) -> Table:
    """The output's columns for a chunk: the kept input columns, then anomaly_score (in the dtype the scoring
    returned) and is_anomaly."""
    arrays = [batch.column(k) for k in keep] + [pa.array(scores), pa.array(scores > threshold)]
    names = [*keep, SCORE, FLAG]
    if isinstance(batch, pa.Table):
        return pa.Table.from_arrays(arrays, names=names)
    return pa.RecordBatch.from_arrays(arrays, names=names)


# --- writing ---


class TableWriter:
    """The output file, opened with the first chunk's schema: Parquet (one row group a chunk, `metadata` in its
    key-value metadata) or CSV (header row; no place for metadata)."""

    def __init__(self, sink: Any, suffix: str, metadata: dict[str, str]):
        self._sink, self._suffix, self._metadata = sink, suffix, metadata
        self._writer: Any = None

    def write(self, table: Table) -> None:
        if self._writer is None:
            if self._suffix == ".parquet":
                schema = table.schema.with_metadata(self._metadata)
                self._writer = pq.ParquetWriter(self._sink, schema, compression="snappy")
            else:
                self._writer = pcsv.CSVWriter(self._sink, table.schema)
            self._schema = table.schema
        if table.schema != self._schema:  # e.g. Ray Data's blocks: same columns, metadata may differ
            table = table.cast(self._schema)
        self._writer.write(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
