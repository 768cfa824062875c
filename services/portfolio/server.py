"""Build and run the portfolio server: `python -m services.portfolio`."""

import asyncio

from marketmesh.v1 import portfolio_pb2
from services.common.config import exit_on_config_error
from services.common.logging import configure_logging, get_logger
from services.common.metrics import start_metrics_server
from services.common.registration import add_servicer
from services.common.server import RunningServer, run_service, start_server
from services.portfolio.app import PortfolioApp
from services.portfolio.servicer import PortfolioServicer
from services.portfolio.settings import PortfolioSettings, load_portfolio_settings

SERVICE = "portfolio"
SERVICE_DESCRIPTOR = portfolio_pb2.DESCRIPTOR.services_by_name["PortfolioService"]
SERVICE_NAME = SERVICE_DESCRIPTOR.full_name

log = get_logger(__name__)


async def start_portfolio(app: PortfolioApp, address: str) -> RunningServer:
    """Bind and start the server (NOT_SERVING); `app.start()` makes it ready."""
    return await start_server(
        service=SERVICE,
        address=address,
        service_names=[SERVICE_NAME],
        register=lambda server: add_servicer(server, SERVICE_DESCRIPTOR, PortfolioServicer(app)),
        address_var="MM_PORTFOLIO_ADDR",
        auth=app.settings.common.auth,
    )


async def serve(settings: PortfolioSettings) -> int:
    app = PortfolioApp(settings)

    async def warm_up(_: RunningServer) -> None:
        await app.start()

    return await run_service(
        settings=settings.common,
        start=lambda: start_portfolio(app, settings.address),
        warm_up=warm_up,
        on_shutdown=app.stop,
    )


@exit_on_config_error
def main() -> int:
    settings = load_portfolio_settings()
    configure_logging(settings.common.log_level, settings.common.log_format, SERVICE)
    start_metrics_server(settings.metrics_port, env_var="MM_PORTFOLIO_METRICS_PORT")
    return asyncio.run(serve(settings))
