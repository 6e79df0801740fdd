"""Properties over arbitrary input (hypothesis): model references and request decoding either succeed with a result
that keeps the rules, or raise the domain's InvalidArgument — never another exception (which the server would
answer INTERNAL). The strategies lean on what broke before: trailing newlines, non-ASCII digits, NUL, NaN and ±inf,
huge or zero dimensions, bytes that are not the message."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynomaly import algorithms
from pynomaly.errors import InvalidArgument
from pynomaly.refs import ModelRef, check_alias, check_name, is_digits, parse_ref
from pynomaly.server import convert
from pynomaly.v1 import common_pb2, detect_pb2, explain_pb2, model_pb2, train_pb2

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)

# --- model references ---

TRICKY = st.sampled_from(["\n", "\r", "\0", " ", "/", "..", "@", ":", "²", "١", "٣", "𝟙", "Ⅻ", "é", "-", "_", "."])
NAMEISH = st.from_regex(NAME_RULE, fullmatch=True)
PIECE = st.one_of(NAMEISH, st.from_regex(r"[0-9]{1,25}", fullmatch=True), TRICKY, st.text(max_size=8))
REFISH = st.one_of(st.text(max_size=80), st.lists(PIECE, max_size=5).map("".join))


def _valid_name(text: str) -> bool:
    return NAME_RULE.fullmatch(text) is not None


@FAST
@given(REFISH)
def test_a_reference_parses_to_a_valid_ref_that_round_trips_or_is_refused(text):
    try:
        ref = parse_ref(text)
    except InvalidArgument as e:
        assert str(e)
        return
    assert _valid_name(ref.name)
    assert ref.version is None or ref.alias is None
    if ref.version is not None:
        assert 1 <= ref.version < 10**18
    if ref.alias is not None:
        assert _valid_name(ref.alias) and ref.alias != "latest"
    assert parse_ref(str(ref)) == ref
    assert str(ref).isascii() and "\n" not in str(ref)


@FAST
@given(REFISH)
def test_names_and_aliases_are_full_ascii_matches(text):
    for check in (check_name, check_alias):
        try:
            assert check(text) == text
        except InvalidArgument:
            assert not _valid_name(text) or check is check_alias
            continue
        assert _valid_name(text)
        if check is check_alias:
            assert not is_digits(text) and text != "latest"


@FAST
@given(st.text(max_size=30))
def test_is_digits_only_for_ascii_digits(text):
    assert is_digits(text) == (text != "" and all("0" <= c <= "9" for c in text))


@FAST
@given(NAMEISH, st.integers(min_value=1, max_value=10**18 - 1))
def test_a_valid_version_reference_parses_to_its_parts(name, version):
    assert parse_ref(f"{name}@{version}") == ModelRef(name, version=version)


# --- request decoding ---

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
DIMS = st.one_of(st.integers(min_value=-3, max_value=8), st.sampled_from([0, 2**31, 2**62, 2**63 - 1, -(2**63)]))


@st.composite
def matrices(draw) -> common_pb2.Matrix:
    m = common_pb2.Matrix(rows=draw(DIMS), columns=draw(DIMS))
    for field in draw(st.lists(st.sampled_from([f for f, _, _ in convert._MATRIX_FIELDS]), max_size=2, unique=True)):
        if field.startswith("raw"):
            setattr(m, field, draw(st.binary(max_size=80)))
        else:
            getattr(m, field).extend(draw(st.lists(FLOATS, max_size=20)))
    return m


def values() -> st.SearchStrategy[struct_pb2.Value]:
    leaves = st.one_of(
        FLOATS.map(lambda v: struct_pb2.Value(number_value=v)),
        st.text(max_size=10).map(lambda v: struct_pb2.Value(string_value=v)),
        st.booleans().map(lambda v: struct_pb2.Value(bool_value=v)),
        st.just(struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)),
        st.just(struct_pb2.Value()),  # no kind set at all
    )

    def nest(children: st.SearchStrategy[struct_pb2.Value]) -> st.SearchStrategy[struct_pb2.Value]:
        return st.one_of(
            st.lists(children, max_size=4).map(
                lambda vs: struct_pb2.Value(list_value=struct_pb2.ListValue(values=vs))),
            st.dictionaries(st.text(max_size=6), children, max_size=4).map(
                lambda d: struct_pb2.Value(struct_value=struct_pb2.Struct(fields=d))),
        )

    return st.recursive(leaves, nest, max_leaves=12)


PARAM_NAMES = st.one_of(st.sampled_from(sorted({p.name for a in algorithms.ALGORITHMS.values() for p in a.params})),
                        st.text(max_size=12))


@FAST
@given(matrices())
def test_a_matrix_decodes_to_its_shape_or_is_refused(m):
    try:
        X = convert.matrix_to_array(m, "rows")
    except InvalidArgument as e:
        assert str(e).startswith("rows")
        return
    assert X.shape == (m.rows, m.columns) and X.dtype in (np.float32, np.float64)


@FAST
@given(st.dictionaries(PARAM_NAMES, values(), max_size=4), st.sampled_from(sorted(algorithms.ALGORITHMS)))
def test_params_decode_and_resolve_or_are_refused(params, algorithm):
    request = train_pb2.CreateTrainingJobRequest(params=params)
    try:
        decoded = convert.values_to_dict(request.params)
    except InvalidArgument as e:
        # a NaN/inf number, or a Value with no kind (what a client that misspells the kind sends)
        assert str(e).startswith("params.") and ("finite" in str(e) or "sets no kind" in str(e))
        return
    assert set(decoded) == set(params)
    try:
        resolved = algorithms.get(algorithm).resolve_params(decoded)
    except InvalidArgument as e:
        assert str(e).startswith("params")
        return
    assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in resolved.values())


@FAST
@given(matrices(), st.lists(st.text(max_size=10), max_size=6), st.dictionaries(PARAM_NAMES, values(), max_size=3),
       st.text(max_size=20))
def test_a_training_request_decodes_or_is_refused(matrix, names, params, data_uri):
    request = train_pb2.CreateTrainingJobRequest(model_name="m", algorithm="iforest", matrix=matrix,
                                                 feature_names=names, params=params, data_uri=data_uri)
    try:
        args = convert.training_job_args(request)
    except InvalidArgument:
        return
    assert args["feature_names"] == names and args["data_uri"] == data_uri


MESSAGES = [train_pb2.CreateTrainingJobRequest, detect_pb2.DetectRequest, explain_pb2.ExplainRequest,
            model_pb2.ImportModelRequest]
DECODERS = {
    train_pb2.CreateTrainingJobRequest: convert.training_job_args,
    detect_pb2.DetectRequest: convert.detect_args,
    explain_pb2.ExplainRequest: convert.explain_args,
    model_pb2.ImportModelRequest: convert.import_spec,
}


@pytest.mark.parametrize("message", MESSAGES, ids=[m.DESCRIPTOR.name for m in MESSAGES])
@FAST
@given(raw=st.one_of(st.binary(max_size=200), matrices().map(lambda m: b"\x12" + bytes([m.ByteSize()]) +
                                                                     m.SerializeToString()
                                                                     if m.ByteSize() < 128 else b"")))
def test_request_bytes_parse_and_convert_or_are_refused(message, raw):
    """Bytes off the wire: protobuf parses them or raises DecodeError (server/decoding.py answers it), and a parsed
    request converts or raises InvalidArgument."""
    try:
        request = message.FromString(raw)
    except DecodeError:
        return
    try:
        DECODERS[message](request)
    except InvalidArgument:
        pass
