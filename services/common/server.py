"""Server bootstrap shared by every service: bind, health, reflection, signals.

A service's ``__main__`` reads its settings, configures logging and hands two
coroutines to :func:`run_service`::

    @exit_on_config_error
    def main() -> int:
        common = load_common_settings()
        settings = load_settings()                      # the service's own
        configure_logging(common.log_level, common.log_format, "pricing")

        async def start() -> RunningServer:
            return await start_server(
                service="pricing", address=settings.address, address_var="MM_PRICING_ADDR",
                service_names=[SERVICE_NAME], register=lambda s: add_...(servicer, s))

        return asyncio.run(run_service(settings=common, start=start, warm_up=..., on_shutdown=...))

Health reports NOT_SERVING from the moment the port is bound until warm-up
has finished, so load balancers and ``make run`` wait for real readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.auth import AuthSettings
from services.common.config import CommonSettings, ConfigError, load_auth_settings
from services.common.interceptors import default_interceptors
from services.common.logging import get_logger
from services.common.reflection import enable_reflection

_MIB = 1024 * 1024
DEFAULT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", 16 * _MIB),
    ("grpc.max_receive_message_length", 16 * _MIB),
    # Long-lived streams cross NATs and proxies that drop idle connections:
    # ping idle peers, and let clients ping us (down to every 10 s) without
    # being answered with GOAWAY "too_many_pings".
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
)

_log = get_logger("marketmesh.server")


@dataclass
class RunningServer:
    """A started server and the health servicer that gates its readiness."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]
    address: str = ""
    service: str = ""
    _stopped: bool = field(default=False, repr=False)

    async def set_serving(self) -> None:
        await self._set_all(health_pb2.HealthCheckResponse.SERVING)

    async def set_not_serving(self) -> None:
        await self._set_all(health_pb2.HealthCheckResponse.NOT_SERVING)

    async def _set_all(self, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        for name in (*self.service_names, health.OVERALL_HEALTH):
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING for good, then give in-flight calls ``grace`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        _log.info("server stopped", address=self.address, port=self.port)


async def start_server(
    *,
    service: str,
    address: str,
    service_names: Sequence[str],
    register: Callable[[grpc.aio.Server], None],
    interceptors: Sequence[grpc.aio.ServerInterceptor] | None = None,
    options: Sequence[tuple[str, int | str]] = DEFAULT_OPTIONS,
    address_var: str | None = None,
    reuse_port: bool = False,
    auth: AuthSettings | None = None,
) -> RunningServer:
    """Build, bind and start a grpc.aio server; health starts NOT_SERVING.

    ``address`` may use port 0 for an ephemeral port (``RunningServer.port``).
    ``interceptors`` default to :func:`default_interceptors`. ``reuse_port``
    lets several processes share one port (one per core); off by default so a
    second copy started by mistake fails instead of silently splitting traffic.
    ``auth`` (tokens, MM_REQUIRE_AUTH) defaults to :func:`load_auth_settings`
    from the environment, so every service authenticates the same way; it only
    applies to the default interceptors.
    """
    applied_auth: AuthSettings | None = None
    if interceptors is None:
        applied_auth = load_auth_settings() if auth is None else auth
        interceptors = default_interceptors(service, auth=applied_auth)
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[*options, ("grpc.so_reuseport", 1 if reuse_port else 0)],
    )
    register(server)

    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = tuple(service_names)
    for name in (*names, health.OVERALL_HEALTH):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    enable_reflection((*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    try:
        port = server.add_insecure_port(address)
    except RuntimeError as err:
        raise ConfigError(
            address_var or f"{service} listen address",
            address,
            "an address this host can listen on (is the port already in use?)",
        ) from err
    await server.start()
    _log.info("server started", address=address, port=port, services=list(names))
    if applied_auth is not None:
        _log_auth(applied_auth)
    return RunningServer(
        server=server,
        port=port,
        health=health_servicer,
        service_names=names,
        address=address,
        service=service,
    )


def _log_auth(auth: AuthSettings) -> None:
    # Owners only: tokens never reach a log line.
    if auth.tokens:
        _log.info("authentication", owners=list(auth.owners), require_auth=auth.require_auth)
    else:
        _log.info(
            "authentication: no tokens configured (set MM_AUTH_TOKENS); "
            "owned resources answer UNAUTHENTICATED, market data is open"
        )


async def run_service(
    *,
    settings: CommonSettings,
    start: Callable[[], Awaitable[RunningServer]],
    warm_up: Callable[[RunningServer], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT, then shut down cleanly; returns the exit status.

    ``start`` binds and starts the server (health NOT_SERVING); ``warm_up``
    (backfill, first feed batch, ...) runs while signals are already handled,
    and health turns SERVING when it returns. On a signal: health NOT_SERVING,
    ``server.stop(grace)``, then ``on_shutdown`` (close feeds and databases),
    all within ``shutdown_grace_s + 2`` seconds. Returns 0 after a clean stop,
    1 when warm-up failed or shutdown overran.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reason: list[str] = []
    exit_code = 0

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            _log.warning("already stopping", signal=sig.name)
            return
        reason.append(sig.name)
        stop.set()

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        running = await start()

        async def become_ready() -> None:
            nonlocal exit_code
            try:
                if warm_up is not None:
                    await warm_up(running)
                _freeze_warm_heap()
                await running.set_serving()
                _log.info("serving", port=running.port)
            except Exception:
                _log.exception("warm-up failed; stopping")
                exit_code = 1
                reason.append("warm-up failed")
                stop.set()

        ready = None if stop.is_set() else asyncio.create_task(become_ready())
        await stop.wait()

        grace = settings.shutdown_grace_s
        _log.info("stopping", reason=reason[0] if reason else "", grace_s=grace)
        try:
            async with asyncio.timeout(grace + 2.0):
                if ready is not None and not ready.done():
                    ready.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ready
                await running.stop(grace)
                await _drain_rpc_tasks()
                if on_shutdown is not None:
                    await on_shutdown()
        except TimeoutError:
            _log.error("shutdown overran its deadline", deadline_s=grace + 2.0)
            exit_code = 1
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    _log.info("stopped", exit_code=exit_code)
    return exit_code


def _freeze_warm_heap() -> None:
    """Move what a warm server holds (modules, clients, caches: hundreds of
    thousands of objects that live as long as the process) out of the cyclic
    GC's scans. Every full collection walked all of it again; under a
    portfolio import that was ~150 ms a time, 15% of the server's CPU. The
    garbage of warm-up is collected first, so none of it is frozen."""
    gc.collect()
    gc.freeze()
    _log.info("warm heap frozen", objects=gc.get_freeze_count())


async def _drain_rpc_tasks() -> None:
    """Let the per-call tasks grpc leaves behind after ``server.stop`` finish.

    The server reports "stopped" once the core has no live calls, a few loop
    turns before its Python call tasks end; ``asyncio.run`` would cancel those
    on exit and grpc would log each as an unhandled error with a traceback.
    grpc names them "rpc_task" and "HandleExceptions[...]" (if a later grpc
    renames them this just finds nothing to wait for).
    """
    current = asyncio.current_task()
    leftovers = [
        task
        for task in asyncio.all_tasks()
        if task is not current
        and (task.get_name() == "rpc_task" or task.get_name().startswith("HandleExceptions["))
    ]
    if leftovers:
        await asyncio.wait(leftovers, timeout=1.0)
