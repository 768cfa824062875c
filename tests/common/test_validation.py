"""Request-field parsers."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from marketmesh.v1 import pricing_pb2
from services.common.errors import InvalidArgument
from services.common.validation import (
    ms_to_timestamp,
    optional_timestamp_ms,
    parse_limit,
    parse_symbol,
    timestamp_to_ms,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("btc-usd", "BTC-USD"), ("  ETH-USDT ", "ETH-USDT"), ("1INCH-USD", "1INCH-USD")],
)
def test_parse_symbol_normalises(raw: str, expected: str) -> None:
    assert parse_symbol(raw) == expected


@pytest.mark.parametrize(
    "raw", ["BTCUSD", "BTC-", "-USD", "BTC-USD-X", "BTC_USD", "B" * 21 + "-USD", "BTC-" + "U" * 11]
)
def test_parse_symbol_rejects_with_the_field(raw: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_symbol(raw, field="symbols[2]")
    assert err.value.violations[0][0] == "symbols[2]"
    assert "BASE-QUOTE" in err.value.violations[0][1]


def test_parse_symbol_empty_is_required() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_symbol("  ")
    assert err.value.violations == (("symbol", "is required"),)


def test_parse_limit() -> None:
    assert parse_limit(0, "limit", 500, 5000) == 500
    assert parse_limit(5000, "limit", 500, 5000) == 5000
    for bad in (-1, 5001):
        with pytest.raises(InvalidArgument) as err:
            parse_limit(bad, "limit", 500, 5000)
        assert err.value.violations[0][0] == "limit"
        assert "between 1 and 5,000 (0 means 500)" in err.value.violations[0][1]


def test_timestamps_round_trip_against_datetime() -> None:
    when = dt.datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    ts = Timestamp()
    ts.FromDatetime(when)
    expected_ms = int(when.timestamp()) * 1000 + 123
    assert timestamp_to_ms(ts) == expected_ms
    assert ms_to_timestamp(expected_ms).ToDatetime(tzinfo=dt.UTC) == when.replace(
        microsecond=123000
    )


def test_ms_before_epoch_keeps_nanos_positive() -> None:
    ts = ms_to_timestamp(-1)
    assert (ts.seconds, ts.nanos) == (-1, 999_000_000)
    assert timestamp_to_ms(ts) == -1


def test_invalid_timestamp_names_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        timestamp_to_ms(Timestamp(seconds=0, nanos=-5), field="start_time")
    assert err.value.violations[0][0] == "start_time"


def test_optional_timestamp_distinguishes_unset_from_epoch() -> None:
    request = pricing_pb2.GetCandlesRequest()
    assert optional_timestamp_ms(request, "start_time") is None
    request.start_time.CopyFrom(Timestamp(seconds=0))
    assert optional_timestamp_ms(request, "start_time") == 0
    request.end_time.CopyFrom(Timestamp(seconds=60, nanos=5_000_000))
    assert optional_timestamp_ms(request, "end_time") == 60_005
