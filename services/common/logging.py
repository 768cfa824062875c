"""Structured logs: one JSON object per line, or a readable console form.

structlog renders our own events; stdlib records (grpc, asyncio, libraries)
go through the same processors, so a log shipper sees one format. Context
bound with ``structlog.contextvars`` (the interceptor binds ``request_id``)
appears on every line logged while handling that call.

Lines go to stderr through one swappable sink: loggers are cached on first use
for speed, so tests redirect the sink instead of reconfiguring loggers.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _Sink:
    """Where every rendered line goes; one lock so lines never interleave."""

    def __init__(self) -> None:
        self.stream: TextIO = sys.stderr
        self.lock = threading.Lock()

    def write_line(self, line: str) -> None:
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


_sink = _Sink()


class _SinkLogger:
    """The structlog "wrapped logger": receives a rendered line per event."""

    def __init__(self, name: str = "", *_args: Any) -> None:
        # structlog.stdlib.add_logger_name reads .name from the wrapped logger.
        self.name = name

    def msg(self, message: str) -> None:
        _sink.write_line(message)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _SinkHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _sink.write_line(self.format(record))
        except Exception:
            self.handleError(record)


def _add_service(service: str) -> Processor:
    def add_service(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        event_dict["service"] = service
        return event_dict

    return add_service


def configure_logging(level: str, fmt: str, service: str, *, stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger; call once at start-up.

    ``fmt`` is ``json``, ``console`` or ``auto`` (console when the output is a
    terminal, JSON otherwise: pipes and containers feed log collectors).
    ``stream`` redirects output (tests); default stderr.
    """
    _sink.stream = sys.stderr if stream is None else stream
    level_no = _LEVELS[level.lower()]
    if fmt == "auto":
        fmt = "console" if _isatty(_sink.stream) else "json"

    renderer: Processor
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        _add_service(service),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        # Exceptions become a string field so the line stays one JSON object.
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer(
            serializer=json.dumps, separators=(",", ":"), default=str
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(_sink.stream))

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=_SinkLogger,
        cache_logger_on_first_use=True,
    )

    handler = _SinkHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    # Replace only our own handler: others (pytest's capture) are not ours to drop.
    for old in [h for h in root.handlers if isinstance(h, _SinkHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_no)
    logging.captureWarnings(True)


def get_logger(name: str) -> FilteringBoundLogger:
    """A structlog logger that tags its lines with ``logger=name``."""
    return cast(FilteringBoundLogger, structlog.get_logger(name))


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
