"""ONNX converters of this family (filled in by issue #3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx

CONVERTERS: dict[str, Callable[[Any, int], onnx.ModelProto]] = {}
