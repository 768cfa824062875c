"""Shared helpers for the signals API tests: error details, auth, markets."""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from marketmesh.v1 import signals_pb2
from tests.signals.conftest import HOUR_MS

DAY_MS = 24 * HOUR_MS


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str
    fields: list[str]


def failure_of(err: grpc.aio.AioRpcError) -> Failure:
    status = rpc_status.from_call(err)
    fields: list[str] = []
    if status is not None:
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                fields += [v.field for v in bad_request.field_violations]
                assert all(v.description for v in bad_request.field_violations)
    return Failure(err.code(), err.details() or "", fields)


async def expect_failure(call: Awaitable[object]) -> Failure:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return failure_of(info.value)


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def day_floor(ms: int) -> int:
    # Each phase of ticks starts on a day boundary: pricing's sweep closes a
    # past day's candle once ticks stop, so a later phase must not go back into it.
    return ms - ms % DAY_MS


def walk(start: float, n: int, step: float, seed: int, noise: float = 0.002) -> list[float]:
    rng = np.random.default_rng(seed)
    return (start * np.exp(np.cumsum(step + rng.normal(0.0, noise, n)))).tolist()


async def read_events(
    call: grpc.aio.UnaryStreamCall, into: list[signals_pb2.SignalEvent], stop: asyncio.Event
) -> None:
    """Collects the events of a StreamSignalEvents call until stopped."""
    while not stop.is_set():
        message = await call.read()
        if message is grpc.aio.EOF:
            return
        into.extend(message.events)
