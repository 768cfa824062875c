"""Typed settings from the environment, read once at start-up.

Every service reads its variables into a frozen dataclass before it binds a
port, so a typo in a deployment stops the process at once with a message that
names the variable, instead of surfacing as a strange failure hours later.

An empty value counts as unset: ``MM_X=`` in a compose file or shell means
"use the default", which is what people mean when they blank a line out.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

from services.common.auth import AuthSettings, parse_auth_tokens, redact_auth_tokens

P = ParamSpec("P")
R = TypeVar("R")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what fits."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        super().__init__(f"{name}={value!r}: expected {expected}")


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = _raw(name)
    if value is None:
        return default
    expected = _range_text("an integer", minimum, maximum)
    try:
        number = int(value, 10)
    except ValueError:
        raise ConfigError(name, value, expected) from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ConfigError(name, value, expected)
    return number


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    value = _raw(name)
    if value is None:
        return default
    expected = _range_text("a finite number", minimum, maximum)
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(name, value, expected) from None
    # float() accepts "nan" and "inf"; neither is a sane duration or rate.
    if not math.isfinite(number):
        raise ConfigError(name, value, expected)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ConfigError(name, value, expected)
    return number


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(name, value, "one of 1, 0, true, false, yes, no")


def env_choice(name: str, default: str, choices: Sequence[str]) -> str:
    """One of ``choices``, matched case-insensitively and returned as spelled there."""
    value = _raw(name)
    if value is None:
        return default
    for choice in choices:
        if choice.lower() == value.lower():
            return choice
    raise ConfigError(name, value, "one of " + ", ".join(choices))


_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?")


def parse_address(text: str) -> tuple[str, int] | None:
    """Split ``host:port`` (``[v6]:port`` for IPv6); None when it is not one."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isascii() or not port_text.isdigit():
        return None
    port = int(port_text)
    if port > 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        return host, port
    # A bare IPv6 host ("::1:50051") is ambiguous about where the port starts.
    if ":" in host or not _HOSTNAME.fullmatch(host):
        return None
    return host, port


def env_address(name: str, default: str) -> str:
    """``host:port`` with port 0-65535; IPv6 hosts in brackets (``[::]:50051``)."""
    value = _raw(name)
    if value is None:
        return default
    if parse_address(value) is None:
        raise ConfigError(
            name, value, "host:port with port 0-65535, e.g. 127.0.0.1:50051 or [::]:50051"
        )
    return value


def env_auth_tokens(name: str) -> tuple[tuple[str, str], ...]:
    """``owner=token,...`` pairs; unset is none. The error shows owners, never tokens."""
    value = _raw(name)
    if value is None:
        return ()
    try:
        return parse_auth_tokens(value)
    except ValueError as err:
        raise ConfigError(
            name,
            redact_auth_tokens(value),
            f"owner=token pairs separated by commas, tokens of at least 16 characters; {err}",
        ) from None


def load_auth_settings() -> AuthSettings:
    """``MM_AUTH_TOKENS`` and ``MM_REQUIRE_AUTH``.

    Requiring auth with no token to check would refuse every call but health:
    that is a deployment mistake, so it fails at start-up instead.
    """
    tokens = env_auth_tokens("MM_AUTH_TOKENS")
    require_auth = env_bool("MM_REQUIRE_AUTH", False)
    if require_auth and not tokens:
        raise ConfigError(
            "MM_REQUIRE_AUTH",
            _raw("MM_REQUIRE_AUTH") or "",
            "0 when MM_AUTH_TOKENS is unset (with no tokens no call could authenticate)",
        )
    return AuthSettings(tokens=tokens, require_auth=require_auth)


def _range_text(kind: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")


@dataclass(frozen=True)
class CommonSettings:
    """Settings every service shares; service-specific ones live beside each service."""

    log_level: str
    log_format: str
    data_dir: Path
    shutdown_grace_s: float
    # Defaulted so settings built by hand (tests, tools) need not mention auth.
    auth: AuthSettings = field(default_factory=AuthSettings)


def load_common_settings() -> CommonSettings:
    return CommonSettings(
        log_level=env_choice("MM_LOG_LEVEL", "info", LOG_LEVELS),
        log_format=env_choice("MM_LOG_FORMAT", "auto", LOG_FORMATS),
        data_dir=Path(env_str("MM_DATA_DIR", "var")).expanduser(),
        shutdown_grace_s=env_float("MM_SHUTDOWN_GRACE_S", 3.0, minimum=0.0, maximum=300.0),
        auth=load_auth_settings(),
    )


def exit_on_config_error(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a ConfigError escaping ``fn`` into one line on stderr and exit status 2.

    A traceback for a bad environment variable hides the one line that matters
    and reads like a crash in our code; 2 is the conventional "usage" status.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ConfigError as err:
            print(f"marketmesh: configuration error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper
