"""Bearer-token auth: parsing, the constant-time lookup, and the interceptor
through a real grpc.aio server with a tiny raw-bytes service (no .proto)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.auth import (
    Authenticator,
    AuthSettings,
    acting_as,
    bearer_token,
    current_owner,
    parse_auth_tokens,
    require_owner,
)
from services.common.config import (
    CommonSettings,
    ConfigError,
    load_auth_settings,
    load_common_settings,
)
from services.common.errors import Unauthenticated
from services.common.server import RunningServer, start_server
from services.launcher import with_dev_token

from .conftest import LogCapture

ALICE_TOKEN = "alice-token-0123456789abcdef"
BOB_TOKEN = "bob-token-0123456789abcdef-xyz"
CAROL_TOKEN = "carol-token-0123456789abcdef="
WRONG_TOKEN = "mallory-token-0123456789abcdef"
TOKENS = (("alice", ALICE_TOKEN), ("bob", BOB_TOKEN), ("carol", CAROL_TOKEN))
SERVICE_NAME = "test.Auth"
ANONYMOUS = b"<anonymous>"


# -- parsing -------------------------------------------------------------------


def test_parse_pairs_in_order_with_spaces_and_equals_in_token() -> None:
    text = f" alice={ALICE_TOKEN} , bob = {BOB_TOKEN},carol={CAROL_TOKEN}"
    assert parse_auth_tokens(text) == TOKENS


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("alice", "entry 1 has no '='"),
        (f"={ALICE_TOKEN}", "entry 1 has no owner"),
        ("alice=", "entry 1 (owner alice) has no token"),
        (f"alice={ALICE_TOKEN},", "entry 2 is empty"),
        (f"alice={ALICE_TOKEN},,bob={BOB_TOKEN}", "entry 2 is empty"),
        ("alice=short-token", "the token has 11 characters; use at least 16"),
        (f"alice={ALICE_TOKEN},alice={BOB_TOKEN}", "owner alice is listed twice"),
        (f"alice={ALICE_TOKEN},bob={ALICE_TOKEN}", "already another owner's"),
        (f"al ice={ALICE_TOKEN}", "owner must be"),
        (f"-alice={ALICE_TOKEN}", "owner must be"),
        ("alice=token with a space inside", "printable ASCII without spaces"),
        ("alice=" + "x" * 513, "longer than 512"),
    ],
)
def test_parse_rejects_with_reason_and_without_the_token(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_auth_tokens(text)
    assert reason in str(err.value)
    for token in (ALICE_TOKEN, BOB_TOKEN, "short-token", "token with a space inside"):
        assert token not in str(err.value)


def test_env_error_names_variable_and_hides_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_AUTH_TOKENS", f"alice={ALICE_TOKEN},bob=tooshort-secret")
    with pytest.raises(ConfigError) as err:
        load_auth_settings()
    assert err.value.name == "MM_AUTH_TOKENS"
    message = str(err.value)
    assert message.startswith("MM_AUTH_TOKENS='alice=***,bob=***': expected owner=token pairs")
    assert "entry 2 (owner bob): the token has 15 characters" in message
    assert ALICE_TOKEN not in message
    assert "tooshort-secret" not in message


def test_env_settings_loaded_into_common_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_AUTH_TOKENS", f"alice={ALICE_TOKEN},bob={BOB_TOKEN}")
    monkeypatch.setenv("MM_REQUIRE_AUTH", "yes")
    auth = load_common_settings().auth
    assert auth == AuthSettings(
        tokens=(("alice", ALICE_TOKEN), ("bob", BOB_TOKEN)), require_auth=True
    )
    assert auth.owners == ("alice", "bob")
    # Settings may be logged: the repr keeps owners' tokens out.
    assert ALICE_TOKEN not in repr(load_common_settings())


def test_env_unset_or_blank_means_no_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MM_AUTH_TOKENS", raising=False)
    monkeypatch.delenv("MM_REQUIRE_AUTH", raising=False)
    assert load_auth_settings() == AuthSettings(tokens=(), require_auth=False)
    monkeypatch.setenv("MM_AUTH_TOKENS", "  ")
    assert load_auth_settings().tokens == ()
    # Hand-built settings (tests, tools) default to no auth.
    assert CommonSettings("info", "json", Path("var"), 1.0).auth == AuthSettings()


def test_require_auth_malformed_or_without_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_AUTH_TOKENS", f"alice={ALICE_TOKEN}")
    monkeypatch.setenv("MM_REQUIRE_AUTH", "sometimes")
    with pytest.raises(ConfigError) as err:
        load_auth_settings()
    assert err.value.name == "MM_REQUIRE_AUTH"
    monkeypatch.delenv("MM_AUTH_TOKENS")
    monkeypatch.setenv("MM_REQUIRE_AUTH", "1")
    with pytest.raises(ConfigError) as err:
        load_auth_settings()
    assert err.value.name == "MM_REQUIRE_AUTH"
    assert "MM_AUTH_TOKENS" in str(err.value)


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {ALICE_TOKEN}",
        f"bearer {ALICE_TOKEN}",
        f"BEARER {ALICE_TOKEN}",
        f"  Bearer   {ALICE_TOKEN}  ",
    ],
)
def test_bearer_scheme_any_case(header: str) -> None:
    assert bearer_token(header) == ALICE_TOKEN


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", ALICE_TOKEN, f"Basic {ALICE_TOKEN}", f"Bearer {ALICE_TOKEN} x"],
)
def test_bearer_malformed(header: str) -> None:
    with pytest.raises(Unauthenticated) as err:
        bearer_token(header)
    assert "authorization: Bearer <token>" in err.value.message
    assert ALICE_TOKEN not in err.value.message


# -- constant-time lookup --------------------------------------------------------


@pytest.mark.parametrize(
    ("presented", "owner"),
    [
        (ALICE_TOKEN, "alice"),  # first configured: a short-circuit would stop here
        (BOB_TOKEN, "bob"),
        (CAROL_TOKEN, "carol"),
        (WRONG_TOKEN, None),
        (ALICE_TOKEN[:-1], None),  # a prefix
        (ALICE_TOKEN + "0", None),  # an extension
    ],
)
def test_every_token_compared_with_compare_digest(
    monkeypatch: pytest.MonkeyPatch, presented: str, owner: str | None
) -> None:
    authenticator = Authenticator(AuthSettings(tokens=TOKENS))
    real = hmac.compare_digest
    calls: list[tuple[bytes, bytes]] = []

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert authenticator.owner_of(presented) == owner
    assert len(calls) == len(TOKENS)
    # Equal-length operands: the comparison time does not depend on token lengths.
    assert {len(a) for a, _ in calls} | {len(b) for _, b in calls} == {32}


def test_require_owner_outside_a_call_and_acting_as() -> None:
    assert current_owner() is None
    with pytest.raises(Unauthenticated, match="authorization: Bearer <token>"):
        require_owner()
    with acting_as("alice"):
        assert current_owner() == "alice"
        assert require_owner() == "alice"
    assert current_owner() is None


# -- through a real server ---------------------------------------------------------


def _owner_bytes() -> bytes:
    owner = current_owner()
    return ANONYMOUS if owner is None else owner.encode()


def _auth_handlers() -> grpc.GenericRpcHandler:
    async def who_am_i(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        # Let concurrent calls interleave: the owner must stay each call's own.
        await asyncio.sleep(float(request or b"0"))
        return _owner_bytes()

    async def owned(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return require_owner().encode()

    async def owned_stream(
        request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        owner = require_owner().encode()
        for i in range(int(request)):
            await asyncio.sleep(0)
            yield b"%d:%s:%s" % (i, owner, _owner_bytes())

    async def upload(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
        owner = require_owner().encode()
        count = 0
        async for _ in requests:
            count += 1
        return b"%s:%d:%s" % (owner, count, _owner_bytes())

    async def chat(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for message in requests:
            yield message + b":" + _owner_bytes()

    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "WhoAmI": grpc.unary_unary_rpc_method_handler(who_am_i),
            "Owned": grpc.unary_unary_rpc_method_handler(owned),
            "OwnedStream": grpc.unary_stream_rpc_method_handler(owned_stream),
            "Upload": grpc.stream_unary_rpc_method_handler(upload),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
        },
    )


@dataclass
class AuthServer:
    running: RunningServer
    channel: grpc.aio.Channel

    async def unary(self, name: str, request: bytes = b"", token: str | None = None) -> bytes:
        call = self.channel.unary_unary(f"/{SERVICE_NAME}/{name}")
        result: bytes = await call(request, metadata=_bearer(token))
        return result

    async def unary_error(
        self, name: str, metadata: tuple[tuple[str, str], ...] = ()
    ) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await self.channel.unary_unary(f"/{SERVICE_NAME}/{name}")(b"", metadata=metadata)
        return err.value

    async def health(self, token: str | None = None) -> int:
        stub = health_pb2_grpc.HealthStub(self.channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(), metadata=_bearer(token))
        status: int = response.status
        return status

    async def reflected_services(self) -> list[str]:
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for response in stub.ServerReflectionInfo(iter([request])):
            return [s.name for s in response.list_services_response.service]
        raise AssertionError("no reflection response")


def _bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    return () if token is None else (("authorization", f"Bearer {token}"),)


StartAuthServer = Callable[..., Awaitable[AuthServer]]


@pytest.fixture
async def start_auth_server(logs: LogCapture) -> AsyncIterator[StartAuthServer]:
    started: list[AuthServer] = []

    async def start(auth: AuthSettings | None = None) -> AuthServer:
        handlers = _auth_handlers()
        running = await start_server(
            service="test",
            address="127.0.0.1:0",
            service_names=[SERVICE_NAME],
            register=lambda server: server.add_generic_rpc_handlers((handlers,)),
            auth=auth,
        )
        server = AuthServer(running, grpc.aio.insecure_channel(f"127.0.0.1:{running.port}"))
        started.append(server)
        return server

    yield start
    for server in started:
        await server.channel.close()
        await server.running.stop(0)


@pytest.fixture
async def server(start_auth_server: StartAuthServer) -> AuthServer:
    return await start_auth_server(AuthSettings(tokens=TOKENS))


async def test_right_token_is_seen_by_the_servicer(server: AuthServer) -> None:
    assert await server.unary("WhoAmI", token=ALICE_TOKEN) == b"alice"
    assert await server.unary("Owned", token=BOB_TOKEN) == b"bob"
    assert await server.unary("Owned", token=CAROL_TOKEN) == b"carol"


async def test_no_token_is_anonymous_but_owned_methods_refuse(server: AuthServer) -> None:
    assert await server.unary("WhoAmI") == ANONYMOUS
    error = await server.unary_error("Owned")
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == ("this method needs a caller: send `authorization: Bearer <token>`")


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((("authorization", f"Bearer {WRONG_TOKEN}"),), "the bearer token is not valid"),
        ((("authorization", f"Bearer {ALICE_TOKEN[:-1]}"),), "the bearer token is not valid"),
        ((("authorization", ALICE_TOKEN),), "malformed authorization metadata"),
        ((("authorization", f"Basic {ALICE_TOKEN}"),), "malformed authorization metadata"),
        ((("authorization", "Bearer"),), "malformed authorization metadata"),
        (
            (("authorization", f"Bearer {ALICE_TOKEN}"), ("authorization", f"Bearer {BOB_TOKEN}")),
            "more than one authorization metadata entry",
        ),
    ],
)
async def test_bad_token_is_unauthenticated_on_every_method(
    server: AuthServer, logs: LogCapture, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    for method in ("WhoAmI", "Owned"):
        error = await server.unary_error(method, metadata)
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error.details().startswith(reason)
        assert ALICE_TOKEN not in error.details()
    # Even health: a caller with a bad token should find out.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await health_pb2_grpc.HealthStub(server.channel).Check(
            health_pb2.HealthCheckRequest(), metadata=metadata
        )
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    lines = logs.rpc(f"/{SERVICE_NAME}/WhoAmI")
    assert [line["code"] for line in lines] == ["UNAUTHENTICATED"]
    assert "owner" not in lines[0]


async def test_scheme_is_case_insensitive(server: AuthServer) -> None:
    call = server.channel.unary_unary(f"/{SERVICE_NAME}/Owned")
    assert await call(b"", metadata=(("authorization", f"bEaReR {BOB_TOKEN}"),)) == b"bob"


async def test_concurrent_callers_each_see_their_own_owner(server: AuthServer) -> None:
    tokens = [ALICE_TOKEN, BOB_TOKEN, None, CAROL_TOKEN] * 5
    expected = [b"alice", b"bob", ANONYMOUS, b"carol"] * 5
    # Later calls finish first: each handler reads the owner after the others started.
    delays = [b"%.3f" % (0.002 * (len(tokens) - i)) for i in range(len(tokens))]
    results = await asyncio.gather(
        *(server.unary("WhoAmI", d, t) for d, t in zip(delays, tokens, strict=True))
    )
    assert results == expected


async def test_streaming_methods_see_the_owner(server: AuthServer) -> None:
    stream = server.channel.unary_stream(f"/{SERVICE_NAME}/OwnedStream")
    messages = [m async for m in stream(b"3", metadata=_bearer(ALICE_TOKEN))]
    assert messages == [b"0:alice:alice", b"1:alice:alice", b"2:alice:alice"]

    upload = server.channel.stream_unary(f"/{SERVICE_NAME}/Upload")
    assert await upload(iter([b"a", b"b"]), metadata=_bearer(BOB_TOKEN)) == b"bob:2:bob"

    chat = server.channel.stream_stream(f"/{SERVICE_NAME}/Chat")
    replies = [m async for m in chat(iter([b"x", b"y"]), metadata=_bearer(CAROL_TOKEN))]
    assert replies == [b"x:carol", b"y:carol"]
    anonymous = [m async for m in chat(iter([b"z"]))]
    assert anonymous == [b"z:<anonymous>"]


async def test_streaming_methods_refuse_missing_and_wrong_tokens(server: AuthServer) -> None:
    stream = server.channel.unary_stream(f"/{SERVICE_NAME}/OwnedStream")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        _ = [m async for m in stream(b"3")]
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer <token>" in err.value.details()

    upload = server.channel.stream_unary(f"/{SERVICE_NAME}/Upload")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await upload(iter([b"a"]), metadata=_bearer(WRONG_TOKEN))
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED

    chat = server.channel.stream_stream(f"/{SERVICE_NAME}/Chat")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        _ = [m async for m in chat(iter([b"x"]), metadata=_bearer(WRONG_TOKEN))]
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "the bearer token is not valid"


async def test_require_auth_refuses_anonymous_except_health_and_reflection(
    start_auth_server: StartAuthServer,
) -> None:
    server = await start_auth_server(AuthSettings(tokens=TOKENS, require_auth=True))
    error = await server.unary_error("WhoAmI")
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "authentication required: send `authorization: Bearer <token>`"
    assert await server.unary("WhoAmI", token=ALICE_TOKEN) == b"alice"

    stream = server.channel.unary_stream(f"/{SERVICE_NAME}/OwnedStream")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        _ = [m async for m in stream(b"1")]
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details().startswith("authentication required")

    # Anonymous health checks and reflection still answer (start_server begins NOT_SERVING).
    assert await server.health() == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await server.health(token=BOB_TOKEN) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert SERVICE_NAME in await server.reflected_services()


async def test_no_tokens_configured_says_so(start_auth_server: StartAuthServer) -> None:
    server = await start_auth_server(AuthSettings())
    assert await server.unary("WhoAmI") == ANONYMOUS
    error = await server.unary_error("Owned")
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "no tokens configured" in error.details()
    assert "set MM_AUTH_TOKENS" in error.details()
    error = await server.unary_error("WhoAmI", _bearer(ALICE_TOKEN))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "set MM_AUTH_TOKENS" in error.details()


async def test_start_server_reads_the_environment(
    start_auth_server: StartAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MM_AUTH_TOKENS", f"bob={BOB_TOKEN}")
    monkeypatch.setenv("MM_REQUIRE_AUTH", "1")
    server = await start_auth_server()  # no auth= : from MM_AUTH_TOKENS / MM_REQUIRE_AUTH
    assert await server.unary("Owned", token=BOB_TOKEN) == b"bob"
    assert (await server.unary_error("WhoAmI")).code() is grpc.StatusCode.UNAUTHENTICATED
    assert (await server.unary_error("WhoAmI", _bearer(ALICE_TOKEN))).details() == (
        "the bearer token is not valid"
    )


async def test_owner_logged_and_token_never(server: AuthServer, logs: LogCapture) -> None:
    assert await server.unary("WhoAmI", token=ALICE_TOKEN) == b"alice"
    stream = server.channel.unary_stream(f"/{SERVICE_NAME}/OwnedStream")
    assert len([m async for m in stream(b"2", metadata=_bearer(BOB_TOKEN))]) == 2
    await server.unary_error("WhoAmI", _bearer(WRONG_TOKEN))
    await server.unary_error("WhoAmI", (("authorization", CAROL_TOKEN),))
    await server.unary_error("Owned")

    (unary_ok, *refused) = logs.rpc(f"/{SERVICE_NAME}/WhoAmI")
    assert (unary_ok["code"], unary_ok["owner"]) == ("OK", "alice")
    assert [line["code"] for line in refused] == ["UNAUTHENTICATED"] * 2
    assert all("owner" not in line for line in refused)
    (streamed,) = await logs.wait_rpc(f"/{SERVICE_NAME}/OwnedStream")
    assert (streamed["owner"], streamed["sent"]) == ("bob", 2)
    (anonymous,) = logs.rpc(f"/{SERVICE_NAME}/Owned")
    assert anonymous["code"] == "UNAUTHENTICATED"
    # The start-up line names owners only.
    (started,) = [line for line in logs.lines() if line["event"] == "authentication"]
    assert started["owners"] == ["alice", "bob", "carol"]

    text = logs.stream.getvalue()
    for token in (ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN, WRONG_TOKEN):
        assert token not in text


# -- make run: the development token -------------------------------------------------


def test_launcher_generates_a_dev_token_and_a_grpcurl_line() -> None:
    env, message = with_dev_token({"PATH": "/bin", "MM_AUTH_TOKENS": " "})
    assert env["PATH"] == "/bin"
    owner, _, token = env["MM_AUTH_TOKENS"].partition("=")
    assert owner == "dev"
    assert parse_auth_tokens(env["MM_AUTH_TOKENS"]) == (("dev", token),)
    assert message is not None
    assert (
        f"grpcurl -plaintext -H 'authorization: Bearer {token}' -d '{{}}' "
        "127.0.0.1:50052 marketmesh.v1.SignalsService/ListAlerts"
    ) in message
    # A fresh token per run.
    assert with_dev_token({})[0]["MM_AUTH_TOKENS"] != env["MM_AUTH_TOKENS"]


def test_launcher_uses_the_signals_address_and_a_given_token() -> None:
    token = "given-token-0123456789"
    env, message = with_dev_token({"MM_SIGNALS_ADDR": "0.0.0.0:6002"}, token=token)
    assert env["MM_AUTH_TOKENS"] == f"dev={token}"
    assert message is not None
    assert f"Bearer {token}' -d '{{}}' 127.0.0.1:6002 " in message


def test_launcher_keeps_configured_tokens() -> None:
    environ = {"MM_AUTH_TOKENS": f"alice={ALICE_TOKEN}"}
    env, message = with_dev_token(environ)
    assert env == environ
    assert message is None
