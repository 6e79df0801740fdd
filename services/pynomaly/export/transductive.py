"""Converters of the detectors PyOD scores relative to the batch (pynomaly.algorithms.transductive), served
frozen: each graph scores a row as PyOD scores it within the training batch. One module per detector."""

from __future__ import annotations

from . import lmdd, loci, rod, sos

CONVERTERS = {**rod.CONVERTERS, **sos.CONVERTERS, **loci.CONVERTERS, **lmdd.CONVERTERS}
