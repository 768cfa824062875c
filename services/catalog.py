"""The services of the suite: one row each, the single source for the launcher,
the container definitions and their test (tests/test_compose.py).

Addresses and ports match the table in DESIGN.md.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str  # run as `python -m <module>`
    grpc_full_name: str
    address_env: str
    default_address: str
    metrics_port_env: str
    default_metrics_port: int

    @property
    def default_port(self) -> int:
        return int(self.default_address.rsplit(":", 1)[1])


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="pricing",
        module="services.pricing",
        grpc_full_name="marketmesh.v1.PricingService",
        address_env="MM_PRICING_ADDR",
        default_address="127.0.0.1:50051",
        metrics_port_env="MM_PRICING_METRICS_PORT",
        default_metrics_port=9101,
    ),
    ServiceSpec(
        name="signals",
        module="services.signals",
        grpc_full_name="marketmesh.v1.SignalsService",
        address_env="MM_SIGNALS_ADDR",
        default_address="127.0.0.1:50052",
        metrics_port_env="MM_SIGNALS_METRICS_PORT",
        default_metrics_port=9102,
    ),
    ServiceSpec(
        name="portfolio",
        module="services.portfolio",
        grpc_full_name="marketmesh.v1.PortfolioService",
        address_env="MM_PORTFOLIO_ADDR",
        default_address="127.0.0.1:50053",
        metrics_port_env="MM_PORTFOLIO_METRICS_PORT",
        default_metrics_port=9103,
    ),
)
