"""The /metrics endpoint and metric helpers."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from services.common.config import ConfigError
from services.common.metrics import (
    counter,
    gauge,
    metrics_port_var,
    start_metrics_server,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_zero_disables() -> None:
    assert start_metrics_server(0) == 0


def test_serves_metrics_on_the_port() -> None:
    requests = counter("marketmesh_test_things", "Things.", ("kind",))
    requests.labels("a").inc()
    port = start_metrics_server(_free_port(), host="127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'marketmesh_test_things_total{kind="a"} 1.0' in body
    assert "marketmesh_grpc_request_duration_seconds" in body


def test_port_in_use_names_the_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as err:
            start_metrics_server(port, env_var="MM_PRICING_METRICS_PORT", host="127.0.0.1")
    assert err.value.name == "MM_PRICING_METRICS_PORT"
    assert err.value.value == str(port)
    assert "in use" in str(err.value)


def test_helpers_return_the_existing_metric() -> None:
    first = gauge("marketmesh_test_level", "Level.")
    assert gauge("marketmesh_test_level", "Level.") is first
    with pytest.raises(TypeError):
        counter("marketmesh_test_level", "Level.")


def test_metrics_port_var() -> None:
    assert metrics_port_var("pricing") == "MM_PRICING_METRICS_PORT"
