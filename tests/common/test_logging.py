"""Log format: one JSON object per line, stdlib routed through, context merged."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import structlog

from services.common.logging import configure_logging, get_logger


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_have_the_standard_keys() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", "pricing", stream=stream)
    get_logger("tests.logging.keys").info("hello", symbol="BTC-USD")
    (line,) = _lines(stream)
    assert line["event"] == "hello"
    assert line["level"] == "info"
    assert line["service"] == "pricing"
    assert line["logger"] == "tests.logging.keys"
    assert line["symbol"] == "BTC-USD"
    stamp = dt.datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00"))
    assert stamp.utcoffset() == dt.timedelta(0)


def test_level_filters_and_stdlib_is_routed_through() -> None:
    stream = io.StringIO()
    configure_logging("warning", "json", "svc", stream=stream)
    log = get_logger("tests.logging.levels")
    log.info("dropped")
    log.warning("kept")
    logging.getLogger("some.library").warning("from %s", "stdlib")
    logging.getLogger("some.library").info("dropped too")
    lines = _lines(stream)
    assert [line["event"] for line in lines] == ["kept", "from stdlib"]
    assert lines[1]["logger"] == "some.library"
    assert lines[1]["service"] == "svc"


def test_exceptions_stay_on_one_line() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", "svc", stream=stream)
    try:
        raise KeyError("missing")
    except KeyError:
        get_logger("tests.logging.exc").exception("failed")
        logging.getLogger("lib").exception("lib failed")
    first, second = _lines(stream)
    assert "KeyError: 'missing'" in str(first["exception"])
    assert "KeyError: 'missing'" in str(second["exception"])


def test_bound_context_appears_on_every_line() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", "svc", stream=stream)
    tokens = structlog.contextvars.bind_contextvars(request_id="abc")
    try:
        get_logger("tests.logging.ctx").info("one")
        logging.getLogger("lib").warning("two")
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    get_logger("tests.logging.ctx").info("after")
    assert [line.get("request_id") for line in _lines(stream)] == ["abc", "abc", None]


def test_auto_is_json_when_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", "svc", stream=stream)
    get_logger("tests.logging.auto").info("plain")
    assert json.loads(stream.getvalue())["event"] == "plain"


def test_console_format_is_not_json() -> None:
    stream = io.StringIO()
    configure_logging("info", "console", "svc", stream=stream)
    get_logger("tests.logging.console").info("readable", n=1)
    text = stream.getvalue()
    assert "readable" in text
    assert "n=1" in text
    assert not text.startswith("{")
