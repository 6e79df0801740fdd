"""Scored files, kept in memory for the browser session that scored them: paged and sorted views, the score
histogram, and the full result as CSV. Bounded by count and bytes; the oldest go first."""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from pynomaly.errors import InvalidArgument, NotFound

PAGE_SIZE = 50
MAX_RESULTS = 32
MAX_BYTES = 512 * 2**20
HISTOGRAM_BINS = 40
CSV_CHUNK = 10_000


@dataclass
class Result:
    owner: str  # the browser session that scored the file
    name: str
    version: int
    file_name: str
    feature_names: list[str]
    X: np.ndarray
    scores: np.ndarray
    flagged: np.ndarray
    threshold: float
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    created: float = field(default_factory=time.time)
    _orders: dict[tuple[str, bool], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def nbytes(self) -> int:
        return int(self.X.nbytes + self.scores.nbytes + self.flagged.nbytes)

    @property
    def rows(self) -> int:
        return len(self.scores)

    def sort_keys(self) -> list[tuple[str, str]]:
        """(key, label) of every column a table can sort on."""
        return [("score", "score"), ("row", "row")] + [(f"f{i}", n) for i, n in enumerate(self.feature_names)]

    def order(self, key: str, descending: bool) -> np.ndarray:
        """Row indices sorted by `key` ("score", "row", "f<i>": a feature), ties in row order; cached."""
        cached = self._orders.get((key, descending))
        if cached is not None:
            return cached
        if key == "row":
            order = np.arange(self.rows)[::-1] if descending else np.arange(self.rows)
        else:
            if key == "score":
                values = self.scores
            elif key.startswith("f") and key[1:].isdigit() and int(key[1:]) < self.X.shape[1]:
                values = self.X[:, int(key[1:])]
            else:
                raise InvalidArgument(f"sort: {key!r} is not a column of this result; sort on score, row or "
                                      f"f0..f{self.X.shape[1] - 1}", field="sort")
            order = np.argsort(-values if descending else values, kind="stable")
        self._orders[(key, descending)] = order
        return order

    def page(self, page: int, key: str = "score", descending: bool = True,
             size: int = PAGE_SIZE) -> tuple[np.ndarray, int]:
        """The row indices of page `page` (1-based) in that order, and the number of pages."""
        pages = max(1, -(-self.rows // size))
        if page < 1 or page > pages:
            raise InvalidArgument(f"page: must be in [1, {pages}], got {page}", field="page")
        return self.order(key, descending)[(page - 1) * size: page * size], pages

    def histogram(self, bins: int = HISTOGRAM_BINS) -> tuple[np.ndarray, np.ndarray]:
        """(edges, counts) of the scores; the threshold is an edge where it falls inside their range, so that no bin
        mixes flagged rows with others."""
        edges = np.histogram_bin_edges(self.scores, bins=bins)
        if bins > 1 and edges[0] < self.threshold < edges[-1]:  # the nearest inner edge moves onto it
            edges[1 + int(np.argmin(np.abs(edges[1:-1] - self.threshold)))] = self.threshold
        counts, edges = np.histogram(self.scores, bins=edges)
        return edges, counts

    def csv(self) -> Iterator[bytes]:
        """row, score, is_anomaly and the features, in CSV_CHUNK-row pieces (full precision)."""
        header = ["row", "score", "is_anomaly", *self.feature_names]
        yield (",".join(_csv_field(h) for h in header) + "\n").encode()
        for start in range(0, self.rows, CSV_CHUNK):
            stop = min(start + CSV_CHUNK, self.rows)
            block = np.column_stack([np.arange(start, stop), self.scores[start:stop],
                                     self.flagged[start:stop].astype(np.int64), self.X[start:stop]])
            out = io.StringIO()
            np.savetxt(out, block, delimiter=",", fmt=["%d", "%.17g", "%d"] + ["%.17g"] * self.X.shape[1])
            yield out.getvalue().encode()


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


class Results:
    """The kept results, oldest evicted first beyond MAX_RESULTS or MAX_BYTES."""

    def __init__(self, max_results: int = MAX_RESULTS, max_bytes: int = MAX_BYTES):
        self.max_results = max_results
        self.max_bytes = max_bytes
        self._kept: OrderedDict[str, Result] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, result: Result) -> Result:
        with self._lock:
            self._kept[result.id] = result
            while len(self._kept) > self.max_results or (
                    len(self._kept) > 1 and sum(r.nbytes for r in self._kept.values()) > self.max_bytes):
                self._kept.popitem(last=False)
        return result

    def get(self, result_id: str, owner: str) -> Result:
        with self._lock:
            result = self._kept.get(result_id)
            if result is not None:
                self._kept.move_to_end(result_id)
        if result is None or result.owner != owner:
            raise NotFound(f"result {result_id!r} is not here: results are kept in this browser session's memory, "
                           f"the oldest dropped beyond {self.max_results}; score the file again")
        return result
