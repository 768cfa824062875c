"""run_service in a real process: SIGTERM stops it cleanly within the grace period."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
GRACE_S = 0.5

# A service whose only method never finishes on its own, so SIGTERM arrives
# with a call in flight and server.stop(grace) has to cut it off.
SCRIPT = """
import asyncio, sys
from pathlib import Path
import grpc
import services
from services.common.config import CommonSettings
from services.common.logging import configure_logging
from services.common.server import run_service, start_server

async def slow(request, context):
    await asyncio.sleep(60)
    return b""

def register(server):
    handler = grpc.unary_unary_rpc_method_handler(slow)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Slow", {"Call": handler}),))

async def start():
    running = await start_server(service="slow", address="127.0.0.1:0",
                                 service_names=["test.Slow"], register=register)
    print(running.port, flush=True)
    return running

async def warm_up(running):
    await asyncio.sleep(0.05)

async def on_shutdown():
    print("on_shutdown ran", flush=True)

configure_logging("info", "json", "slow")
settings = CommonSettings("info", "json", Path("."), float(sys.argv[1]))
sys.exit(asyncio.run(run_service(settings=settings, start=start, warm_up=warm_up,
                                 on_shutdown=on_shutdown)))
"""


async def _wait_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for _ in range(500):
        response = await stub.Check(health_pb2.HealthCheckRequest(service="test.Slow"))
        if response.status == health_pb2.HealthCheckResponse.SERVING:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never became SERVING")


async def test_sigterm_stops_within_grace_and_exits_0() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        str(GRACE_S),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await _wait_serving(channel)
            in_flight = channel.unary_unary("/test.Slow/Call")(b"")
            await asyncio.sleep(0.1)  # let the call reach the handler
            sent_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            returncode = await asyncio.wait_for(proc.wait(), GRACE_S + 10)
            elapsed = time.monotonic() - sent_at
            try:
                await in_flight
                raise AssertionError("the in-flight call should have been cut off")
            except grpc.aio.AioRpcError as err:
                assert err.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stdout = (await proc.stdout.read()).decode()
    stderr = (await proc.stderr.read()).decode()
    assert returncode == 0, stderr
    assert elapsed < GRACE_S + 2.0, elapsed
    assert "on_shutdown ran" in stdout
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    for event in ("server started", "serving", "stopping", "server stopped", "stopped"):
        assert event in events, stderr
    assert "Traceback" not in stderr
