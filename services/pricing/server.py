"""Build and run the pricing server: `python -m services.pricing`."""

import asyncio

from marketmesh.v1 import pricing_pb2
from services.common.config import exit_on_config_error
from services.common.logging import configure_logging, get_logger
from services.common.metrics import start_metrics_server
from services.common.registration import add_servicer
from services.common.server import RunningServer, run_service, start_server
from services.pricing.app import PricingApp
from services.pricing.servicer import PricingServicer
from services.pricing.settings import PricingSettings, load_pricing_settings

SERVICE = "pricing"
SERVICE_DESCRIPTOR = pricing_pb2.DESCRIPTOR.services_by_name["PricingService"]
SERVICE_NAME = SERVICE_DESCRIPTOR.full_name

log = get_logger(__name__)


async def start_pricing(app: PricingApp, address: str) -> RunningServer:
    """Bind and start the server (NOT_SERVING); `app.start()` makes it ready."""
    return await start_server(
        service=SERVICE,
        address=address,
        service_names=[SERVICE_NAME],
        register=lambda server: add_servicer(
            server,
            SERVICE_DESCRIPTOR,
            PricingServicer(app),
            preserialized=["StreamQuotes", "StreamCandles"],
        ),
        address_var="MM_PRICING_ADDR",
    )


async def serve(settings: PricingSettings) -> int:
    app = PricingApp(settings)

    async def warm_up(_: RunningServer) -> None:
        await app.start()

    return await run_service(
        settings=settings.common,
        start=lambda: start_pricing(app, settings.address),
        warm_up=warm_up,
        on_shutdown=app.stop,
    )


@exit_on_config_error
def main() -> int:
    settings = load_pricing_settings()
    configure_logging(settings.common.log_level, settings.common.log_format, SERVICE)
    start_metrics_server(settings.metrics_port, env_var="MM_PRICING_METRICS_PORT")
    return asyncio.run(serve(settings))
