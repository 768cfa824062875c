"""Signed page tokens: round trip, tamper detection, and the persisted secret."""

from __future__ import annotations

import base64
import multiprocessing
from pathlib import Path

import pytest

from services.common import pagination
from services.common.config import ConfigError
from services.common.errors import InvalidArgument
from services.common.pagination import (
    SECRET_ENV,
    SECRET_FILE,
    decode_page_token,
    encode_page_token,
    init_page_tokens,
    load_page_token_secret,
)

SECRET = b"k" * 32


def test_round_trip() -> None:
    payload = {"after_ms": 1_700_000_000_000, "filter": "abc", "n": [1, 2]}
    token = encode_page_token(payload, secret=SECRET)
    assert token.isascii()
    assert "=" not in token
    assert decode_page_token(token, secret=SECRET) == payload


def _flip(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("index", [0, 5, -1, -32])
def test_any_flipped_bit_is_rejected(index: int) -> None:
    token = encode_page_token({"after_ms": 1}, secret=SECRET)
    with pytest.raises(InvalidArgument) as err:
        decode_page_token(_flip(token, index), field="page_token", secret=SECRET)
    assert err.value.violations[0][0] == "page_token"
    assert "pass the next_page_token you were given unchanged" in err.value.violations[0][1]


@pytest.mark.parametrize("token", ["", "!!!", "abc", "a" * 5000, "é", "AAAA"])
def test_garbage_is_rejected_naming_the_field(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        decode_page_token(token, field="next", secret=SECRET)
    assert err.value.violations[0][0] == "next"


def test_another_secret_is_rejected() -> None:
    token = encode_page_token({"a": 1}, secret=SECRET)
    with pytest.raises(InvalidArgument):
        decode_page_token(token, secret=b"z" * 32)


def test_signed_non_object_payload_is_rejected() -> None:
    token = encode_page_token([1, 2], secret=SECRET)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        decode_page_token(token, secret=SECRET)


def test_secret_persists_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    first = load_page_token_secret(tmp_path / "data")
    assert (tmp_path / "data" / SECRET_FILE).exists()
    assert load_page_token_secret(tmp_path / "data") == first
    token = encode_page_token({"x": 1}, secret=first)
    assert decode_page_token(token, secret=load_page_token_secret(tmp_path / "data")) == {"x": 1}
    assert load_page_token_secret(tmp_path / "other") != first


# Spawned, not forked: forking a process that runs grpc threads is unsafe.
def _load_in_child(data_dir: str) -> bytes:
    return load_page_token_secret(Path(data_dir))


def test_processes_starting_together_agree_on_one_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        secrets = pool.map(_load_in_child, [str(tmp_path)] * 8)
    assert len(set(secrets)) == 1


def test_env_secret_wins_and_must_be_long_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "s" * 20)
    assert load_page_token_secret(tmp_path) == b"s" * 20
    assert not (tmp_path / SECRET_FILE).exists()
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(ConfigError) as err:
        load_page_token_secret(tmp_path)
    assert err.value.name == SECRET_ENV
    assert "short" not in str(err.value)


def test_default_secret_comes_from_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    monkeypatch.setenv("MM_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(pagination, "_secret", None)
    token = encode_page_token({"page": 2})
    assert (tmp_path / SECRET_FILE).exists()
    assert decode_page_token(token) == {"page": 2}
    assert decode_page_token(token, secret=load_page_token_secret(tmp_path)) == {"page": 2}
    # init_page_tokens switches the default key: old tokens no longer verify.
    init_page_tokens(tmp_path / "elsewhere")
    with pytest.raises(InvalidArgument):
        decode_page_token(token)
