"""Domain errors and the one place they become gRPC statuses.

Servicers and domain code raise these (or let a ValueError from core_rs pass);
the server interceptor calls :func:`to_rpc_status` and aborts the call. No
servicer method maps errors itself, so every service answers bad input the same
way: a status code, a sentence a person can act on, and for INVALID_ARGUMENT a
``google.rpc.BadRequest`` listing each offending field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


class ServiceError(Exception):
    """Base of the errors a caller caused or can act on; subclasses fix the code."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    """One or more request fields are wrong; each violation names its field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, reason: str) -> None:
        self.violations: tuple[tuple[str, str], ...] = ((field, reason),)
        super().__init__(f"{field}: {reason}")

    @classmethod
    def many(cls, violations: Iterable[tuple[str, str]]) -> InvalidArgument:
        """All violations of a request at once, so a caller can fix them in one go."""
        items = tuple(violations)
        if not items:
            raise ValueError("InvalidArgument.many needs at least one violation")
        err = cls(*items[0])
        err.violations = items
        err.message = "; ".join(f"{field}: {reason}" for field, reason in items)
        err.args = (err.message,)
        return err


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


def is_mapped_error(err: BaseException) -> bool:
    """True for the exceptions :func:`to_rpc_status` turns into a caller-facing code."""
    return isinstance(err, ServiceError | ValueError)


def to_rpc_status(err: ServiceError | ValueError) -> grpc.Status:
    """The status (with rich details in trailing metadata) to abort a call with.

    A bare ValueError is INVALID_ARGUMENT: core_rs raises it for numeric input
    it cannot use (too-short series, bad periods), which the caller sent.
    """
    if isinstance(err, ServiceError):
        code, message = err.code, err.message
    elif isinstance(err, ValueError):
        code, message = grpc.StatusCode.INVALID_ARGUMENT, str(err) or "invalid argument"
    else:
        raise TypeError(f"not a mapped error: {type(err).__name__}")
    status = status_pb2.Status(code=_code_number(code), message=message)
    if isinstance(err, InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=reason)
                for field, reason in err.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad_request)
        status.details.append(detail)
    return rpc_status.to_status(status)


def _code_number(code: grpc.StatusCode) -> int:
    # StatusCode.value is (int, name); google.rpc.Code uses the same numbers.
    number: int = code.value[0]
    return number
