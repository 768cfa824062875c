"""Opaque, signed page tokens.

A token is the urlsafe base64 (unpadded) of compact JSON followed by its
HMAC-SHA256 tag. Signing lets a service put a keyset cursor and a fingerprint
of the request's filters in the token and trust them when they come back: a
client can neither forge a cursor nor reuse a token with other filters.

The key is MM_PAGE_TOKEN_SECRET when set, else a random one created once in
``MM_DATA_DIR/page_token.secret``, so tokens survive a restart and are shared
by every process on the same data directory (one server per core).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.common.config import ConfigError, env_str
from services.common.errors import InvalidArgument

SECRET_ENV = "MM_PAGE_TOKEN_SECRET"
SECRET_FILE = "page_token.secret"
_TAG_BYTES = hashlib.sha256().digest_size
_MIN_SECRET_BYTES = 16
# Domain separation: the same secret must never sign anything else by accident.
_DOMAIN = b"marketmesh-page-token-v1\x00"
# Far above any real cursor; bounds the work an abusive token can cause.
_MAX_TOKEN_CHARS = 4096
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_TAMPERED = "malformed or tampered page token; pass the next_page_token you were given unchanged"


def load_page_token_secret(data_dir: Path) -> bytes:
    """The signing key: MM_PAGE_TOKEN_SECRET, else the data dir's persisted one."""
    configured = env_str(SECRET_ENV, "")
    if configured:
        if len(configured.encode()) < _MIN_SECRET_BYTES:
            raise ConfigError(
                SECRET_ENV, "<redacted>", f"at least {_MIN_SECRET_BYTES} bytes of secret"
            )
        return configured.encode()
    return _persisted_secret(data_dir / SECRET_FILE)


def _persisted_secret(path: Path) -> bytes:
    # Several processes may start at once: each writes a complete candidate to
    # its own temp file and hard-links it into place; exactly one link wins and
    # everyone reads the winner, so nobody ever sees a half-written key.
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):  # another process won
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    secret = path.read_text().strip().encode()
    if len(secret) < _MIN_SECRET_BYTES:
        raise ConfigError(
            "MM_DATA_DIR", str(path.parent), f"a readable {SECRET_FILE} with a full-length key"
        )
    return secret


_secret: bytes | None = None


def init_page_tokens(data_dir: Path) -> None:
    """Load the default key at start-up, so a bad key stops start-up, not a request."""
    global _secret  # noqa: PLW0603 - one process-wide key, set once at start-up
    _secret = load_page_token_secret(data_dir)


def _default_secret() -> bytes:
    if _secret is None:
        init_page_tokens(Path(env_str("MM_DATA_DIR", "var")).expanduser())
    assert _secret is not None
    return _secret


def _tag(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + body, hashlib.sha256).digest()


def encode_page_token(payload: Mapping[str, Any], *, secret: bytes | None = None) -> str:
    """Sign ``payload`` (JSON-serialisable) into an opaque token."""
    key = _default_secret() if secret is None else secret
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    raw = body + _tag(key, body)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_page_token(
    token: str, *, field: str = "page_token", secret: bytes | None = None
) -> dict[str, Any]:
    """The payload of a token this service issued; InvalidArgument(field) otherwise.

    Callers check for the empty token ("first page") before calling this.
    """
    key = _default_secret() if secret is None else secret
    if len(token) > _MAX_TOKEN_CHARS or not _TOKEN_CHARS.fullmatch(token):
        raise InvalidArgument(field, _TAMPERED)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidArgument(field, _TAMPERED) from None
    body, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if len(raw) <= _TAG_BYTES or not hmac.compare_digest(tag, _tag(key, body)):
        raise InvalidArgument(field, _TAMPERED)
    try:
        payload = json.loads(body)
    except ValueError:
        raise InvalidArgument(field, _TAMPERED) from None
    if not isinstance(payload, dict):
        raise InvalidArgument(field, _TAMPERED)
    return payload
