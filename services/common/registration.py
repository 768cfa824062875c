"""Register a servicer from its service descriptor.

Equivalent to the generated `add_<Service>Servicer_to_server`, with one
addition: the responses of the methods named in `preserialized` may be
`bytes` already encoded by the servicer (a feed that sends the same message to
a thousand subscribers encodes it once) and are sent as they are.
"""

from collections.abc import Callable, Iterable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass


def _passthrough(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    def serializer(message: Any) -> bytes:
        return message if isinstance(message, bytes) else serialize(message)

    return serializer


def add_servicer(
    server: grpc.aio.Server,
    service: ServiceDescriptor,
    servicer: object,
    *,
    preserialized: Iterable[str] = (),
) -> None:
    raw = set(preserialized)
    unknown = raw - {m.name for m in service.methods}
    if unknown:
        raise ValueError(f"{service.full_name} has no methods {sorted(unknown)}")
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        request_cls = GetMessageClass(method.input_type)
        response_cls = GetMessageClass(method.output_type)
        serializer = response_cls.SerializeToString
        if method.name in raw:
            serializer = _passthrough(serializer)
        behaviour = getattr(servicer, method.name)
        if method.client_streaming and method.server_streaming:
            factory = grpc.stream_stream_rpc_method_handler
        elif method.client_streaming:
            factory = grpc.stream_unary_rpc_method_handler
        elif method.server_streaming:
            factory = grpc.unary_stream_rpc_method_handler
        else:
            factory = grpc.unary_unary_rpc_method_handler
        handlers[method.name] = factory(
            behaviour,
            request_deserializer=request_cls.FromString,
            response_serializer=serializer,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)
