"""Prometheus metrics shared by every service, and the /metrics endpoint.

Metrics live in the process-wide default registry and carry a ``service``
label, so several services in one process (tests, a launcher) never clash.
Other modules add their own through :func:`counter`, :func:`gauge` and
:func:`histogram`, which return the existing metric when a name is asked for
twice instead of failing on duplicate registration.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

from services.common.config import ConfigError

# From a quarter millisecond (an in-memory quote lookup) to 10 s (a long backtest).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

_M = TypeVar("_M", bound=MetricWrapperBase)
_metrics: dict[str, MetricWrapperBase] = {}


def _get_or_create(kind: type[_M], name: str, documentation: str, **kwargs: object) -> _M:
    existing = _metrics.get(name)
    if existing is not None:
        if not isinstance(existing, kind):
            raise TypeError(f"metric {name} already exists as {type(existing).__name__}")
        return existing
    metric = kind(name, documentation, registry=REGISTRY, **kwargs)  # type: ignore[arg-type]
    _metrics[name] = metric
    return metric


def counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    return _get_or_create(Counter, name, documentation, labelnames=tuple(labelnames))


def gauge(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
    return _get_or_create(Gauge, name, documentation, labelnames=tuple(labelnames))


def histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    buckets: Sequence[float] = LATENCY_BUCKETS,
) -> Histogram:
    return _get_or_create(
        Histogram, name, documentation, labelnames=tuple(labelnames), buckets=tuple(buckets)
    )


# prometheus_client appends "_total" to counters on exposition.
GRPC_REQUESTS = counter(
    "marketmesh_grpc_requests",
    "gRPC calls finished, by final status code.",
    ("service", "method", "code"),
)
GRPC_LATENCY = histogram(
    "marketmesh_grpc_request_duration_seconds",
    "Time from handler start to the end of the call (streams: the whole stream).",
    ("service", "method"),
)


def metrics_port_var(service: str) -> str:
    """The variable that sets a service's metrics port, e.g. MM_PRICING_METRICS_PORT."""
    return f"MM_{service.upper()}_METRICS_PORT"


def start_metrics_server(port: int, *, env_var: str = "metrics port", host: str = "0.0.0.0") -> int:
    """Serve /metrics on ``port`` in a daemon thread; 0 disables it and returns 0.

    Binds all interfaces by default because the scraper is usually another
    container. A port in use stops start-up (ConfigError naming ``env_var``):
    a service that silently runs without metrics is worse than one that
    refuses to start.
    """
    if port == 0:
        return 0
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            reason = "a free TCP port (this one is already in use), or 0 to disable metrics"
        else:
            reason = f"a TCP port this process can listen on ({err.strerror}), or 0 to disable"
        raise ConfigError(env_var, str(port), reason) from err
    bound: int = server.server_port
    return bound
