"""The server interceptor every service runs: request id, auth, one log line, metrics, errors.

grpc.aio interceptors only see the handler lookup, not the call, so this one
wraps each method handler's behaviour once per method (cached) and does its
work around the servicer code:

* a request id, taken from ``x-request-id`` when the caller sent a sane one,
  bound in structlog's contextvars for every line of the call and echoed as
  ``x-request-id`` in the trailing metadata (free: it rides on the status) and
  in the initial metadata (one extra batch op; for unary calls that is a
  measurable share of the call, so ``unary_header=False`` leaves it out);
* the caller: ``authorization: Bearer <token>`` checked by an
  :class:`services.common.auth.Authenticator` (a bad token, or no token when
  ``MM_REQUIRE_AUTH=1``, is UNAUTHENTICATED before the servicer runs); the
  owner is bound for :func:`services.common.auth.current_owner` and logged as
  ``owner``, the token never;
* exactly one ``rpc`` log line per call when it ends (streams: when the stream
  ends or is cancelled, with message counts) and the request metrics;
* the error edge: a ServiceError or ValueError aborts with
  :func:`services.common.errors.to_rpc_status`; anything else is logged with its
  traceback and becomes INTERNAL with the request id, never a stack trace.

Response streams run through the reader/writer API: the wrapper drives the
servicer's async generator and writes each message itself, so a client
cancellation lands here (logged as CANCELLED) and the generator is closed at
once, running its ``finally`` (unsubscribe) instead of waiting for the GC.

Servicers must not call ``send_initial_metadata`` (it has already been sent)
and should add to, not replace, the trailing metadata. Sync (non-async)
handlers are passed through untouched, auth included: every handler a service
registers on its grpc.aio server is async, as are health and reflection.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import grpc
import structlog
from grpc._cython import cygrpc  # ExecuteBatchError: a write to a client that has gone

from services.common.auth import (
    AUTHORIZATION_KEY,
    Authenticator,
    AuthSettings,
    Caller,
    reset_caller,
    set_caller,
)
from services.common.errors import is_mapped_error, to_rpc_status
from services.common.logging import get_logger
from services.common.metrics import GRPC_LATENCY, GRPC_REQUESTS

REQUEST_ID_KEY = "x-request-id"
# Long enough for UUIDs and trace ids, short and plain enough to log safely.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_ERROR_LEVEL_CODES = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
_DEADLINE_TOLERANCE_S = 0.05
_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class _NeverRaised(Exception):
    """Stands in if a grpc release drops ExecuteBatchError: matches nothing."""


_BATCH_ERROR: type[BaseException] = getattr(cygrpc, "ExecuteBatchError", _NeverRaised)

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


def request_id_from(metadata: Any) -> str:
    """The caller's ``x-request-id`` when it is sane, else a fresh uuid4 hex."""
    return _read_metadata(metadata)[0]


def _read_metadata(metadata: Any) -> tuple[str, tuple[str, ...]]:
    """The request id and every ``authorization`` value, in one pass."""
    request_id: str | None = None
    authorization: tuple[str, ...] = ()
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY:
            if request_id is None:
                sane = isinstance(value, str) and _SANE_REQUEST_ID.fullmatch(value)
                request_id = value if sane else ""
        elif key == AUTHORIZATION_KEY:
            authorization = (*authorization, value if isinstance(value, str) else "")
    return request_id or uuid.uuid4().hex, authorization


class _Call:
    """Per-call state; lives in the wrapper's frame, never shared between calls."""

    __slots__ = (
        "authorization",
        "caller_reset",
        "metadata",
        "method",
        "received",
        "request_id",
        "sent",
        "start",
        "streaming",
        "tokens",
    )

    def __init__(
        self, method: str, request_id: str, streaming: bool, authorization: tuple[str, ...] = ()
    ) -> None:
        self.method = method
        self.request_id = request_id
        # Held only until the call is authenticated, then dropped.
        self.authorization = authorization
        self.caller_reset: Any = None
        self.metadata = ((REQUEST_ID_KEY, request_id),)
        self.streaming = streaming
        self.sent = 0
        self.received = 0
        self.tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        self.start = time.perf_counter()


class _CountingContext:
    """The servicer context with reads and writes counted (reader/writer streams)."""

    __slots__ = ("_call", "_context")

    def __init__(self, context: grpc.aio.ServicerContext, call: _Call) -> None:
        self._context = context
        self._call = call

    async def read(self) -> Any:
        message = await self._context.read()
        if message is not grpc.aio.EOF:
            self._call.received += 1
        return message

    async def write(self, message: Any) -> None:
        # Counted once handed to gRPC: a cancel can interrupt the await after
        # the peer already has the message.
        self._call.sent += 1
        await self._context.write(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class _CountingRequests:
    """The request stream with messages counted as the servicer pulls them."""

    __slots__ = ("_call", "_iterator")

    def __init__(self, requests: Any, call: _Call) -> None:
        self._iterator = requests.__aiter__()
        self._call = call

    def __aiter__(self) -> _CountingRequests:
        return self

    async def __anext__(self) -> Any:
        message = await self._iterator.__anext__()
        self._call.received += 1
        return message


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """Request id, caller, one log line and metrics per call, and the error edge.

    ``auth`` defaults to no tokens and anonymous calls allowed: owned methods
    then answer UNAUTHENTICATED saying no tokens are configured.
    """

    def __init__(
        self, service: str, *, unary_header: bool = True, auth: AuthSettings | None = None
    ) -> None:
        self._service = service
        self._unary_header = unary_header
        settings = auth or AuthSettings()
        self._authenticator = Authenticator(settings)
        configured = self._authenticator.configured
        # One immutable Caller per owner, built once: binding it costs a contextvar set.
        self._anonymous = Caller(owner=None, tokens_configured=configured)
        self._callers = {
            owner: Caller(owner=owner, tokens_configured=configured) for owner in settings.owners
        }
        self._log = get_logger("marketmesh.rpc")
        # method -> (original handler, wrapped handler): wrap once, not per call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        self._counters: dict[tuple[str, grpc.StatusCode], Any] = {}
        self._histograms: dict[str, Any] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    # -- wrapping ---------------------------------------------------------------

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        req_stream, resp_stream = handler.request_streaming, handler.response_streaming
        if req_stream and resp_stream:
            inner = handler.stream_stream
        elif req_stream:
            inner = handler.stream_unary
        elif resp_stream:
            inner = handler.unary_stream
        else:
            inner = handler.unary_unary
        is_agen = inspect.isasyncgenfunction(inner)
        if not (is_agen or inspect.iscoroutinefunction(inner)):
            return handler
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }

        if not req_stream and not resp_stream:

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                call = self._begin(method, context, streaming=False)
                try:
                    self._authenticate(call)
                    if self._unary_header:
                        await context.send_initial_metadata(call.metadata)
                    response = await inner(request, context)
                except BaseException as exc:
                    await self._fail(call, context, exc)
                self._finish(call, context, _code_of(context))
                return response

            return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)

        if req_stream and not resp_stream:

            async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
                call = self._begin(method, context, streaming=True)
                try:
                    self._authenticate(call)
                    await context.send_initial_metadata(call.metadata)
                    response = await inner(
                        _CountingRequests(requests, call), _CountingContext(context, call)
                    )
                except BaseException as exc:
                    await self._fail(call, context, exc)
                self._finish(call, context, _code_of(context))
                return response

            return grpc.stream_unary_rpc_method_handler(stream_unary, **kwargs)

        async def respond(request: Any, context: grpc.aio.ServicerContext, call: _Call) -> None:
            if req_stream:
                request = _CountingRequests(request, call)
            if not is_agen:
                await inner(request, _CountingContext(context, call))
                return
            async with contextlib.aclosing(inner(request, _CountingContext(context, call))) as out:
                async for message in out:
                    call.sent += 1  # handed to gRPC (see _CountingContext.write)
                    await context.write(message)

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> None:
            call = self._begin(method, context, streaming=True)
            try:
                self._authenticate(call)
                await context.send_initial_metadata(call.metadata)
                await respond(request, context, call)
            except BaseException as exc:
                await self._fail(call, context, exc)
            self._finish(call, context, _code_of(context))

        if req_stream:
            return grpc.stream_stream_rpc_method_handler(streaming, **kwargs)
        return grpc.unary_stream_rpc_method_handler(streaming, **kwargs)

    # -- per call -----------------------------------------------------------------

    def _begin(self, method: str, context: grpc.aio.ServicerContext, *, streaming: bool) -> _Call:
        request_id, authorization = _read_metadata(context.invocation_metadata())
        call = _Call(method, request_id, streaming, authorization)
        # Also used by a servicer's own abort() when it passes no trailers.
        context.set_trailing_metadata(call.metadata)
        return call

    def _authenticate(self, call: _Call) -> None:
        """Bind the caller for the servicer and the log, or raise Unauthenticated.

        Runs in the handler's task (contextvars set in intercept_service would
        not reach the servicer), inside the wrapper's error edge so a refusal is
        logged and counted like any other status.
        """
        authorization, call.authorization = call.authorization, ()
        owner = self._authenticator.identify(authorization, method=call.method)
        if owner is None:
            call.caller_reset = set_caller(self._anonymous)
            return
        call.caller_reset = set_caller(self._callers[owner])
        call.tokens.update(structlog.contextvars.bind_contextvars(owner=owner))

    async def _fail(
        self, call: _Call, context: grpc.aio.ServicerContext, exc: BaseException
    ) -> NoReturn:
        """Log, count and turn ``exc`` into the call's status; always raises."""
        if isinstance(exc, grpc.aio.AbortError):
            # The servicer aborted (or an earlier mapping did): keep its code.
            self._finish(call, context, _code_of(context))
            raise exc
        if isinstance(exc, asyncio.CancelledError | _BATCH_ERROR):
            self._finish(call, context, _cancel_code(context))
            raise exc
        if not isinstance(exc, Exception) or context.done():
            # Process exit, or a status already sent: nothing left to map.
            self._finish(call, context, _code_of(context), exc=exc)
            raise exc
        if is_mapped_error(exc):
            status = to_rpc_status(exc)
            self._finish(call, context, status.code, error=status.details)
            await context.abort(
                status.code, status.details, (*status.trailing_metadata, *call.metadata)
            )
        else:
            self._finish(call, context, grpc.StatusCode.INTERNAL, exc=exc)
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"internal error (request id {call.request_id})",
                call.metadata,
            )
        raise AssertionError("abort returned")  # pragma: no cover - abort always raises

    def _finish(
        self,
        call: _Call,
        context: grpc.aio.ServicerContext,
        code: grpc.StatusCode,
        *,
        exc: BaseException | None = None,
        error: str | None = None,
    ) -> None:
        elapsed = time.perf_counter() - call.start
        fields: dict[str, Any] = {
            "method": call.method,
            "code": code.name,
            "latency_ms": round(elapsed * 1000.0, 3),
            "peer": _peer(context),
        }
        if call.streaming:
            fields["sent"] = call.sent
            fields["received"] = call.received
        if error is not None:
            fields["error"] = error
        if exc is not None:
            fields["exc_info"] = exc
        if code in _ERROR_LEVEL_CODES or exc is not None:
            self._log.error("rpc", **fields)
        else:
            self._log.info("rpc", **fields)
        self._observe(call.method, code, elapsed)
        structlog.contextvars.reset_contextvars(**call.tokens)
        if call.caller_reset is not None:
            reset_caller(call.caller_reset)
            call.caller_reset = None

    def _observe(self, method: str, code: grpc.StatusCode, elapsed: float) -> None:
        counter = self._counters.get((method, code))
        if counter is None:
            counter = GRPC_REQUESTS.labels(self._service, method, code.name)
            self._counters[(method, code)] = counter
        counter.inc()
        histogram = self._histograms.get(method)
        if histogram is None:
            histogram = GRPC_LATENCY.labels(self._service, method)
            self._histograms[method] = histogram
        histogram.observe(elapsed)


def _code_of(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    code = context.code()
    if code is None:
        return grpc.StatusCode.OK
    if isinstance(code, grpc.StatusCode):
        return code
    return _CODES_BY_NUMBER.get(int(code), grpc.StatusCode.UNKNOWN)


def _cancel_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    # gRPC cancels the handler task both when the client cancels and when the
    # deadline passes; only the remaining time tells the two apart. The client's
    # own deadline fires slightly before ours (our clock started on receipt), and
    # its RST_STREAM may beat our timer: hence the tolerance.
    remaining = context.time_remaining()
    if remaining is not None and remaining < _DEADLINE_TOLERANCE_S:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


def _peer(context: grpc.aio.ServicerContext) -> str:
    try:
        return context.peer()
    except Exception:  # the call may already be torn down
        return ""


def default_interceptors(
    service: str, *, unary_header: bool = False, auth: AuthSettings | None = None
) -> list[grpc.aio.ServerInterceptor]:
    """The services' stack. Unary calls carry the request id in the trailing
    metadata only: the extra initial-metadata send cost ~15% of a GetQuote
    (bench/results/loadtest.md); streams still get it up front."""
    return [ServiceInterceptor(service, unary_header=unary_header, auth=auth)]
