"""The standard interceptor through a real server: errors, request ids, logs, metrics."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import REGISTRY

from services.common.interceptors import ServiceInterceptor
from services.common.server import start_server

from .conftest import Echo, LogCapture

UNARY = "/test.Echo/Unary"
SERVER_STREAM = "/test.Echo/ServerStream"
WRITER_STREAM = "/test.Echo/WriterStream"
CLIENT_STREAM = "/test.Echo/ClientStream"
BIDI = "/test.Echo/Bidi"


def _requests(method: str, code: str) -> float:
    value = REGISTRY.get_sample_value(
        "marketmesh_grpc_requests_total", {"service": "test", "method": method, "code": code}
    )
    return value or 0.0


async def _unary_error(echo: Echo, request: bytes) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await echo.unary()(request)
    return err.value


def _violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    # The sync helper reads the already-finished call's code, details and trailers.
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


async def test_ok_call_logs_one_line_with_request_id(echo: Echo, logs: LogCapture) -> None:
    call = echo.unary()(b"ok", metadata=(("x-request-id", "req-123"),))
    assert await call == b"echo:ok"
    # Unary calls echo the id in the trailers only (default_interceptors).
    assert ("x-request-id", "req-123") in tuple(await call.trailing_metadata())
    (line,) = logs.rpc(UNARY)
    assert line["code"] == "OK"
    assert line["request_id"] == "req-123"
    assert line["service"] == "test"
    assert line["level"] == "info"
    assert isinstance(line["latency_ms"], float)
    assert line["peer"].startswith("ipv4:127.0.0.1:")
    assert line["timestamp"].endswith("Z")
    # A line the servicer logs while handling the call carries the same id.
    (inner,) = [entry for entry in logs.lines() if entry["event"] == "inside handler"]
    assert inner["request_id"] == "req-123"


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 200, "a/b?c=<d>"])
async def test_missing_or_insane_request_id_is_replaced(
    echo: Echo, logs: LogCapture, sent: str | None
) -> None:
    metadata = () if sent is None else (("x-request-id", sent),)
    call = echo.unary()(b"ok", metadata=metadata)
    await call
    echoed = dict(await call.trailing_metadata())["x-request-id"]
    assert len(echoed) == 32
    assert int(echoed, 16) >= 0
    assert logs.rpc(UNARY)[0]["request_id"] == echoed


async def test_request_ids_differ_between_calls(echo: Echo, logs: LogCapture) -> None:
    await asyncio.gather(*(echo.unary()(b"ok") for _ in range(5)))
    lines = logs.rpc(UNARY)
    assert len(lines) == 5
    assert len({line["request_id"] for line in lines}) == 5


async def test_invalid_argument_has_field_violations(echo: Echo, logs: LogCapture) -> None:
    error = await _unary_error(echo, b"invalid")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "symbol: is required; limit: must be <= 10"
    assert _violations(error) == [("symbol", "is required"), ("limit", "must be <= 10")]
    (line,) = logs.rpc(UNARY)
    assert line["code"] == "INVALID_ARGUMENT"
    assert line["level"] == "info"
    assert "exception" not in line


async def test_value_error_is_invalid_argument(echo: Echo, logs: LogCapture) -> None:
    error = await _unary_error(echo, b"value")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "period must be >= 1"
    assert logs.rpc(UNARY)[0]["code"] == "INVALID_ARGUMENT"


async def test_not_found(echo: Echo, logs: LogCapture) -> None:
    error = await _unary_error(echo, b"notfound")
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "symbol FOO-USD is not listed"


async def test_unexpected_error_is_internal_with_request_id_and_no_trace(
    echo: Echo, logs: LogCapture
) -> None:
    call = echo.unary()(b"boom", metadata=(("x-request-id", "rid-7"),))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() is grpc.StatusCode.INTERNAL
    assert err.value.details() == "internal error (request id rid-7)"
    assert "secret internal detail" not in str(err.value.debug_error_string())
    (line,) = logs.rpc(UNARY)
    assert line["code"] == "INTERNAL"
    assert line["level"] == "error"
    assert "RuntimeError: secret internal detail" in line["exception"]
    assert "Traceback" in line["exception"]
    # Logged once: no other line repeats the traceback (grpc's own logger stays quiet).
    assert sum("secret internal detail" in str(entry) for entry in logs.lines()) == 1


async def test_explicit_abort_keeps_its_code(echo: Echo, logs: LogCapture) -> None:
    error = await _unary_error(echo, b"abort")
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "not yours"
    # The servicer sent the status itself, so the line may trail the client.
    (line,) = await logs.wait_rpc(UNARY)
    assert line["code"] == "PERMISSION_DENIED"


async def test_metrics_count_calls_by_code(echo: Echo, logs: LogCapture) -> None:
    ok_before = _requests(UNARY, "OK")
    bad_before = _requests(UNARY, "INVALID_ARGUMENT")
    hist_before = (
        REGISTRY.get_sample_value(
            "marketmesh_grpc_request_duration_seconds_count",
            {"service": "test", "method": UNARY},
        )
        or 0.0
    )
    await echo.unary()(b"ok")
    await echo.unary()(b"ok")
    await _unary_error(echo, b"invalid")
    assert _requests(UNARY, "OK") == ok_before + 2
    assert _requests(UNARY, "INVALID_ARGUMENT") == bad_before + 1
    hist_after = REGISTRY.get_sample_value(
        "marketmesh_grpc_request_duration_seconds_count", {"service": "test", "method": UNARY}
    )
    assert hist_after == hist_before + 3


async def test_server_stream_counts_and_request_id(echo: Echo, logs: LogCapture) -> None:
    call = echo.server_stream()(b"3", metadata=(("x-request-id", "s-1"),))
    assert [message async for message in call] == [b"0", b"1", b"2"]
    assert dict(await call.initial_metadata())["x-request-id"] == "s-1"
    (line,) = await logs.wait_rpc(SERVER_STREAM)
    assert (line["code"], line["sent"], line["received"]) == ("OK", 3, 1 - 1)
    assert line["request_id"] == "s-1"


async def test_writer_style_stream_is_counted(echo: Echo, logs: LogCapture) -> None:
    assert [m async for m in echo.server_stream("WriterStream")(b"4")] == [b"0", b"1", b"2", b"3"]
    (line,) = await logs.wait_rpc(WRITER_STREAM)
    assert (line["code"], line["sent"]) == ("OK", 4)


async def test_server_stream_error_after_messages_is_mapped(echo: Echo, logs: LogCapture) -> None:
    call = echo.server_stream()(b"2:invalid")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for message in call:
            received.append(message)
    assert received == [b"0", b"1"]
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in _violations(err.value)] == ["symbol", "limit"]
    (line,) = await logs.wait_rpc(SERVER_STREAM)
    assert (line["code"], line["sent"]) == ("INVALID_ARGUMENT", 2)
    assert echo.state.stream_closed.is_set()


async def test_server_stream_internal_error(echo: Echo, logs: LogCapture) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in echo.server_stream()(b"1:boom"):
            pass
    assert err.value.code() is grpc.StatusCode.INTERNAL
    assert err.value.details().startswith("internal error (request id ")
    (line,) = await logs.wait_rpc(SERVER_STREAM)
    assert line["code"] == "INTERNAL"
    assert line["request_id"] in err.value.details()


async def test_client_cancel_logs_cancelled_and_closes_the_generator(
    echo: Echo, logs: LogCapture
) -> None:
    call = echo.server_stream()(b"1:forever")
    assert await call.read() == b"0"
    call.cancel()
    (line,) = await logs.wait_rpc(SERVER_STREAM)
    assert line["code"] == "CANCELLED"
    assert line["sent"] == 1
    await asyncio.wait_for(echo.state.stream_closed.wait(), 5)
    assert _requests(SERVER_STREAM, "CANCELLED") >= 1


async def test_deadline_logs_deadline_exceeded(echo: Echo, logs: LogCapture) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await echo.unary()(b"slow", timeout=0.2)
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    (line,) = await logs.wait_rpc(UNARY)
    assert line["code"] == "DEADLINE_EXCEEDED"


async def test_client_stream_counts_and_maps_errors(echo: Echo, logs: LogCapture) -> None:
    async def messages(*items: bytes):  # type: ignore[no-untyped-def]
        for item in items:
            yield item

    assert await echo.client_stream()(messages(b"a", b"b", b"c")) == b"3"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await echo.client_stream()(messages(b"a", b"value", b"c"))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    first, second = await logs.wait_rpc(CLIENT_STREAM, 2)
    assert (first["code"], first["received"], first["sent"]) == ("OK", 3, 0)
    assert (second["code"], second["received"]) == ("INVALID_ARGUMENT", 2)


async def test_bidi_stream_counts_and_maps_errors(echo: Echo, logs: LogCapture) -> None:
    call = echo.bidi()()
    await call.write(b"x")
    assert await call.read() == b"echo:x"
    await call.write(b"y")
    assert await call.read() == b"echo:y"
    await call.write(b"notfound")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    (line,) = await logs.wait_rpc(BIDI)
    assert (line["code"], line["sent"], line["received"]) == ("NOT_FOUND", 2, 3)


async def test_health_checks_are_logged_too(echo: Echo, logs: LogCapture) -> None:
    await health_pb2_grpc.HealthStub(echo.channel).Check(health_pb2.HealthCheckRequest())
    (line,) = logs.rpc("/grpc.health.v1.Health/Check")
    assert line["code"] == "OK"


async def test_request_id_is_in_trailers_on_success_and_every_error(echo: Echo) -> None:
    for request in (b"ok", b"invalid", b"value", b"boom", b"abort"):
        call = echo.unary()(request, metadata=(("x-request-id", "t-1"),))
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call
        assert ("x-request-id", "t-1") in tuple(await call.trailing_metadata()), request


async def test_unary_header_can_be_left_out() -> None:
    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    def register(server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(unary)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Plain", {"Call": handler}),)
        )

    running = await start_server(
        service="test",
        address="127.0.0.1:0",
        service_names=["test.Plain"],
        register=register,
        interceptors=[ServiceInterceptor("test", unary_header=False)],
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = channel.unary_unary("/test.Plain/Call")(b"x", metadata=(("x-request-id", "h"),))
            assert await call == b"x"
            assert "x-request-id" not in dict(await call.initial_metadata())
            assert dict(await call.trailing_metadata())["x-request-id"] == "h"
    finally:
        await running.stop(0)
