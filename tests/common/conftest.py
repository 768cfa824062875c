"""Fixtures: captured JSON logs and a real grpc.aio server with a tiny raw-bytes service.

The test service ``test.Echo`` uses no .proto: requests and responses are raw
bytes, and the request text selects the behaviour (``ok``, ``invalid``, ...).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from services.common.errors import InvalidArgument, NotFound
from services.common.logging import configure_logging, get_logger
from services.common.server import RunningServer, start_server

SERVICE = "test"
SERVICE_NAME = "test.Echo"


@dataclass
class LogCapture:
    stream: io.StringIO

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def rpc(self, method: str | None = None) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line.get("event") == "rpc" and (method is None or line["method"] == method)
        ]

    async def wait_rpc(self, method: str, count: int = 1) -> list[dict[str, Any]]:
        """Stream calls log when the server notices the end; that can trail the client."""
        for _ in range(500):
            found = self.rpc(method)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.01)
        raise AssertionError(f"no rpc log line for {method}: {self.lines()}")


@pytest.fixture
def logs() -> LogCapture:
    stream = io.StringIO()
    configure_logging("info", "json", SERVICE, stream=stream)
    return LogCapture(stream)


@dataclass
class EchoState:
    """What the servicer observed, for the tests to check."""

    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    client_messages: list[bytes] = field(default_factory=list)


_inner_log = get_logger("tests.echo")


def _fail_on(command: bytes) -> None:
    if command == b"invalid":
        raise InvalidArgument.many([("symbol", "is required"), ("limit", "must be <= 10")])
    if command == b"value":
        raise ValueError("period must be >= 1")
    if command == b"notfound":
        raise NotFound("symbol FOO-USD is not listed")
    if command == b"boom":
        raise RuntimeError("secret internal detail")


def _echo_handlers(state: EchoState) -> grpc.GenericRpcHandler:
    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        _inner_log.info("inside handler")
        _fail_on(request)
        if request == b"abort":
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")
        if request == b"slow":
            await asyncio.sleep(30)
        return b"echo:" + request

    async def server_stream(
        request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        # request: "<count>" or "<count>:<command>" (command raised after count messages)
        count_text, _, command = request.partition(b":")
        try:
            for i in range(int(count_text)):
                yield b"%d" % i
            _fail_on(command)
            if command == b"forever":
                await asyncio.sleep(30)
        finally:
            state.stream_closed.set()

    async def writer_stream(request: bytes, context: grpc.aio.ServicerContext) -> None:
        for i in range(int(request)):
            await context.write(b"%d" % i)

    async def client_stream(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        count = 0
        async for message in requests:
            state.client_messages.append(message)
            _fail_on(message)
            count += 1
        return b"%d" % count

    async def bidi(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for message in requests:
            _fail_on(message)
            yield b"echo:" + message

    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "WriterStream": grpc.unary_stream_rpc_method_handler(writer_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        },
    )


@dataclass
class Echo:
    running: RunningServer
    channel: grpc.aio.Channel
    state: EchoState

    def unary(self) -> grpc.aio.UnaryUnaryMultiCallable:
        return self.channel.unary_unary(f"/{SERVICE_NAME}/Unary")

    def server_stream(self, name: str = "ServerStream") -> grpc.aio.UnaryStreamMultiCallable:
        return self.channel.unary_stream(f"/{SERVICE_NAME}/{name}")

    def client_stream(self) -> grpc.aio.StreamUnaryMultiCallable:
        return self.channel.stream_unary(f"/{SERVICE_NAME}/ClientStream")

    def bidi(self) -> grpc.aio.StreamStreamMultiCallable:
        return self.channel.stream_stream(f"/{SERVICE_NAME}/Bidi")


@pytest.fixture
async def echo(logs: LogCapture) -> AsyncIterator[Echo]:
    state = EchoState()
    handlers = _echo_handlers(state)

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((handlers,))

    running = await start_server(
        service=SERVICE,
        address="127.0.0.1:0",
        service_names=[SERVICE_NAME],
        register=register,
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield Echo(running, channel, state)
    finally:
        await channel.close()
        await running.stop(0)
