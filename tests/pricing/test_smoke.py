"""The pricing server starts, reports health, and answers a quote."""

from grpc_health.v1 import health_pb2, health_pb2_grpc

from marketmesh.v1 import pricing_pb2
from tests.pricing.conftest import PricingHarness


async def test_quote_and_health(pricing: PricingHarness) -> None:
    health = health_pb2_grpc.HealthStub(pricing.channel)
    status = await health.Check(
        health_pb2.HealthCheckRequest(service="marketmesh.v1.PricingService")
    )
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    reply = await pricing.stub.GetQuote(pricing_pb2.GetQuoteRequest(symbol="BTC-USD"))
    assert reply.quote.symbol == "BTC-USD"
    assert reply.quote.price > 0
