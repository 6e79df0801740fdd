"""The error reasons: one list (pynomaly.errors.REASONS), the README's table equal to it, each reason's status from
the one mapping (server/status.py), and the details a status carries decodable by grpcio-status."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from pynomaly import errors
from pynomaly.algorithms import as_declared
from pynomaly.server.status import CODES, to_status

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_lists_every_reason_with_its_status():
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([A-Z_]+)` \| (.+) \|$", README.read_text(), re.M)
    table = {reason: (status, meaning) for reason, status, meaning in rows}
    assert len(table) == len(rows), "a reason is listed twice"
    expected = {}
    for reason, (cls, meaning) in errors.REASONS.items():
        code = next(CODES[c] for c in cls.__mro__ if c in CODES)
        expected[reason] = (code.name, meaning)
    assert table == expected


def test_every_class_reason_is_registered():
    for cls in CODES:
        assert cls.reason in errors.REASONS and errors.REASONS[cls.reason][0] is cls
    assert errors.REASONS[errors.PayloadTooLarge.reason][0] is errors.PayloadTooLarge


def _details(e: errors.PynomalyError) -> tuple[grpc.StatusCode, str, dict[str, object]]:
    code, message, trailers = to_status(e, "test")
    (key, value), = trailers
    assert key == "grpc-status-details-bin"
    status = status_pb2.Status.FromString(value)
    assert (status.code, status.message) == (code.value[0], message)
    found: dict[str, object] = {}
    for any_ in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.ResourceInfo):
            if any_.Is(kind.DESCRIPTOR):
                found[kind.DESCRIPTOR.name] = msg = kind()
                any_.Unpack(msg)
    return code, message, found


@pytest.mark.parametrize("error, field", [
    (errors.InvalidArgument("rows.raw_values: 19 bytes, expected 20"), "rows.raw_values"),
    (errors.InvalidArgument("params.max_features[1]: must be a finite number, got -inf"), "params.max_features[1]"),
    (errors.InvalidArgument("threshold must be finite, got nan"), None),
    (errors.InvalidArgument("threshold must be finite, got nan", field="threshold"), "threshold"),
    (errors.NotFound("rows: not a field of a NotFound"), None),
])
def test_field_read_from_the_message_prefix(error, field):
    assert errors.field_of(error) == field
    code, message, found = _details(error)
    assert found["ErrorInfo"].reason == error.reason and found["ErrorInfo"].domain == "pynomaly.io"
    if field is None:
        assert "BadRequest" not in found
    else:
        (violation,) = found["BadRequest"].field_violations
        assert (violation.field, violation.description, violation.reason) == (field, message, error.reason)


def test_not_found_names_the_resource_and_survives_pickling():
    error = pickle.loads(pickle.dumps(errors.unknown_alias("cardio", "production")))  # as Ray returns it
    code, message, found = _details(error)
    assert (code, message) == (grpc.StatusCode.NOT_FOUND, "model 'cardio' has no alias 'production'")
    assert found["ErrorInfo"].reason == "UNKNOWN_ALIAS"
    info = found["ResourceInfo"]
    assert (info.resource_type, info.resource_name) == ("pynomaly.v1.ModelVersion", "cardio:production")


def test_an_internal_error_has_no_details():
    assert to_status(RuntimeError("bug"), "test").trailing_metadata == ()


@pytest.mark.parametrize("value, words", [
    (None, "null"), (True, "bool true"), (100.0, "number 100"), (2.5, "number 2.5"), ("auto", 'string "auto"'),
    ([1, 2], "list [1, 2]"), ({"a": 1}, 'struct {"a": 1}'), ("x" * 60, 'string "' + "x" * 38 + "…"),
])
def test_values_are_described_in_the_api_words(value, words):
    assert errors.describe_value(value) == words


@pytest.mark.parametrize("value, declared, typed", [
    (100.0, "int", 100), (None, "int | null", None), (3.0, "int | 'auto'", 3), ("auto", "int | 'auto'", "auto"),
    (1.0, "int | float", 1.0), (0.5, "float", 0.5), (2.0, "float", 2.0), ([1.0, 2.0], "list[int]", [1, 2]),
    (True, "bool | int", True), (1.0, "", 1.0),
])
def test_params_come_back_in_their_declared_types(value, declared, typed):
    got = as_declared(value, declared)
    assert got == typed and type(got) is type(typed)


def test_every_reason_the_code_raises_is_registered():
    """Each `reason="..."` written in the package is one of REASONS (so the README's table lists it)."""
    package = Path(errors.__file__).parent
    used = {m for path in package.rglob("*.py") if "/v1/" not in str(path) and "/v2/" not in str(path)
            for m in re.findall(r'reason="([A-Z_]+)"', path.read_text())}
    assert used and used - set(errors.REASONS) == set()
