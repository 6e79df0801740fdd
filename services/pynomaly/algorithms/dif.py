"""PyOD's DIF (Deep Isolation Forest), served frozen.

DIF (pyod 3.6.7 models/dif.py) maps rows, min-max scaled with the training minimum and maximum, through
`n_ensemble` untrained bias-free MLPs with N(0, 1) weights; each representation is standardised, passed
through tanh and scored by an isolation forest of its own (`_cal_score`: 2^(-mean depth / c(max_samples)) times
the mean distance of the row's values to the split thresholds on its paths); the score is the mean over the
representations. Its decision_function fits the standardisation on the scored batch itself: a row scored alone
is always standardised to 0, and a row's score changes with the batch it comes in.

Served frozen (`DIFDetector`): the standardisation of each representation is fitted once, on the training rows'
representations, and kept. A row's score is then PyOD's own pipeline for that row alone with that scaler: its
min-max scaler, networks and isolation forests as fitted, `_cal_score` itself (`DIFDetector.decision_function`).
One deviation, so that a row's score is a fixed function the graph can follow: the networks run in float64 (their
float32 weights widened) where PyOD runs them in float32, and the representation is rounded to float32 after tanh,
where PyOD's forests read it. PyOD's float32 matrix products round differently from any other float32 library's,
and a representation moving by 1e-7 crosses an isolation tree's threshold in some rows (changing their score by
~1e-3); in float64 the graph and the reference agree to float64 rounding.

The fit runs with a forked torch RNG and numpy's global state saved and restored (PyOD's DIF seeds and draws from
both globals), seeded by `random_state` when it is set.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pynomaly.algorithms._spec import Algorithm, Param, boolean, either, integer, literal
from pynomaly.algorithms.deep import layer_sizes


class DIFDetector:
    """PyOD's DIF fitted (`detector_`), with each representation's standardisation frozen on the training rows
    (`mean_[i]`, `scale_[i]`: StandardScaler's, over the float64 representations)."""

    def __init__(self, contamination: float, **params: Any):
        self.contamination = contamination
        self.params = params

    def fit(self, X: np.ndarray, y: Any = None) -> DIFDetector:
        import torch
        from pyod.models.dif import DIF
        from sklearn.preprocessing import StandardScaler

        X = np.asarray(X, np.float64)
        np_state = np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                # PyOD's DataLoader asks for pinned memory, which a CPU-only torch warns it cannot give.
                warnings.filterwarnings("ignore", message=".*pin_memory")
                det = DIF(contamination=self.contamination, device="cpu", **self.params)  # seeds both RNGs
                det.fit(X)
        finally:
            np.random.set_state(np_state)
        self.detector_ = det
        self.nets_ = [_double(net) for net in det.net_lst]
        scalers = [StandardScaler().fit(h) for h in self.representations(X)]
        self.mean_ = [s.mean_ for s in scalers]
        self.scale_ = [s.scale_ for s in scalers]
        return self

    def representations(self, X: np.ndarray) -> list[np.ndarray]:
        """Each network's output for rows X, in float64: PyOD's input (min-max scaled, then float32)."""
        import torch

        det = self.detector_
        z = torch.from_numpy(det.minmax_scaler.transform(np.asarray(X, np.float64)).astype(np.float32))
        with torch.no_grad():
            return [net(z.double()).numpy() for net in self.nets_]

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """The frozen score: PyOD's _cal_score on each representation, standardised with the training scaler,
        tanh, rounded to float32 as PyOD's forests read it; the mean over the representations."""
        from pyod.models.dif import _cal_score

        det = self.detector_
        scores = [
            _cal_score(np.tanh((h - mean) / scale).astype(np.float32), forest)
            for h, mean, scale, forest in zip(self.representations(X), self.mean_, self.scale_, det.iForest_lst,
                                              strict=True)
        ]
        return np.average(np.asarray(scores, np.float64), axis=0)


def _double(net: Any) -> Any:
    """A float64 copy of a network (weights widened exactly)."""
    import copy

    return copy.deepcopy(net).double().eval()


def dif_score(det: DIFDetector, X: np.ndarray) -> np.ndarray:
    return np.asarray(det.decision_function(X), np.float64)


def _build_dif(p: dict[str, Any], contamination: float) -> DIFDetector:
    return DIFDetector(contamination, **p)


# pyod.utils.torch_utility.get_activation_by_name, less softmax (over no set dimension).
_ACTIVATIONS = ("elu", "identity", "leaky_relu", "relu", "sigmoid", "softplus", "tanh")

_NOTE = (
    "Frozen: the standardisation of each representation is fitted on the training rows, not on the scored batch "
    "(PyOD's decision_function fits it on the batch: a row scored alone always standardises to 0). The graph: "
    "min-max scaling and the float32 rounding of PyOD's input, each network as MatMuls in float64 (its float32 "
    "weights widened), the frozen standardisation and tanh in float64, rounded to float32 as the forests read it; "
    "per representation one TreeEnsemble gives each tree's leaf, whose path tables give the depth and the "
    "thresholds for _cal_score's deviations. Exact to the reference, which runs PyOD's networks in float64 (PyOD's "
    "own float32 products move a representation by ~1e-7, across a tree threshold in some rows)."
)

ALGORITHMS = [
    Algorithm(
        name="dif",
        implementation="pyod.models.dif.DIF",
        description="Deep Isolation Forest: isolation forests on random non-linear representations of the row "
        "(untrained random MLPs); score = mean over representations of the isolation score times the row's mean "
        "distance to the split thresholds.",
        params=(
            Param("batch_size", "int", 1000, "Rows per network pass at fit (memory only), ≥ 1.",
                  integer(1, 1_000_000)),
            Param("representation_dim", "int", 20, "Dimensions of each representation, in [1, 4096].",
                  integer(1, 4096)),
            Param("hidden_neurons", "list[int] | null", None, "Hidden layer sizes; null: [500, 100].",
                  either(literal(None), layer_sizes(1),
                         what="null or a list of 1..16 layer sizes, each an integer in [1, 4096]")),
            Param("hidden_activation", "str", "tanh", "Activation of the hidden layers.", literal(*_ACTIVATIONS)),
            Param("skip_connection", "bool", False, "Feed each layer its input concatenated to its output.",
                  boolean),
            Param("n_ensemble", "int", 50, "Representations (networks), in [1, 1000].", integer(1, 1000)),
            Param("n_estimators", "int", 6, "Isolation trees per representation, in [1, 1000].",
                  integer(1, 1000)),
            Param("max_samples", "int", 256, "Rows drawn per tree (at most the training rows), ≥ 2.",
                  integer(2, 1_000_000)),
            Param("random_state", "int | null", None, "Seed of torch and numpy for the fit; null draws fresh ones.",
                  integer(0, 2**32 - 1, none_ok=True)),
        ),
        build=_build_dif,
        score=dif_score,
        frozen=True,
        # Not one row at a time, but as slow: _cal_score loops over rows and trees in Python (~6 ms a row).
        slow_reference=True,
        export_note=_NOTE,
    ),
]
