"""Bearer-token authentication: who the caller is, for every service.

Tokens map to owners (``MM_AUTH_TOKENS=alice=<token>,bob=<token>``). The server
interceptor reads ``authorization: Bearer <token>`` from each call's metadata,
asks an :class:`Authenticator` for the owner and makes it visible to the
servicer through :func:`current_owner`. Servicers of owned resources (alerts,
portfolios) call :func:`require_owner` first thing and scope every query by
the owner it returns; another owner's resource is NOT_FOUND, never
PERMISSION_DENIED, so its existence does not leak.

Policy, in one place (:meth:`Authenticator.identify`):

* a token that is present but malformed or unknown is UNAUTHENTICATED on every
  method: a caller with a bad token should find out, not be served anonymously;
* no token is an anonymous call (owner None), which market data serves unless
  ``MM_REQUIRE_AUTH=1``; then only health and reflection answer anonymously.

Tokens are compared in constant time against every configured token (no early
exit, equal-length digests), and never appear in a message, a log line or a
repr.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from services.common.errors import Unauthenticated

AUTHORIZATION_KEY = "authorization"
MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 512
# Owners end up in log lines and database keys: keep them plain.
_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# Visible ASCII: what an HTTP/2 header value can carry after "Bearer ".
_TOKEN = re.compile(r"[\x21-\x7e]+")
# Methods that must answer anonymously even with MM_REQUIRE_AUTH=1, so load
# balancers, `make run` and grpcurl's `list` keep working.
_ALWAYS_ANONYMOUS = ("/grpc.health.v1.", "/grpc.reflection.")

SEND_TOKEN = "send `authorization: Bearer <token>`"
NO_TOKENS_CONFIGURED = "this server has no tokens configured (set MM_AUTH_TOKENS=owner=token,...)"


@dataclass(frozen=True)
class AuthSettings:
    """Owner/token pairs and whether anonymous calls are refused.

    ``tokens`` is kept out of the repr so settings can be logged safely.
    """

    tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    require_auth: bool = False

    @property
    def owners(self) -> tuple[str, ...]:
        return tuple(owner for owner, _ in self.tokens)


def parse_auth_tokens(text: str) -> tuple[tuple[str, str], ...]:
    """``alice=tok1,bob=tok2`` -> ``(("alice", "tok1"), ("bob", "tok2"))``.

    Raises ValueError with a reason that names the entry (by position and
    owner) but never contains a token. Spaces around entries, owners and tokens
    are ignored; an empty entry (a stray comma) is an error rather than skipped,
    since it usually means a token went missing in an edit. Each owner and each
    token appears once: two tokens for one owner would make rotation mistakes
    silent, and one token for two owners would make the owner ambiguous.
    """
    pairs: list[tuple[str, str]] = []
    seen_owners: set[str] = set()
    seen_tokens: set[str] = set()
    for position, raw_entry in enumerate(text.split(","), start=1):
        entry = raw_entry.strip()
        where = f"entry {position}"
        if not entry:
            raise ValueError(f"{where} is empty (a stray comma?)")
        owner, sep, token = entry.partition("=")
        owner, token = owner.strip(), token.strip()
        if not sep:
            raise ValueError(f"{where} has no '=': write owner=token")
        if not owner:
            raise ValueError(f"{where} has no owner before '='")
        if not _OWNER.fullmatch(owner):
            raise ValueError(
                f"{where}: owner must be 1-64 letters, digits or _.@- starting with a letter "
                "or digit"
            )
        where = f"{where} (owner {owner})"
        if not token:
            raise ValueError(f"{where} has no token after '='")
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"{where}: the token must be printable ASCII without spaces")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"{where}: the token has {len(token)} characters; use at least "
                f"{MIN_TOKEN_LENGTH} (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"{where}: the token is longer than {MAX_TOKEN_LENGTH} characters")
        if owner in seen_owners:
            raise ValueError(f"{where}: owner {owner} is listed twice; give each owner one token")
        if token in seen_tokens:
            raise ValueError(f"{where}: this token is already another owner's; tokens must differ")
        seen_owners.add(owner)
        seen_tokens.add(token)
        pairs.append((owner, token))
    return tuple(pairs)


def redact_auth_tokens(text: str) -> str:
    """``alice=secret,bob=x`` -> ``alice=***,bob=***``, for error messages."""
    shown = []
    for entry in text.split(","):
        owner, sep, _ = entry.strip().partition("=")
        shown.append(f"{owner.strip()}=***" if sep and _OWNER.fullmatch(owner.strip()) else "***")
    return ",".join(shown)


def is_always_anonymous(method: str) -> bool:
    """Health and reflection: answered without a token even when auth is required."""
    return method.startswith(_ALWAYS_ANONYMOUS)


def bearer_token(value: str) -> str:
    """The token of ``Bearer <token>`` (scheme in any case); Unauthenticated otherwise."""
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not _TOKEN.fullmatch(token):
        raise Unauthenticated(f"malformed authorization metadata: {SEND_TOKEN}")
    return token


def _digest(token: str) -> bytes:
    # Equal-length digests: compare_digest then takes the same time whatever
    # the lengths of the presented and configured tokens.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class Authenticator:
    """Maps a presented token to its owner and applies the call policy."""

    __slots__ = ("_digests", "_require_auth")

    def __init__(self, settings: AuthSettings) -> None:
        self._digests = tuple((owner, _digest(token)) for owner, token in settings.tokens)
        self._require_auth = settings.require_auth

    @property
    def configured(self) -> bool:
        """True when at least one token is configured."""
        return bool(self._digests)

    @property
    def require_auth(self) -> bool:
        return self._require_auth

    def owner_of(self, token: str) -> str | None:
        """The owner of ``token``, or None; compares against every token, no early exit."""
        presented = _digest(token)
        found: str | None = None
        for owner, digest in self._digests:
            # hmac.compare_digest looked up per call (not imported by name) so
            # tests can check it is what decides.
            if hmac.compare_digest(presented, digest):
                found = owner
        return found

    def identify(self, authorization: Sequence[str], *, method: str) -> str | None:
        """The owner for a call's ``authorization`` values (None: anonymous).

        Raises Unauthenticated for a malformed or unknown token (any method),
        and for an anonymous call when auth is required (except health and
        reflection). Messages never contain the token.
        """
        if not authorization:
            if self._require_auth and not is_always_anonymous(method):
                raise Unauthenticated(
                    f"authentication required: {SEND_TOKEN}"
                    + ("" if self.configured else f"; {NO_TOKENS_CONFIGURED}")
                )
            return None
        if len(authorization) > 1:
            raise Unauthenticated(f"more than one authorization metadata entry: {SEND_TOKEN}")
        token = bearer_token(authorization[0])
        if not self.configured:
            raise Unauthenticated(f"the bearer token cannot be checked: {NO_TOKENS_CONFIGURED}")
        owner = self.owner_of(token)
        if owner is None:
            raise Unauthenticated("the bearer token is not valid")
        return owner


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling (``owner`` None: anonymous) and whether tokens could be checked."""

    owner: str | None
    tokens_configured: bool


_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "marketmesh_caller", default=None
)


def set_caller(caller: Caller) -> contextvars.Token[Caller | None]:
    """Bind the caller for the current call (the interceptor does this)."""
    return _caller.set(caller)


def reset_caller(token: contextvars.Token[Caller | None]) -> None:
    _caller.reset(token)


def current_owner() -> str | None:
    """The authenticated owner of the current call, or None when anonymous."""
    caller = _caller.get()
    return None if caller is None else caller.owner


def require_owner() -> str:
    """The owner of the current call; Unauthenticated when the call is anonymous.

    Servicers of owned resources call this first and scope every read and
    write by the result.
    """
    caller = _caller.get()
    if caller is not None and caller.owner is not None:
        return caller.owner
    if caller is not None and not caller.tokens_configured:
        raise Unauthenticated(f"this method needs a caller, but {NO_TOKENS_CONFIGURED}")
    raise Unauthenticated(f"this method needs a caller: {SEND_TOKEN}")


@contextlib.contextmanager
def acting_as(owner: str | None) -> Iterator[None]:
    """Run a block as ``owner`` (None: anonymous): for tests and internal jobs
    that call servicer or domain code outside a gRPC call."""
    token = _caller.set(Caller(owner=owner, tokens_configured=True))
    try:
        yield
    finally:
        _caller.reset(token)
