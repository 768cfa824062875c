"""Server reflection that also resolves method names.

ghz (and other clients) ask reflection for the file containing a method
symbol such as `marketmesh.v1.PricingService.GetQuote`; the protobuf pool
behind grpcio-reflection only knows messages, enums, services and fields, so
it answers NOT_FOUND (grpc/grpc#34743) and ghz cannot call the method. This
pool falls back to the method's service.
"""

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection


class MethodAwarePool:
    """A descriptor pool view whose symbol lookup understands `Service.Method`."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service_name, _, method = symbol.rpartition(".")
            if service_name:
                try:
                    service = self._pool.FindServiceByName(service_name)
                except KeyError:
                    pass
                else:
                    if method in service.methods_by_name:
                        return service.file
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def enable_reflection(service_names: Sequence[str], server: grpc.aio.Server) -> None:
    reflection.enable_server_reflection(
        service_names,
        server,
        pool=MethodAwarePool(descriptor_pool.Default()),  # type: ignore[arg-type]
    )
