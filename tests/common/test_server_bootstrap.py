"""start_server: health gating and reflection, through the stock client stubs."""

from __future__ import annotations

import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.config import ConfigError
from services.common.server import start_server

from .conftest import Echo

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    return response.status


async def test_binds_an_ephemeral_port(echo: Echo) -> None:
    assert echo.running.port > 0
    assert await echo.unary()(b"ok") == b"echo:ok"


async def test_health_is_not_serving_until_set_serving(echo: Echo) -> None:
    for name in ("", "test.Echo"):
        assert await _status(echo.channel, name) == NOT_SERVING
    await echo.running.set_serving()
    for name in ("", "test.Echo"):
        assert await _status(echo.channel, name) == SERVING
    await echo.running.set_not_serving()
    assert await _status(echo.channel, "test.Echo") == NOT_SERVING


async def test_unknown_service_is_not_found(echo: Echo) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _status(echo.channel, "no.Such")
    assert err.value.code() is grpc.StatusCode.NOT_FOUND


async def test_health_watch_sees_graceful_shutdown(echo: Echo) -> None:
    await echo.running.set_serving()
    stub = health_pb2_grpc.HealthStub(echo.channel)
    watch = stub.Watch(health_pb2.HealthCheckRequest(service="test.Echo"))
    assert (await watch.read()).status == SERVING
    await echo.running.health.enter_graceful_shutdown()
    assert (await watch.read()).status == NOT_SERVING
    # Graceful shutdown is final: a late set_serving does not undo it.
    await echo.running.set_serving()
    assert await _status(echo.channel, "") == NOT_SERVING
    watch.cancel()


async def test_reflection_lists_services(echo: Echo) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(echo.channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    response = await call.read()
    await call.done_writing()
    names = {service.name for service in response.list_services_response.service}
    assert names == {
        "test.Echo",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_port_in_use_is_a_config_error_naming_the_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(ConfigError) as err:
            await start_server(
                service="test",
                address=address,
                address_var="MM_TEST_ADDR",
                service_names=[],
                register=lambda server: None,
            )
    assert err.value.name == "MM_TEST_ADDR"
    assert err.value.value == address
