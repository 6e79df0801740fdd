"""PyOD's CD, keeping its training rows: the frozen score (algorithms/statistical.py) scores a row within them, and
the export (export/statistical.py) needs them. Imported when a CD is built, not when algorithms are listed."""

from __future__ import annotations

from typing import Any

import numpy as np
from pyod.models.cd import CD as _PyODCD
from sklearn.utils import check_array


class CD(_PyODCD):
    """pyod.models.cd.CD whose fit also keeps the training rows (X_train_, float64); it scores as PyOD's."""

    def fit(self, X: Any, y: Any = None) -> CD:
        super().fit(X, y)
        self.X_train_ = np.array(check_array(X), dtype=np.float64)
        return self
