"""The Open Inference Protocol's transport-neutral part (pynomaly.oip.inference) and the HTTP error table, table-driven:
what each binding relies on, without a server."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pynomaly import errors
from pynomaly.oip.inference import InputTensor, OutputTensor, decode_rows, model_ref, requested_outputs
from pynomaly.web.status import STATUSES, UnsupportedMediaType, to_status

X = np.arange(10, dtype=np.float64).reshape(2, 5) / 7


@pytest.mark.parametrize("name, version, ref", [
    ("m", "", "m"), ("m", "3", "m@3"), ("m", "007", "m@7"), ("m", "production", "m:production"),
    ("m", "latest", "m:latest"), ("m.v-2_x", "canary-1", "m.v-2_x:canary-1"),
])
def test_model_ref(name, version, ref):
    assert model_ref(name, version) == ref


@pytest.mark.parametrize("name, version, message", [
    ("", "", "model_name is required"),
    ("m@1", "", "model_name 'm@1' is invalid"),
    ("m:a", "", "model_name 'm:a' is invalid"),
    ("m", "0", "model_version: version numbers start at 1, got '0'"),
    ("m", "a b", "model_version 'a b' is invalid"),
    ("m", "-1", "model_version '-1' is invalid"),
    ("m", "²", "model_version '²' is invalid"),  # str.isdigit accepts it, int refuses it
    ("m", "١", "model_version '١' is invalid"),  # int reads it as 1
    ("m", "prod\n", "model_version 'prod\\n' is invalid"),
    ("m\n", "", "model_name 'm\\n' is invalid"),
    ("m", "1" * 5000, "model_version: version numbers have at most 18 digits, got 5000"),
])
def test_model_ref_rejects(name, version, message):
    with pytest.raises(errors.InvalidArgument) as e:
        model_ref(name, version)
    assert message in str(e.value)


@pytest.mark.parametrize("tensor", [
    InputTensor("rows", "FP32", [2, 5], values=X.astype(np.float32)),
    InputTensor("rows", "FP32", [2, 5], values=X.ravel().tolist()),
    InputTensor("rows", "FP64", [2, 5], values=X.tolist()),
    InputTensor("rows", "FP32", [2, 5], raw=X.astype("<f4").tobytes()),
    InputTensor("rows", "FP64", [2, 5], raw=X.astype("<f8").tobytes()),
], ids=["array", "flat list", "nested list", "raw FP32", "raw FP64"])
def test_decode_rows_gives_the_tensors_precision_from_any_form(tensor):
    rows = decode_rows(tensor)
    dtype = np.float32 if tensor.datatype == "FP32" else np.float64
    assert rows.dtype == dtype and rows.shape == (2, 5)
    np.testing.assert_array_equal(rows, X.astype(dtype))


def test_integer_json_data_is_read_as_numbers():
    np.testing.assert_array_equal(decode_rows(InputTensor("rows", "FP64", [1, 3], values=[1, 2, 3])), [[1, 2, 3]])


@pytest.mark.parametrize("tensor, message", [
    (InputTensor("x", "FP32", [2, 5]), "inputs[0].name: unknown input 'x'"),
    (InputTensor("rows", "INT64", [2, 5]), "rows: datatype 'INT64' is not supported; send FP32 or FP64"),
    (InputTensor("rows", "fp32", [2, 5]), "rows: datatype 'fp32' is not a datatype of the protocol"),
    (InputTensor("rows", "FP32", [10], values=[0] * 10), "rows: shape [10] has 1 dimension(s)"),
    (InputTensor("rows", "FP32", [2, -5]), "rows: shape [2, -5] has a negative dimension"),
    (InputTensor("rows", "FP32", [2, 5], where="inputs[0].data"), "rows: no values; set inputs[0].data"),
    (InputTensor("rows", "FP32", [2, 5], values=[[0] * 5, [0] * 4], where="d"), "rows: d is nested unevenly"),
    (InputTensor("rows", "FP32", [2, 5], values=[None] * 10, where="d"), "rows: d must hold numbers only"),
    (InputTensor("rows", "FP32", [2, 5], values=[True] * 10, where="d"), "rows: d must hold numbers only"),
    (InputTensor("rows", "FP32", [2, 5], values=[[0] * 2] * 5, where="d"),
     "rows: d is nested as [5, 2], but the shape is [2, 5]"),
    (InputTensor("rows", "FP32", [2, 5], values=[0] * 11, where="d"), "rows: d holds 11 values; shape [2, 5] takes 10"),
    (InputTensor("rows", "FP64", [2, 5], raw=b"\0" * 40, where="raw"),
     "rows: raw holds 40 bytes; shape [2, 5] of FP64 takes 80"),
    (InputTensor("rows", "FP32", [2, 5], values=[0] * 10, raw=b"\0" * 40), "given both as contents and as raw bytes"),
    (InputTensor("rows", "FP32", [1, 2], values=[0, float("inf")]), "rows: row 0 column 1 is inf"),
    (InputTensor("rows", "FP64", [1, 2], values=[-1e300, 0]), "rows: row 0 column 0 is -1e+300; values must be within"),
    (InputTensor("rows", "FP32", [0, 5], values=[]), "rows: the matrix is empty"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_decode_rows_rejects(tensor, message):
    with pytest.raises(errors.InvalidArgument) as e:
        decode_rows(tensor)
    assert message in str(e.value)


@pytest.mark.parametrize("names, expected", [
    ([], ("anomaly_score", "is_anomaly")), (["is_anomaly"], ("is_anomaly",)),
    (["is_anomaly", "anomaly_score"], ("is_anomaly", "anomaly_score")),
])
def test_requested_outputs(names, expected):
    assert requested_outputs(names) == expected


def test_output_bytes_are_little_endian_and_one_byte_per_bool():
    assert OutputTensor("s", "FP64", np.array([1.0], ">f8")).to_bytes() == np.array([1.0], "<f8").tobytes()
    assert OutputTensor("f", "BOOL", np.array([True, False])).to_bytes() == b"\x01\x00"


@pytest.mark.parametrize("error, status", [
    (errors.InvalidArgument("x"), 400), (errors.FailedPrecondition("x"), 400), (errors.NotFound("x"), 404),
    (errors.AlreadyExists("x"), 409), (errors.PermissionDenied("x"), 403), (errors.PayloadTooLarge("x"), 413),
    (errors.ResourceExhausted("x"), 429), (UnsupportedMediaType("x"), 415), (errors.Unavailable("x"), 503),
    (errors.DeadlineExceeded("x"), 504),
])
def test_http_status_of_each_domain_error(error, status):
    assert to_status(error, "route") == (status, "x")


def test_every_domain_error_has_an_http_status():
    assert {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.PynomalyError)} - {
        errors.PynomalyError} <= set(STATUSES)


def test_a_bug_is_500_with_an_id_in_the_log_and_no_detail(caplog):
    with caplog.at_level(logging.ERROR, logger="pynomaly.web"):
        status, message = to_status(KeyError("secret internals"), "route")
    assert status == 500 and "secret" not in message
    error_id = message.split("error id ")[1].split(";")[0]
    assert len(error_id) == 12 and error_id in caplog.text and "KeyError" in caplog.text


async def test_http_connections_have_nagle_off():
    """The socket bind() makes is one asyncio turns TCP_NODELAY on for (with Nagle on, each response's body waited
    for the client's delayed ACK: 40 ms a call)."""
    import asyncio
    import socket

    from pynomaly.web.server import bind

    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):  # type: ignore[override]
            accepted.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    sock = bind("127.0.0.1:0")
    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(accepted, 5) != 0
        writer.close()
    finally:
        server.close()
