"""Domain errors -> grpc.Status, decoded with the google.rpc protos as a client would."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ServiceError,
    Unauthenticated,
    Unavailable,
    to_rpc_status,
)

DETAILS_KEY = "grpc-status-details-bin"


def _rich(status: grpc.Status) -> status_pb2.Status:
    (key, value), *_ = status.trailing_metadata
    assert key == DETAILS_KEY
    return status_pb2.Status.FromString(value)


def test_invalid_argument_carries_bad_request_violations() -> None:
    status = to_rpc_status(InvalidArgument("symbol", "is required"))
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "symbol: is required"
    rich = _rich(status)
    assert rich.code == 3
    assert rich.message == status.details
    bad_request = error_details_pb2.BadRequest()
    assert rich.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("symbol", "is required")
    ]


def test_invalid_argument_many_lists_every_violation() -> None:
    err = InvalidArgument.many([("symbol", "is required"), ("limit", "must be <= 10")])
    assert str(err) == "symbol: is required; limit: must be <= 10"
    bad_request = error_details_pb2.BadRequest()
    _rich(to_rpc_status(err)).details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["symbol", "limit"]
    with pytest.raises(ValueError):
        InvalidArgument.many([])


def test_value_error_is_invalid_argument_without_field_details() -> None:
    status = to_rpc_status(ValueError("period must be >= 1"))
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "period must be >= 1"
    assert list(_rich(status).details) == []


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (NotFound, grpc.StatusCode.NOT_FOUND),
        (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
        (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
        (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
        (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
        (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unavailable, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_each_error_has_its_code(cls: type[ServiceError], code: grpc.StatusCode) -> None:
    status = to_rpc_status(cls("what happened"))
    assert status.code is code
    assert status.details == "what happened"
    assert _rich(status).code == code.value[0]


def test_other_exceptions_are_not_mapped() -> None:
    with pytest.raises(TypeError):
        to_rpc_status(RuntimeError("x"))  # type: ignore[arg-type]
