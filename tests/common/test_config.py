"""Environment parsing: defaults, valid values, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import (
    CommonSettings,
    ConfigError,
    env_address,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_str,
    exit_on_config_error,
    load_common_settings,
)

VAR = "MM_TEST_SETTING"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (VAR, "MM_LOG_LEVEL", "MM_LOG_FORMAT", "MM_DATA_DIR", "MM_SHUTDOWN_GRACE_S"):
        monkeypatch.delenv(name, raising=False)


def test_unset_and_empty_values_take_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_str(VAR, "d") == "d"
    assert env_int(VAR, 7) == 7
    monkeypatch.setenv(VAR, "  ")
    assert env_int(VAR, 7) == 7
    assert env_bool(VAR, True) is True


def test_env_int_parses_and_checks_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "42")
    assert env_int(VAR, 0, minimum=0, maximum=100) == 42
    monkeypatch.setenv(VAR, "101")
    with pytest.raises(ConfigError) as err:
        env_int(VAR, 0, minimum=0, maximum=100)
    assert str(err.value) == "MM_TEST_SETTING='101': expected an integer from 0 to 100"
    monkeypatch.setenv(VAR, "4.5")
    with pytest.raises(ConfigError, match=r"^MM_TEST_SETTING='4\.5': expected an integer"):
        env_int(VAR, 0)


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "-1"])
def test_env_float_rejects_non_finite_and_out_of_range(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv(VAR, raw)
    with pytest.raises(ConfigError) as err:
        env_float(VAR, 1.0, minimum=0.0)
    assert err.value.name == VAR
    assert err.value.value == raw
    assert "finite number" in str(err.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("false", False), ("No", False)],
)
def test_env_bool_words(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv(VAR, raw)
    assert env_bool(VAR, not expected) is expected


def test_env_bool_rejects_other_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "maybe")
    with pytest.raises(ConfigError, match=r"MM_TEST_SETTING='maybe': expected one of 1, 0"):
        env_bool(VAR, False)


def test_env_choice_is_case_insensitive_and_lists_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(VAR, "JSON")
    assert env_choice(VAR, "auto", ("auto", "json", "console")) == "json"
    monkeypatch.setenv(VAR, "xml")
    with pytest.raises(ConfigError) as err:
        env_choice(VAR, "auto", ("auto", "json", "console"))
    assert str(err.value) == "MM_TEST_SETTING='xml': expected one of auto, json, console"


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:50051", "[::]:50051", "[::1]:0", "localhost:65535", "pricing:50051", "0.0.0.0:1"],
)
def test_env_address_accepts(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    monkeypatch.setenv(VAR, address)
    assert env_address(VAR, "x:1") == address


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.0.0.1:65536", ":50051", "::1:50051", "[zz]:1", "host:-1", "a b:1", "h:5x"],
)
def test_env_address_rejects(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    monkeypatch.setenv(VAR, address)
    with pytest.raises(ConfigError) as err:
        env_address(VAR, "x:1")
    assert str(err.value).startswith(f"MM_TEST_SETTING={address!r}: expected host:port")


def test_common_settings_defaults() -> None:
    assert load_common_settings() == CommonSettings(
        log_level="info", log_format="auto", data_dir=Path("var"), shutdown_grace_s=3.0
    )


def test_common_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MM_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("MM_LOG_FORMAT", "console")
    monkeypatch.setenv("MM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MM_SHUTDOWN_GRACE_S", "0.5")
    assert load_common_settings() == CommonSettings("debug", "console", tmp_path, 0.5)


@pytest.mark.parametrize(
    ("name", "raw"),
    [("MM_LOG_LEVEL", "verbose"), ("MM_LOG_FORMAT", "xml"), ("MM_SHUTDOWN_GRACE_S", "soon")],
)
def test_common_settings_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError) as err:
        load_common_settings()
    assert str(err.value).startswith(f"{name}={raw!r}: expected ")


def test_exit_on_config_error_prints_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MM_SHUTDOWN_GRACE_S", "abc")

    @exit_on_config_error
    def main() -> int:
        load_common_settings()
        return 0

    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "MM_SHUTDOWN_GRACE_S='abc'" in err
    assert "Traceback" not in err


def test_exit_on_config_error_passes_results_through() -> None:
    assert exit_on_config_error(lambda x: x + 1)(1) == 2
