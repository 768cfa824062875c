"""What the command-line clients share: the address argument, the bearer token
and how a gRPC failure is told to the person at the terminal.

A command-line argument is visible to other users of the machine, so the token
is better passed as ``MM_TOKEN`` in the environment; ``--token`` wins when
both are given.
"""

from __future__ import annotations

import argparse
import os

import grpc

from services.common.config import parse_address

TOKEN_ENV = "MM_TOKEN"
EXIT_INTERRUPTED = 130


def address_arg(text: str) -> str:
    """argparse ``type=`` for ``host:port``."""
    if parse_address(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port (e.g. 127.0.0.1:50051)")
    return text


def resolve_token(arg: str | None) -> str:
    """``--token``, else ``$MM_TOKEN``, else ""; a token pasted with a trailing
    space or newline would not be a valid header, so it is stripped."""
    return (arg or os.environ.get(TOKEN_ENV, "")).strip()


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def rpc_error_line(exc: grpc.aio.AioRpcError) -> str:
    """``CODE: details`` of a failed call, on one line."""
    details = " ".join((exc.details() or "").split())
    return f"{exc.code().name}: {details}" if details else exc.code().name
